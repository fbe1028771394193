"""`rvc-ios golden generate`: run an MLX reference (voice or RMVPE) on exported weights and write a golden set."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from . import __version__
from .errors import RvcIosError
from .files import sha256_file
from .golden import GoldenSet, read_inputs_file, synthesize_voice_inputs, write_golden
from .manifest import load_exported


def generate_voice_golden(
    assets_dir: Path,
    model_name: str,
    out_dir: Path,
    *,
    inputs_file: Path | None = None,
    seed: int = 0,
    seconds: float = 2.0,
) -> GoldenSet:
    """Inputs from `inputs_file` or synthesised from `seed`; noise always drawn from `seed`."""
    from .inference import build_model, draw_noise, run_voice, voice_spec

    manifest, weights = load_exported(assets_dir, model_name)
    spec = voice_spec(manifest)
    if inputs_file is not None:
        inputs = read_inputs_file(inputs_file, manifest)
    else:
        inputs = synthesize_voice_inputs(manifest, seed, seconds)
    noise = draw_noise(spec, inputs, seed)
    model = build_model(spec, weights)
    outputs = run_voice(model, spec, inputs, noise)
    tensors = {**inputs, **noise, **outputs}
    return write_golden(
        out_dir,
        "voice",
        tensors,
        spec.stage_table(),
        model_name=model_name,
        manifest_sha256=sha256_file(Path(assets_dir) / f"{model_name}.manifest.json"),
        seed=seed,
        tool_version=__version__,
        extra={
            "inputs": str(inputs_file) if inputs_file else f"synthesized from seed {seed}, {seconds} s",
            "sample_rate": manifest["sample_rate"],
            "rvc_version": manifest["rvc_version"],
            "f0": manifest["f0"],
        },
    )


def read_wav_16k_mono(path: Path) -> np.ndarray:
    """A 16 kHz mono 16-bit PCM WAV as float32 in [-1, 1): what RMVPE consumes. Resample elsewhere first."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width, frames = wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()
            data = wav.readframes(frames)
    except (OSError, EOFError, wave.Error) as exc:
        raise RvcIosError(f"{path} is not a readable WAV file ({exc}).") from None
    if rate != 16000 or channels != 1 or width != 2:
        raise RvcIosError(
            f"{path} is {rate} Hz, {channels} channel(s), {8 * width}-bit; RMVPE needs 16 kHz mono 16-bit PCM. "
            f"Convert it first, e.g. `sox {path} -r 16000 -c 1 -b 16 out.wav`."
        )
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)[None, :]


def generate_rmvpe_golden(
    assets_dir: Path,
    model_name: str,
    out_dir: Path,
    *,
    audio_file: Path | None = None,
    seed: int = 0,
    seconds: float = 3.0,
    pad_mode: str = "reflect",
) -> GoldenSet:
    """RMVPE golden set on a WAV file, or on a voice-like test signal synthesised from `seed`."""
    from .rmvpe_demo import demo_audio
    from .rmvpe_inference import build_rmvpe, write_rmvpe_golden

    manifest, weights = load_exported(assets_dir, model_name)
    if audio_file is not None:
        audio = read_wav_16k_mono(audio_file)
    else:
        audio = np.asarray(demo_audio(round(seconds * 16000), seed), dtype=np.float32).reshape(1, -1)
    return write_rmvpe_golden(
        out_dir, build_rmvpe(weights, manifest["rmvpe"]["architecture"]), audio,
        model_name=model_name,
        manifest_sha256=sha256_file(Path(assets_dir) / f"{model_name}.manifest.json"),
        seed=seed,
        pad_mode=pad_mode,
    )
