"""The pipeline's signal processing against upstream's own `Pipeline.pipeline` (rvc 0.3.5), bit for bit.

Upstream's method is run as it is, with its networks stubbed: `get_f0` returns a recorded track and `vc` records
each segment's audio and pitch slices and returns a deterministic stand-in for the synthesizer's output, so
everything else upstream does (filtering, split search, padding, slicing, trimming, RMS mixing, int16) is
compared with ours sample for sample.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest

from rvc_ios_tools.pipeline import audio as dsp

STUBBED_IMPORTS = ("faiss", "parselmouth", "pyworld", "torchcrepe")


@pytest.fixture(scope="module")
def upstream_pipeline():
    """`rvc.modules.vc.pipeline`, imported with its unused f0 extractors and faiss as empty stand-ins.

    A module imported against the stand-ins is dropped from `sys.modules` again, so a later test that runs
    upstream's whole pipeline imports it afresh with the real faiss."""
    name = "rvc.modules.vc.pipeline"
    fresh = name not in sys.modules
    added = [stub for stub in STUBBED_IMPORTS if stub not in sys.modules]
    for stub in added:
        sys.modules[stub] = types.ModuleType(stub)
    try:
        module = importlib.import_module(name)
    finally:
        for stub in added:
            sys.modules.pop(stub, None)
        if fresh and added:
            sys.modules.pop(name, None)
    return module


def speech_like(samples: int, seed: int) -> np.ndarray:
    """Voiced bursts with quiet gaps, a DC offset and rumble below the high-pass, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / dsp.SAMPLE_RATE
    envelope = np.clip(np.sin(2 * np.pi * 0.7 * t) * 1.5, 0, 1) ** 2
    voiced = np.sin(2 * np.pi * 140 * t + 3 * np.sin(2 * np.pi * 5 * t)) + 0.3 * np.sin(2 * np.pi * 420 * t)
    audio = 0.8 * envelope * voiced + 0.01 * rng.standard_normal(samples) + 0.05 + 0.1 * np.sin(2 * np.pi * 12 * t)
    return audio.astype(np.float32)


class FakeNetworks:
    """Stands in for RMVPE and the synthesizer inside upstream's `pipeline`, recording what it is handed."""

    def __init__(self, target_rate: int):
        self.upp = target_rate // 100
        self.calls = []

    def get_f0(self, input_audio_path, x, p_len, f0_up_key, f0_method, filter_radius, inp_f0=None):
        frames = np.arange(p_len + 1)  # extractors return p_len + 1 frames; upstream crops
        pitchf = np.where(frames % 7 < 5, 100 + frames % 50, 0).astype(np.float64)
        return (pitchf // 3).astype(np.int64) + 1, pitchf

    def vc(self, model, net_g, sid, audio0, pitch, pitchf, times, index, big_npy, index_rate, version, protect):
        self.calls.append((np.array(audio0), None if pitch is None else pitch.numpy().copy()))
        p_len = min(audio0.shape[0] // dsp.WINDOW, 2 * ((audio0.shape[0] - 80) // 320))
        return synthesizer_stand_in(audio0, p_len * self.upp)


def synthesizer_stand_in(audio0: np.ndarray, samples: int) -> np.ndarray:
    """A deterministic output of the right length that depends on the segment's audio."""
    phase = np.linspace(0, 40 * np.pi, samples) + float(audio0[:400].sum())
    return (0.6 * np.sin(phase) * (1 + 0.5 * np.cos(phase / 37))).astype(np.float32)


def run_upstream(module, audio: np.ndarray, target_rate: int, rms_mix_rate: float, if_f0: int = 1):
    config = types.SimpleNamespace(x_pad=1, x_query=6, x_center=38, x_max=41, is_half=False, device="cpu")
    pipeline = module.Pipeline(target_rate, config)
    fakes = FakeNetworks(target_rate)
    pipeline.get_f0, pipeline.vc = fakes.get_f0, fakes.vc
    times = {"npy": 0, "f0": 0, "infer": 0}
    out = pipeline.pipeline(None, None, 0, audio.copy(), "in.wav", times, 0, "rmvpe", None, 0.75, if_f0, 3,
                            target_rate, 0, rms_mix_rate, "v2", 0.33, None)
    return out, fakes


def run_ours(audio: np.ndarray, target_rate: int, rms_mix_rate: float):
    """Our steps composed as upstream composes them, with the same stand-in networks."""
    config = dsp.WindowingConfig()
    filtered = dsp.high_pass(audio)
    padded = np.pad(filtered, (config.t_pad, config.t_pad), mode="reflect")
    p_len = padded.shape[0] // dsp.WINDOW
    fakes = FakeNetworks(target_rate)
    _, pitchf = fakes.get_f0(None, padded, p_len, 0, "rmvpe", 3)
    trim = config.t_pad_tgt(target_rate)
    slices, pieces = [], []
    for segment in dsp.plan_segments(dsp.split_points(filtered)):
        audio0 = padded[segment.audio_start : segment.audio_stop]
        slices.append((audio0, segment.pitch_start, segment.pitch_stop))
        p_len_segment = min(audio0.shape[0] // dsp.WINDOW, 2 * ((audio0.shape[0] - 80) // 320))
        pieces.append(synthesizer_stand_in(audio0, p_len_segment * fakes.upp)[trim:-trim])
    output = np.concatenate(pieces)
    if rms_mix_rate != 1:
        output = dsp.change_rms(filtered, dsp.SAMPLE_RATE, output, target_rate, rms_mix_rate)
    return dsp.to_int16(output), slices, pitchf[:p_len]


def test_peak_normalisation_only_attenuates():
    loud = np.array([0.0, -2.0, 1.0], np.float32)
    np.testing.assert_array_equal(dsp.peak_normalise(loud), loud / (np.abs(loud).max() / 0.95))
    quiet = np.array([0.1, -0.5], np.float32)
    np.testing.assert_array_equal(dsp.peak_normalise(quiet), quiet)


def test_the_high_pass_coefficients_are_scipys_butterworth():
    from scipy import signal

    b, a = signal.butter(N=5, Wn=48, btype="high", fs=16000)
    np.testing.assert_array_equal(dsp.HIGH_PASS_B, b)
    np.testing.assert_array_equal(dsp.HIGH_PASS_A, a)


def test_the_high_pass_is_upstreams_filtfilt(upstream_pipeline):
    from scipy import signal

    audio = speech_like(12345, seed=1)
    expected = signal.filtfilt(upstream_pipeline.bh, upstream_pipeline.ah, audio)
    ours = dsp.high_pass(audio)
    assert ours.dtype == np.float64
    np.testing.assert_array_equal(ours, expected)


def test_audio_too_short_for_the_filter_is_refused_with_what_to_do():
    with pytest.raises(dsp.AudioTooShortError, match="at least 19 samples"):
        dsp.high_pass(np.zeros(18, np.float32))


def test_short_audio_is_one_segment():
    assert dsp.split_points(np.zeros(16000 * 40, np.float64)) == []
    assert dsp.plan_segments([]) == [dsp.Segment(0, 0, None, 0, None)]


@pytest.mark.parametrize("seconds, rms_mix_rate, target_rate", [(3.0, 0.25, 40000), (2.0, 1.0, 48000), (1.3, 0.5, 32000)])
def test_one_segment_matches_upstream_sample_for_sample(upstream_pipeline, seconds, rms_mix_rate, target_rate):
    audio = dsp.peak_normalise(speech_like(int(seconds * 16000), seed=2))
    expected, fakes = run_upstream(upstream_pipeline, audio, target_rate, rms_mix_rate)
    ours, slices, _ = run_ours(audio, target_rate, rms_mix_rate)
    assert len(fakes.calls) == len(slices) == 1
    np.testing.assert_array_equal(slices[0][0], fakes.calls[0][0])
    assert ours.dtype == np.int16
    np.testing.assert_array_equal(ours, expected)


def test_long_audio_is_split_at_upstreams_points_and_matches_sample_for_sample(upstream_pipeline):
    audio = dsp.peak_normalise(speech_like(int(83.7 * 16000), seed=3))  # two splits: at about 38 s and 76 s
    expected, fakes = run_upstream(upstream_pipeline, audio, 40000, 0.25)
    ours, slices, pitchf = run_ours(audio, 40000, 0.25)
    assert len(slices) == len(fakes.calls) == 3
    for (audio0, start, stop), (upstream_audio0, upstream_pitch) in zip(slices, fakes.calls):
        np.testing.assert_array_equal(audio0, upstream_audio0)
        expected_pitch = (pitchf // 3).astype(np.int64) + 1
        np.testing.assert_array_equal(expected_pitch[start:stop], upstream_pitch[0])
    np.testing.assert_array_equal(ours, expected)


def test_the_split_search_finds_the_first_quietest_sample():
    filtered = np.ones(16000 * 45, np.float64)
    filtered[16000 * 35 : 16000 * 35 + 400] = 0.0  # a silence inside 38 s +- 6 s
    points = dsp.split_points(filtered)
    assert len(points) == 1
    # The first sample whose whole 160-sample neighbourhood is silent.
    assert points[0] == 16000 * 35 + 80


def test_rms_envelopes_match_librosa():
    import librosa

    rng = np.random.default_rng(4)
    for signal, frame, hop in [(rng.standard_normal(40000), 16000, 8000), (rng.standard_normal(99999).astype(np.float32), 40000, 20000)]:
        np.testing.assert_array_equal(dsp.frame_rms(signal, frame, hop),
                                      librosa.feature.rms(y=signal, frame_length=frame, hop_length=hop))


def test_change_rms_is_upstreams(upstream_pipeline):
    rng = np.random.default_rng(5)
    source = rng.standard_normal(48000) * np.linspace(0.1, 1, 48000)
    output = (rng.standard_normal(120000) * 0.3).astype(np.float32)
    expected = upstream_pipeline.change_rms(source, 16000, output.copy(), 40000, 0.25)
    np.testing.assert_array_equal(dsp.change_rms(source, 16000, output, 40000, 0.25), expected)


def test_int16_truncates_and_limits_the_peak_to_0_99():
    np.testing.assert_array_equal(dsp.to_int16(np.array([0.5, -0.50001, 0.00002], np.float32)), [16384, -16384, 0])
    loud = dsp.to_int16(np.array([2.0, -1.0, 0.3], np.float32))
    assert loud[0] == 32440 and loud[1] == -16220
