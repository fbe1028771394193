"""RMVPE pitch extraction with the MLX reference: 16 kHz audio -> log-mel -> E2E salience -> f0 (Hz).

Upstream: `rvc.lib.rmvpe.RMVPE.infer_from_audio` = `MelSpectrogram` -> `mel2hidden` (pad the frames to a
multiple of 32, run E2E, crop) -> `decode` (`to_local_average_cents`, then cents -> Hz). Every stage can be
captured in upstream's shapes for golden files (`rmvpe_golden_tensors`, `stages.rmvpe_stage_table`); the f0
stage is judged by `core.pitch_track.f0_agreement`.
"""

from __future__ import annotations

from ..core import blas  # noqa: F401  (loads OpenBLAS before mlx binds its BLAS)

from pathlib import Path
from typing import Any, Mapping

import mlx.core as mx
import numpy as np

from ..core.errors import ConfigMismatchError, RvcIosError
from ..core.layers import load_weights_strictly
from . import mel as mel_spec
from .convert import ARCHITECTURE, check_architecture
from .model import E2E
from .stages import rmvpe_stage_table

# The U-Net halves the time axis five times, so E2E needs a frame count divisible by 32.
FRAME_MULTIPLE = 32
# How `mel2hidden` pads the frames: RVC WebUI and Applio pad by reflection; the `rvc` 0.3.5 package pads
# with zeros (which in the log domain is a loud 0 = log(1), so frames near the end differ).
PAD_MODES = ("reflect", "constant")
DEFAULT_PAD_MODE = "reflect"

# Decoding (`RMVPE.decode` / `to_local_average_cents`): bin i is 20 * i + 1997.379... cents above 10 Hz;
# f0 is the salience-weighted mean of the cents of the 9 bins around the argmax; a frame whose largest
# salience is <= 0.03 is unvoiced (f0 = 0).
THRESHOLD = 0.03
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191
LOCAL_AVERAGE_RADIUS = 4
F0_REFERENCE_HZ = 10.0



class AudioTooShortError(RvcIosError):
    """Audio too short for RMVPE's reflect paddings."""


def pipeline_config() -> dict[str, Any]:
    """Every constant of the audio -> f0 pipeline, as the manifest records it for the Swift port."""
    return {
        "mel": {
            "sample_rate": mel_spec.SAMPLE_RATE,
            "n_fft": mel_spec.N_FFT,
            "win_length": mel_spec.WIN_LENGTH,
            "hop_length": mel_spec.HOP_LENGTH,
            "window": "hann_periodic",
            "center": True,
            "center_pad_mode": "reflect",
            "spectrum": "magnitude",
            "n_mels": mel_spec.N_MELS,
            "fmin": mel_spec.MEL_FMIN,
            "fmax": mel_spec.MEL_FMAX,
            "mel_scale": "htk",
            "mel_norm": "slaney",
            "log_clamp": mel_spec.LOG_CLAMP,
        },
        "frame_multiple": FRAME_MULTIPLE,
        "frame_pad_mode": DEFAULT_PAD_MODE,
        "decode": {
            "threshold": THRESHOLD,
            "unvoiced_when": "max_salience <= threshold",
            "cents_per_bin": CENTS_PER_BIN,
            "cents_offset": CENTS_OFFSET,
            "local_average_bins": 2 * LOCAL_AVERAGE_RADIUS + 1,
            "f0_reference_hz": F0_REFERENCE_HZ,
        },
    }


# --- the model ------------------------------------------------------------------------------------------


def build_rmvpe(weights: Mapping[str, np.ndarray], architecture: Mapping[str, Any] | None = None) -> E2E:
    """An inference-mode E2E of `architecture` (a manifest's `rmvpe.architecture`; default rmvpe.pt's) holding
    exported weights (key -> channels-last array), computing in float32."""
    model = E2E.from_architecture(check_architecture(architecture or ARCHITECTURE))
    load_weights_strictly(model, weights)  # strict: every key used, none missing, every shape equal
    return model.eval()


def check_pipeline_block(block: Mapping[str, Any], name: str) -> None:
    """Refuses an exported RMVPE whose manifest (`name`) records a log-mel, framing or decoding constant this
    port does not compute: the MLX reference computes upstream's only, so a different one would be ignored."""
    expected = pipeline_config()
    for section in ("mel", "decode"):
        found = block.get(section) if isinstance(block.get(section), Mapping) else {}
        for field, value in expected[section].items():
            if found.get(field) != value:
                raise ConfigMismatchError(
                    f"{name} records rmvpe.{section}.{field} = {found.get(field)!r}, but this port computes only "
                    f"{value!r} (upstream's); re-export it with `rvc-ios export --rmvpe rmvpe.pt`."
                )
    if block.get("frame_multiple") != FRAME_MULTIPLE:
        raise ConfigMismatchError(f"{name} records rmvpe.frame_multiple = {block.get('frame_multiple')!r}, but this "
                                  f"port pads frames to a multiple of {FRAME_MULTIPLE} only; re-export it.")
    if block.get("frame_pad_mode") not in PAD_MODES:
        raise ConfigMismatchError(f"{name} records rmvpe.frame_pad_mode = {block.get('frame_pad_mode')!r}; use one "
                                  f"of {', '.join(PAD_MODES)}.")


def rmvpe_from_export(manifest: Mapping[str, Any], weights: Mapping[str, np.ndarray], name: str) -> E2E:
    """The MLX reference of an exported RMVPE (`name` in errors): its manifest's `rmvpe` block checked against
    what this port computes, then every weight loaded strictly."""
    block = manifest.get("rmvpe")
    if not isinstance(block, Mapping):
        raise ConfigMismatchError(f"{name} has no rmvpe block; re-export it with `rvc-ios export --rmvpe rmvpe.pt`.")
    check_pipeline_block(block, name)
    return build_rmvpe(weights, block.get("architecture"))


def load_rmvpe(weights_path: Path) -> E2E:
    """The MLX reference from an exported `rmvpe.safetensors`, in the architecture its manifest (the
    `.manifest.json` beside it) records."""
    from safetensors.numpy import load_file

    from ..core.manifest import read_manifest

    weights_path = Path(weights_path)
    manifest_path = weights_path.with_name(f"{weights_path.stem}.manifest.json")
    if not manifest_path.is_file():
        return build_rmvpe(load_file(str(weights_path)))
    return rmvpe_from_export(read_manifest(manifest_path), load_file(str(weights_path)), str(manifest_path))


# --- audio -> salience ----------------------------------------------------------------------------------


def pad_frames(mel: mx.array, mode: str = DEFAULT_PAD_MODE) -> mx.array:
    """(B, 128, T) -> (B, 128, T') with T' the next multiple of 32, padded at the end as `mel2hidden` does."""
    if mode not in PAD_MODES:
        raise RvcIosError(f"Unknown frame padding {mode!r}; use one of {', '.join(PAD_MODES)}.")
    n_frames = mel.shape[-1]
    n_pad = -n_frames % FRAME_MULTIPLE
    if n_pad == 0:
        return mel
    if mode == "reflect" and n_pad >= n_frames:
        # torch's reflect padding needs more frames than it adds; upstream fails here too. From 17 frames
        # (16 hops) on it always works.
        min_samples = (FRAME_MULTIPLE // 2) * mel_spec.HOP_LENGTH
        raise AudioTooShortError(
            f"{n_frames} mel frames cannot be reflect-padded to {n_frames + n_pad}; RMVPE needs at least "
            f"{min_samples} samples ({min_samples / mel_spec.SAMPLE_RATE:.2f} s) of 16 kHz audio. Pass longer audio."
        )
    return mx.pad(mel, [(0, 0), (0, 0), (0, n_pad)], mode=mode)


def log_mel(audio: np.ndarray) -> mx.array:
    """(N,) or (B, N) float audio at 16 kHz -> (B, 128, T) log-mel."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.shape[-1] <= mel_spec.N_FFT // 2:
        raise AudioTooShortError(
            f"RMVPE needs more than {mel_spec.N_FFT // 2} samples of 16 kHz audio, got {audio.shape[-1]}. Pass longer audio."
        )
    return mel_spec.log_mel_spectrogram(mx.array(audio))


def mel_to_salience(model: E2E, mel: mx.array, pad_mode: str = DEFAULT_PAD_MODE) -> mx.array:
    """Upstream `mel2hidden`: (B, 128, T) -> (B, T, 360)."""
    n_frames = mel.shape[-1]
    return model(pad_frames(mel, pad_mode))[:, :n_frames]


# --- salience -> f0 -------------------------------------------------------------------------------------


def bin_cents() -> np.ndarray:
    return CENTS_PER_BIN * np.arange(360) + CENTS_OFFSET


def to_local_average_cents(salience: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """(..., 360) -> (...) cents: the salience-weighted mean over the 9 bins around each frame's argmax
    (bins past either end count as zero salience); 0 where the frame's largest salience is <= threshold."""
    # Upstream keeps the salience in float32, so its weight sum is a float32 sum and the weighted cents a
    # float64 one; doing the same makes our f0 bit-identical to upstream's for the same salience.
    salience = np.asarray(salience, dtype=np.float32)
    r = LOCAL_AVERAGE_RADIUS
    center = np.argmax(salience, axis=-1)
    pad = [(0, 0)] * (salience.ndim - 1) + [(r, r)]
    window = center[..., None] + np.arange(2 * r + 1)  # indices into the padded axis
    weights = np.take_along_axis(np.pad(salience, pad), window, axis=-1)
    cents = np.pad(bin_cents(), (r, r))[window]
    voiced = salience.max(axis=-1) > threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        average = (weights * cents).sum(axis=-1) / weights.sum(axis=-1)
    return np.where(voiced, average, 0.0)


def cents_to_f0(cents: np.ndarray) -> np.ndarray:
    """Hz = 10 * 2^(cents / 1200); 0 cents (the unvoiced marker) -> 0 Hz, as upstream's `f0[f0 == 10] = 0`."""
    cents = np.asarray(cents, dtype=np.float64)
    return np.where(cents == 0, 0.0, F0_REFERENCE_HZ * np.power(2.0, cents / 1200.0))


def salience_to_f0(salience: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Upstream `RMVPE.decode`: (..., 360) salience -> (...) f0 in Hz (float64), 0 = unvoiced."""
    return cents_to_f0(to_local_average_cents(salience, threshold))


def estimate_f0(
    model: E2E, audio: np.ndarray, threshold: float = THRESHOLD, pad_mode: str = DEFAULT_PAD_MODE
) -> np.ndarray:
    """Upstream `RMVPE.infer_from_audio`: (N,) audio at 16 kHz -> (1 + N // 160,) f0 in Hz, float32."""
    salience = mel_to_salience(model, log_mel(audio), pad_mode)
    f0 = salience_to_f0(np.array(salience), threshold).astype(np.float32)
    return f0[0] if np.ndim(audio) == 1 else f0


# --- stages for golden files ----------------------------------------------------------------------------


def write_rmvpe_golden(
    out_dir: Path,
    model: E2E,
    audio: np.ndarray,
    *,
    model_name: str,
    manifest_sha256: str,
    seed: int,
    threshold: float = THRESHOLD,
    pad_mode: str = DEFAULT_PAD_MODE,
):
    """Run the reference on `audio` and write the golden set (`golden.write_golden`, kind "rmvpe")."""
    from .. import __version__
    from ..core.golden import write_golden

    tensors = rmvpe_golden_tensors(model, audio, threshold, pad_mode)
    return write_golden(
        Path(out_dir), "rmvpe", tensors, rmvpe_stage_table(model),
        model_name=model_name, manifest_sha256=manifest_sha256, seed=seed, tool_version=__version__,
        extra={"pad_mode": pad_mode, "threshold": threshold, "samples": int(tensors["audio"].shape[-1]),
               "sample_rate": mel_spec.SAMPLE_RATE},
    )


def _nchw(x: mx.array) -> np.ndarray:
    """The MLX model's mel-major (B, F, T, C) -> upstream's (B, C, T, F)."""
    return np.array(x.transpose(0, 3, 2, 1))


def rmvpe_golden_tensors(
    model: E2E, audio: np.ndarray, threshold: float = THRESHOLD, pad_mode: str = DEFAULT_PAD_MODE
) -> dict[str, np.ndarray]:
    """Every tensor of `rmvpe_stage_table()` for one run, float32, in upstream's shapes and layouts."""
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    out: dict[str, np.ndarray] = {"audio": audio}
    mel = log_mel(audio)
    out["mel"] = np.array(mel)
    padded = pad_frames(mel, pad_mode)
    out["padded_mel"] = np.array(padded)
    x, skips = model.unet.encoder(model.mel_to_image(padded))
    out["unet.encoder"] = _nchw(x)
    for i, skip in enumerate(skips):
        out[f"unet.encoder.skip_{i}"] = _nchw(skip)
    x = model.unet.intermediate(x)
    out["unet.intermediate"] = _nchw(x)
    x = model.unet.decoder(x, skips)
    out["unet.decoder"] = _nchw(x)
    x = model.cnn(x)
    out["cnn"] = _nchw(x)
    hidden = model.fc.gru(model.flatten_cnn(x))
    out["fc.gru"] = np.array(hidden)
    salience = mx.sigmoid(model.fc.linear(hidden))[:, : mel.shape[-1]]
    out["salience"] = np.array(salience)
    out["f0"] = salience_to_f0(out["salience"], threshold).astype(np.float32)
    return out
