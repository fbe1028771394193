"""What upstream does between the networks for one segment (`Pipeline.vc`), and to the whole signal's pitch
(`Pipeline.get_f0` after the extractor), step for step in upstream's dtypes.

Per segment: the content features (50 frames/s) are kept as `feats0` when protect is on; retrieval replaces
them before the x2 upsampling; both are repeated to 100 frames/s (nearest); the frame count is the audio's
(`len // 160`) unless the features are shorter, which crops the pitch; protect blends the retrieved features
with the raw ones on unvoiced frames. The synthesizer then gets `(feats, p_len, pitch, pitchf, sid)`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..voice.inputs import coarse_pitch
from .audio import WINDOW

# Upstream's protect is on only strictly below 0.5; 0.5 (and more) leaves the features alone.
PROTECT_OFF = 0.5


def shift_pitch(f0_hz: np.ndarray, semitones: float) -> tuple[np.ndarray, np.ndarray]:
    """`f0 *= pow(2, f0_up_key / 12)` in float64, then (coarse pitch 1..255 int32, pitchf float32 Hz)."""
    f0 = np.array(f0_hz, dtype=np.float64)
    f0 *= pow(2, semitones / 12)
    return coarse_pitch(f0), f0.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SynthesizerInputs:
    """One segment's synthesizer call, batch 1: phone (1, p_len or more, C) float32, pitch (1, p_len) int64,
    pitchf (1, p_len) float32 (both None without f0), phone_lengths (1,) = p_len."""

    phone: np.ndarray
    phone_lengths: np.ndarray
    pitch: np.ndarray | None
    pitchf: np.ndarray | None


def upsample_frames(feats: np.ndarray) -> np.ndarray:
    """`F.interpolate(feats.permute(0, 2, 1), scale_factor=2)` (nearest) on (T, C): every frame twice."""
    return np.repeat(feats, 2, axis=0)


def protect_unvoiced(feats: np.ndarray, feats0: np.ndarray, pitchf: np.ndarray, protect: float) -> np.ndarray:
    """`pitchff = pitchf; pitchff[pitchf > 0] = 1; pitchff[pitchf < 1] = protect;
    feats = feats * pitchff + feats0 * (1 - pitchff)`, in float32 (so even without retrieval the sum may move
    by an ulp, as upstream's does)."""
    pitchff = np.array(pitchf, dtype=np.float32)
    pitchff[pitchf > 0] = 1
    pitchff[pitchf < 1] = protect
    pitchff = pitchff[:, None]
    return feats * pitchff + feats0 * (np.float32(1) - pitchff)


def synthesizer_inputs(
    feats: np.ndarray,
    audio_samples: int,
    pitch: np.ndarray | None,
    pitchf: np.ndarray | None,
    protect: float,
    retrieved: np.ndarray | None = None,
) -> SynthesizerInputs:
    """Upstream `vc` from the content features on: `feats` (T, C) float32 at 50 frames/s; `retrieved` the
    index-blended features of the same shape (None without an index); `pitch`/`pitchf` the segment's slices
    of the whole signal's track (None for a voice without f0); `audio_samples` the segment's audio length."""
    feats = np.asarray(feats, dtype=np.float32)
    protecting = protect < PROTECT_OFF and pitch is not None and pitchf is not None
    feats0 = feats
    if retrieved is not None:
        feats = np.asarray(retrieved, dtype=np.float32)
    feats = upsample_frames(feats)
    if protecting:
        feats0 = upsample_frames(feats0)
    p_len = audio_samples // WINDOW
    if feats.shape[0] < p_len:
        p_len = feats.shape[0]
        if pitch is not None and pitchf is not None:
            pitch, pitchf = pitch[:p_len], pitchf[:p_len]
    if protecting:
        feats = protect_unvoiced(feats, feats0, pitchf, protect)
    return SynthesizerInputs(
        phone=feats[None],
        phone_lengths=np.array([p_len], dtype=np.int64),
        pitch=None if pitch is None else np.asarray(pitch, dtype=np.int64)[None],
        pitchf=None if pitchf is None else np.asarray(pitchf, dtype=np.float32)[None],
    )
