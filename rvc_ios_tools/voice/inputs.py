"""The inputs a voice golden set is run on: synthesized (`synthesize_voice_inputs`) or read from a user's
file (`read_inputs_file`), with the coarse pitch computed exactly as upstream's pipeline does.

A user's file may also hold any of the run's random draws under their golden names (`noise.z_p`, `noise.nsf`,
`noise.nsf_phase`), for instance upstream's own draws recorded by `rvc-ios upstream capture`, so a golden run
replays an upstream PyTorch run exactly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from ..core.errors import RvcIosError
from ..core.npz import read_npz
from .stages import VoiceShape, voice_shape

# RVC's HuBERT features come at 50 frames/s; upstream's pipeline repeats each frame twice
# (F.interpolate(scale_factor=2), nearest) so the synthesizer runs at 100 frames/s.
HUBERT_FRAME_RATE = 50
SYNTH_FRAME_RATE = 100

# Upstream pipeline.get_f0: the coarse pitch is the mel-scaled f0 spread over 1..255 between these bounds.
F0_MIN_HZ = 50.0
F0_MAX_HZ = 1100.0

INPUT_NAMES = ("phone", "phone_lengths", "pitch", "pitchf", "sid")
# Upstream infer()'s random draws, in its call order: randn_like(m_p), SineGen's randn_like, then its rand.
NOISE_NAMES = ("noise.z_p", "noise.nsf", "noise.nsf_phase")


class InputsFileError(RvcIosError):
    """A user-supplied inputs file that cannot drive a golden run."""



def coarse_pitch(f0_hz: np.ndarray) -> np.ndarray:
    """Upstream pipeline.get_f0's `f0_coarse`: mel-scaled f0 mapped onto 1..255, unvoiced (0 Hz) -> 1."""
    mel_min = 1127 * math.log(1 + F0_MIN_HZ / 700)
    mel_max = 1127 * math.log(1 + F0_MAX_HZ / 700)
    f0_mel = 1127 * np.log(1 + np.asarray(f0_hz, dtype=np.float64) / 700)
    voiced = f0_mel > 0
    f0_mel[voiced] = (f0_mel[voiced] - mel_min) * 254 / (mel_max - mel_min) + 1
    f0_mel[f0_mel <= 1] = 1
    f0_mel[f0_mel > 255] = 255
    return np.rint(f0_mel).astype(np.int32)


def synthesize_voice_inputs(config_like: Any, seed: int, seconds: float, *, sid: int = 0) -> dict[str, np.ndarray]:
    """Plausible synthesizer inputs for one utterance of `seconds`, batch 1, deterministic in `seed`.

    Phone features vary smoothly at HuBERT's 50 frames/s and are repeated to 100 frames/s as upstream does.
    f0 voices also get an f0 contour alternating voiced stretches (gliding notes with vibrato and jitter)
    with unvoiced gaps (0 Hz), and its coarse pitch.
    """
    shape = voice_shape(config_like)
    hubert_frames = int(round(seconds * HUBERT_FRAME_RATE))
    if hubert_frames < 4:
        raise ValueError(f"{seconds} s is too short for a golden run; use at least 0.1 s.")
    if not 0 <= sid < shape.speaker_count:
        raise ValueError(f"Speaker id {sid} is out of range; the voice has {shape.speaker_count} speaker(s).")
    rng = np.random.default_rng(seed)
    frames = hubert_frames * SYNTH_FRAME_RATE // HUBERT_FRAME_RATE

    # Features drift between anchors a few HuBERT frames apart, like phones, with a little frame noise.
    anchor_every = 4
    anchors = rng.standard_normal((hubert_frames // anchor_every + 2, shape.feature_dim))
    position = np.arange(hubert_frames) / anchor_every
    left = np.floor(position).astype(int)
    weight = (position - left)[:, None]
    hubert = anchors[left] * (1 - weight) + anchors[left + 1] * weight
    hubert += 0.1 * rng.standard_normal(hubert.shape)
    phone = np.repeat(hubert, SYNTH_FRAME_RATE // HUBERT_FRAME_RATE, axis=0)[None].astype(np.float32)

    inputs = {
        "phone": phone,
        "phone_lengths": np.array([frames], dtype=np.int32),
        "sid": np.array([sid], dtype=np.int32),
    }
    if shape.f0:
        pitchf = _f0_contour(rng, frames).astype(np.float32)[None]
        inputs["pitch"] = coarse_pitch(pitchf)
        inputs["pitchf"] = pitchf
    return inputs


def _f0_contour(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Alternating unvoiced gaps (0 Hz) and voiced notes; starts unvoiced and always has a voiced stretch."""
    f0 = np.zeros(frames)
    start, voiced = 0, False
    while start < frames:
        if voiced:
            length = int(rng.integers(30, 80))
            t = np.arange(min(length, frames - start)) / SYNTH_FRAME_RATE
            note = 2 ** rng.uniform(np.log2(90), np.log2(400))
            glide_semitones = rng.uniform(-4, 4) * t / max(t[-1], 1e-9)
            vibrato_hz, vibrato_phase = rng.uniform(4.5, 6.5), rng.uniform(0, 2 * np.pi)
            vibrato_semitones = rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * vibrato_hz * t + vibrato_phase)
            jitter_semitones = np.cumsum(rng.normal(0, 0.03, t.size))
            f0[start : start + t.size] = note * 2 ** ((glide_semitones + vibrato_semitones + jitter_semitones) / 12)
        else:
            length = int(rng.integers(8, 20)) if start else min(int(rng.integers(8, 20)), max(frames // 4, 1))
        start += length
        voiced = not voiced
    return f0


def read_inputs_file(path: Path, config_like: Any = None) -> dict[str, np.ndarray]:
    """User-supplied synthesizer inputs from a .safetensors or .npz file, checked and in the golden dtypes.

    Holds `phone` (1, T, 256|768) and optionally `phone_lengths` (default T), `sid` (default 0), and for f0
    voices `pitchf` (Hz, 0 = unvoiced) with optional `pitch` (computed from pitchf when absent).
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            raw = safetensors.numpy.load_file(str(path))
        elif path.suffix == ".npz":
            raw = read_npz(path)
        else:
            raise InputsFileError(f"{path}: inputs must be a .safetensors or .npz file.")
    except InputsFileError:
        raise
    except Exception as exc:
        raise InputsFileError(f"{path} cannot be read as {path.suffix} ({exc}); check the path, or write it again "
                              "(`rvc-ios capture-upstream` writes one).") from None
    fix = f"Write {path.name} with `phone` (1, T, 256 or 768) float32 and, for f0 voices, `pitchf` (1, T) in Hz."

    unknown = sorted(set(raw) - set(INPUT_NAMES) - set(NOISE_NAMES))
    if unknown:
        raise InputsFileError(
            f"{path}: unknown tensors {', '.join(unknown)}; remove them (allowed: {', '.join(INPUT_NAMES + NOISE_NAMES)})."
        )
    if "phone" not in raw:
        raise InputsFileError(f"{path} has no `phone` tensor. {fix}")
    phone = raw["phone"]
    if phone.ndim != 3 or phone.shape[0] != 1 or phone.shape[2] not in (256, 768) or phone.dtype.kind != "f":
        raise InputsFileError(
            f"{path}: `phone` is {phone.dtype} {tuple(phone.shape)}, not float (1, T, 256|768). {fix}"
        )
    frames = phone.shape[1]
    inputs = {"phone": phone.astype(np.float32)}

    def integer_vector(name: str, default: int) -> np.ndarray:
        value = raw.get(name, np.array([default]))
        if value.shape != (1,) or value.dtype.kind not in "iu":
            raise InputsFileError(
                f"{path}: `{name}` is {value.dtype} {tuple(value.shape)}, not an integer of shape (1,)."
            )
        return value.astype(np.int32)

    inputs["phone_lengths"] = integer_vector("phone_lengths", frames)
    inputs["sid"] = integer_vector("sid", 0)
    if not 1 <= inputs["phone_lengths"][0] <= frames:
        raise InputsFileError(f"{path}: `phone_lengths` is {inputs['phone_lengths'][0]}, not in 1..{frames} (T).")
    if inputs["sid"][0] < 0:
        raise InputsFileError(f"{path}: `sid` is negative.")

    if "pitch" in raw and "pitchf" not in raw:
        raise InputsFileError(f"{path}: `pitch` without `pitchf`; supply `pitchf` (Hz) and pitch is derived from it.")
    if "pitchf" in raw:
        pitchf = raw["pitchf"]
        if pitchf.shape != (1, frames) or pitchf.dtype.kind != "f":
            raise InputsFileError(f"{path}: `pitchf` is {pitchf.dtype} {tuple(pitchf.shape)}, not float (1, {frames}).")
        if not np.isfinite(pitchf).all() or (pitchf < 0).any():
            raise InputsFileError(f"{path}: `pitchf` must be finite Hz, 0 for unvoiced frames, never negative.")
        inputs["pitchf"] = pitchf.astype(np.float32)
        pitch = raw.get("pitch", coarse_pitch(inputs["pitchf"]))
        if pitch.shape != (1, frames) or pitch.dtype.kind not in "iu" or pitch.min() < 1 or pitch.max() > 255:
            raise InputsFileError(f"{path}: `pitch` must be integers 1..255 of shape (1, {frames}).")
        inputs["pitch"] = pitch.astype(np.int32)

    if config_like is not None:
        shape = voice_shape(config_like)
        if phone.shape[2] != shape.feature_dim:
            raise InputsFileError(
                f"{path}: `phone` has {phone.shape[2]} features; this voice takes {shape.feature_dim}."
            )
        if shape.f0 and "pitchf" not in inputs:
            raise InputsFileError(f"{path}: this voice uses f0 but the file has no `pitchf`. {fix}")
        if not shape.f0 and "pitchf" in inputs:
            raise InputsFileError(f"{path}: this voice has no f0 input; remove `pitch` and `pitchf`.")
        if inputs["sid"][0] >= shape.speaker_count:
            raise InputsFileError(
                f"{path}: `sid` {inputs['sid'][0]} is out of range; the voice has {shape.speaker_count} speaker(s)."
            )
        inputs.update(read_noise(path, raw, shape, frames))
    elif any(name in raw for name in NOISE_NAMES):
        raise InputsFileError(f"{path}: noise tensors can only be checked against a voice; pass the voice's config.")
    return inputs


def expected_noise_shapes(shape: VoiceShape, frames: int) -> dict[str, tuple[int, ...]]:
    """Each draw's shape for a batch-1 run of `frames` synthesizer frames (upstream's layouts)."""
    if shape.inter_channels is None:
        raise InputsFileError("The voice config lacks `inter_channels`; pass the voice's manifest or checkpoint.")
    shapes = {"noise.z_p": (1, shape.inter_channels, frames)}
    if shape.f0:
        shapes["noise.nsf"] = (1, frames * math.prod(shape.upsample_rates), 1)
        shapes["noise.nsf_phase"] = (1, 1)
    return shapes


def read_noise(path: Path, raw: dict[str, np.ndarray], shape: VoiceShape, frames: int) -> dict[str, np.ndarray]:
    """The draws `raw` holds, each checked against the voice: name, shape, float32, finite values."""
    if not any(name in raw for name in NOISE_NAMES):
        return {}
    expected = expected_noise_shapes(shape, frames)
    noise: dict[str, np.ndarray] = {}
    for name in NOISE_NAMES:
        if name not in raw:
            continue
        array = raw[name]
        if name not in expected:
            raise InputsFileError(f"{path}: `{name}` is given, but this voice has no f0 and never draws it; remove it.")
        if tuple(array.shape) != expected[name]:
            raise InputsFileError(
                f"{path}: `{name}` has shape {tuple(array.shape)}; this voice and {frames} frames need {expected[name]}."
            )
        if array.dtype != np.float32:
            raise InputsFileError(f"{path}: `{name}` is {array.dtype}; write the draw as float32, as upstream draws it.")
        if not np.isfinite(array).all():
            raise InputsFileError(f"{path}: `{name}` holds NaN or infinite values; a random draw is always finite.")
        noise[name] = np.array(array, dtype=np.float32)
    if "noise.nsf_phase" in noise:
        if not ((noise["noise.nsf_phase"] >= 0) & (noise["noise.nsf_phase"] < 1)).all():
            raise InputsFileError(f"{path}: `noise.nsf_phase` must lie in [0, 1), as torch.rand draws it.")
        # Upstream's SineGen zeroes the fundamental's initial phase (`rand_ini[:, 0] = 0`) after drawing it.
        noise["noise.nsf_phase"][:, 0] = 0.0
    return noise
