"""One segment's steps between the networks, against upstream's own `Pipeline.vc` (rvc 0.3.5), bit for bit.

Upstream's method runs as it is with stand-ins: a content encoder that returns given features, an index whose
`search` returns given scores and ids, and a synthesizer that records what it is called with. Ours must hand
the synthesizer exactly the same tensors.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from rvc_ios_tools.index.reference import blend, retrieval_weights, retrieve
from rvc_ios_tools.pipeline import segment
from rvc_ios_tools.voice.inputs import coarse_pitch

from test_pipeline_audio import upstream_pipeline  # noqa: F401  (the module fixture)


class GivenFeatures:
    """A content encoder stand-in: `extract_features` returns the given (1, T, C) features."""

    def __init__(self, feats: np.ndarray):
        self.feats = torch.from_numpy(feats[None])
        self.final_proj = lambda x: x

    def extract_features(self, source, padding_mask, output_layer):
        return (self.feats.clone(),)


class GivenSearch:
    def __init__(self, scores: np.ndarray, ids: np.ndarray):
        self.scores, self.ids = scores, ids

    def search(self, queries, k):
        assert k == 8
        return self.scores, self.ids


class RecordingSynthesizer:
    def infer(self, *args):
        self.args = [a.numpy().copy() if isinstance(a, torch.Tensor) else a for a in args]
        return (torch.zeros(1, 1, 10),)


def nearest_eight(queries: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distances = ((queries[:, None, :].astype(np.float64) - vectors[None]) ** 2).sum(-1)
    ids = np.argsort(distances, axis=1)[:, :8]
    return np.take_along_axis(distances, ids, 1).astype(np.float32), ids.astype(np.int64)


def segment_case(seed: int, frames: int, channels: int, f0: bool):
    rng = np.random.default_rng(seed)
    audio_samples = 2 * frames * 160 + 240  # the features' 2T frames are fewer than the audio's frames
    feats = rng.standard_normal((frames, channels)).astype(np.float32)
    big_npy = rng.standard_normal((300, channels)).astype(np.float32)
    scores, ids = nearest_eight(feats, big_npy)
    pitch_frames = audio_samples // 160 - 1
    pitchf = np.where(rng.random(pitch_frames) < 0.3, 0, rng.uniform(60, 500, pitch_frames)).astype(np.float32)
    pitch = coarse_pitch(pitchf).astype(np.int64)
    if not f0:
        pitch = pitchf = None
    return audio_samples, feats, big_npy, scores, ids, pitch, pitchf


def run_upstream_vc(module, audio_samples, feats, big_npy, scores, ids, pitch, pitchf, index_rate, protect):
    config = types.SimpleNamespace(x_pad=1, x_query=6, x_center=38, x_max=41, is_half=False, device="cpu")
    pipeline = module.Pipeline(40000, config)
    synthesizer = RecordingSynthesizer()
    index = None if index_rate == 0 else GivenSearch(scores, ids)
    pipeline.vc(
        GivenFeatures(feats), synthesizer, torch.tensor([0]), np.zeros(audio_samples),
        None if pitch is None else torch.from_numpy(pitch[None]), None if pitchf is None else torch.from_numpy(pitchf[None]),
        {"npy": 0, "infer": 0}, index, None if index is None else big_npy, index_rate, "v2", protect,
    )
    return synthesizer.args


def run_ours(audio_samples, feats, big_npy, scores, ids, pitch, pitchf, index_rate, protect):
    retrieved = None
    if index_rate != 0:
        retrieved = blend(retrieve(big_npy, ids, retrieval_weights(scores)), feats, index_rate)
    return segment.synthesizer_inputs(feats, audio_samples, pitch, pitchf, protect, retrieved)


@pytest.mark.parametrize(
    "f0, index_rate, protect",
    [(True, 0.75, 0.33), (True, 0.75, 0.5), (True, 0.0, 0.33), (True, 1.0, 0.2), (False, 0.75, 0.33), (False, 0.0, 0.5)],
)
def test_the_synthesizer_gets_what_upstream_gives_it(upstream_pipeline, f0, index_rate, protect):  # noqa: F811
    case = segment_case(seed=int(index_rate * 100 + protect * 10 + f0), frames=37, channels=768, f0=f0)
    expected = run_upstream_vc(upstream_pipeline, *case, index_rate, protect)
    ours = run_ours(*case, index_rate, protect)
    if f0:
        feats, p_len, pitch, pitchf, _ = expected
        np.testing.assert_array_equal(ours.pitch, pitch)
        np.testing.assert_array_equal(ours.pitchf, pitchf)
    else:
        feats, p_len, _ = expected
        assert ours.pitch is None and ours.pitchf is None
    np.testing.assert_array_equal(ours.phone_lengths, p_len)
    assert ours.phone.dtype == np.float32
    np.testing.assert_array_equal(ours.phone, feats)


def test_frames_are_repeated_not_interpolated():
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(segment.upsample_frames(feats), [[0, 1], [0, 1], [2, 3], [2, 3], [4, 5], [4, 5]])


def test_protect_keeps_voiced_frames_and_blends_unvoiced_ones():
    feats = np.full((3, 1), 2.0, np.float32)
    raw = np.zeros((3, 1), np.float32)
    blended = segment.protect_unvoiced(feats, raw, np.array([0.0, 0.5, 120.0], np.float32), 0.25)
    np.testing.assert_array_equal(blended[:, 0], [0.5, 0.5, 2.0])  # below 1 Hz counts as unvoiced


def test_a_key_shift_moves_f0_before_the_coarse_pitch():
    coarse, pitchf = segment.shift_pitch(np.array([0.0, 220.0, 1000.0]), 12)
    np.testing.assert_array_equal(pitchf, np.array([0.0, 440.0, 2000.0], np.float32))
    np.testing.assert_array_equal(coarse, coarse_pitch(np.array([0.0, 440.0, 2000.0])))
    assert coarse[0] == 1 and coarse[2] == 255
