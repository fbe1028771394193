"""The pipeline's bug catalogue: each published port mistake made in the MLX reference, and the golden diff
naming the stage where it first shows.

The golden set is the reference's own conversion of 4.5 s of speech-like audio, windowed so that it splits into
three segments (so a per-segment f0 shows); each test re-runs the conversion with one mistake and diffs it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from catalogue_log import log_report
from rvc_ios_tools.core.diff import compare_golden
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.index import reference as index_reference
from rvc_ios_tools.pipeline import audio as dsp
from rvc_ios_tools.pipeline import convert as pipeline
from rvc_ios_tools.pipeline import segment
from rvc_ios_tools.pipeline.golden import write_pipeline_golden
from rvc_ios_tools.rmvpe.reference import THRESHOLD, log_mel, mel_to_salience, salience_to_f0

from test_pipeline_audio import speech_like
from test_pipeline_parity import Setup

# Split near 2 s and 4 s (x_center 2, x_query 1): three segments in 4.5 s.
OPTIONS = pipeline.ConvertOptions(seed=3, windowing=dsp.WindowingConfig(x_pad=1, x_query=1, x_center=2, x_max=3))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return Setup(tmp_path_factory.mktemp("mutations"), "v2-40k-tiny", "tiny", with_index=True)


@pytest.fixture(scope="module")
def audio():
    return dsp.peak_normalise(speech_like(int(4.5 * 16000), seed=11))


@pytest.fixture(scope="module")
def golden(tmp_path_factory, setup, audio):
    stages = pipeline.convert(setup.networks, audio, OPTIONS)
    assert len(stages["split_points"]) == 2  # three segments
    out = tmp_path_factory.mktemp("golden") / "pipeline"
    write_pipeline_golden(out, stages, model_name="voice", source_sha256="0" * 64, options=OPTIONS)
    return read_golden(out)


def diff(golden, setup, audio):
    stages = pipeline.convert(setup.networks, audio, OPTIONS)
    candidate = {name: stages[name] for name in golden.tensors if name in stages}
    return log_report(compare_golden(golden, candidate, {}))


def test_the_unmutated_reference_passes_its_own_golden_set(golden, setup, audio):
    assert diff(golden, setup, audio).passed


def test_coarse_pitch_truncated_diverges_at_pitch(monkeypatch, golden, setup, audio):
    def truncating(f0_hz, semitones):
        f0 = np.array(f0_hz, dtype=np.float64) * pow(2, semitones / 12)
        mel = 1127 * np.log(1 + f0 / 700)
        low, high = 1127 * np.log(1 + 50 / 700), 1127 * np.log(1 + 1100 / 700)
        mel[mel > 0] = (mel[mel > 0] - low) * 254 / (high - low) + 1
        mel = np.clip(mel, 1, 255)
        return mel.astype(np.int32), f0.astype(np.float32)  # astype truncates; upstream rounds (np.rint)

    monkeypatch.setattr(pipeline, "shift_pitch", truncating)
    assert diff(golden, setup, audio).first_divergent_stage == "pitch"


def test_lfilter_instead_of_filtfilt_diverges_at_high_pass(monkeypatch, golden, setup, audio):
    monkeypatch.setattr(dsp, "high_pass", lambda x: signal.lfilter(dsp.HIGH_PASS_B, dsp.HIGH_PASS_A, x))
    assert diff(golden, setup, audio).first_divergent_stage == "high_pass"


def test_symmetric_instead_of_reflect_padding_diverges_at_pad(monkeypatch, golden, setup, audio):
    monkeypatch.setattr(dsp, "pad_for_segments",
                        lambda x, config=dsp.WindowingConfig(): np.pad(x, (config.t_pad, config.t_pad), mode="symmetric"))
    assert diff(golden, setup, audio).first_divergent_stage == "pad"


def test_f0_per_segment_diverges_at_the_first_segments_synthesizer_inputs(monkeypatch, golden, setup, audio):
    def per_segment(networks, options, audio0, pitch, pitchf, part):
        salience = np.array(mel_to_salience(networks.rmvpe, log_mel(audio0.astype(np.float32)[None]), options.rmvpe_pad_mode))
        coarse, hz = segment.shift_pitch(salience_to_f0(salience, THRESHOLD)[0], options.pitch)
        frames = (part.pitch_stop or pitch.size) - part.pitch_start
        return coarse[:frames], hz[:frames]

    monkeypatch.setattr(pipeline, "pitch_of_segment", per_segment)
    assert diff(golden, setup, audio).first_divergent_stage == "segment.0.synthesizer_inputs"


def test_linear_instead_of_nearest_x2_diverges_at_the_synthesizer_inputs(monkeypatch, golden, setup, audio):
    def linear(feats):
        frames = np.arange(2 * feats.shape[0]) / 2
        return np.stack([np.interp(frames, np.arange(feats.shape[0]), column) for column in feats.T], 1).astype(np.float32)

    monkeypatch.setattr(segment, "upsample_frames", linear)
    assert diff(golden, setup, audio).first_divergent_stage == "segment.0.synthesizer_inputs"


def test_protect_inverted_diverges_at_the_synthesizer_inputs(monkeypatch, golden, setup, audio):
    original = segment.protect_unvoiced
    monkeypatch.setattr(segment, "protect_unvoiced", lambda feats, feats0, pitchf, protect: original(feats0, feats, pitchf, protect))
    assert diff(golden, setup, audio).first_divergent_stage == "segment.0.synthesizer_inputs"


def test_raw_features_kept_after_retrieval_diverge_at_the_synthesizer_inputs(monkeypatch, golden, setup, audio):
    # feats0 must be copied before retrieval; a port that copies it after blends the retrieved features with themselves.
    original = pipeline.synthesizer_inputs
    monkeypatch.setattr(pipeline, "synthesizer_inputs",
                        lambda feats, samples, pitch, pitchf, protect, retrieved=None:
                        original(feats if retrieved is None else retrieved, samples, pitch, pitchf, protect, retrieved))
    assert diff(golden, setup, audio).first_divergent_stage == "segment.0.synthesizer_inputs"


def test_retrieval_after_the_x2_upsampling_changes_nothing_with_nearest_x2(monkeypatch, golden, setup, audio):
    """Not a catalogue entry the diff can name: nearest x2 repeats each frame, and searching a repeated frame
    repeats its result, so retrieval after x2 gives bit-identical features (at twice the searches)."""
    original = pipeline.retrieval

    def after_x2(index, feats, index_rate):
        doubled = original(index, segment.upsample_frames(feats), index_rate)
        return index_reference.Retrieval(doubled.search, doubled.weights[::2], doubled.retrieved[::2], doubled.blended[::2])

    monkeypatch.setattr(pipeline, "retrieval", after_x2)
    assert diff(golden, setup, audio).passed


def test_one_over_d_weights_diverge_at_the_first_segments_retrieval(monkeypatch, golden, setup, audio):
    def one_over_d(scores):
        weight = 1 / np.sqrt(scores)
        return (weight / weight.sum(axis=1, keepdims=True)).astype(np.float32)

    monkeypatch.setattr(index_reference, "retrieval_weights", one_over_d)
    assert diff(golden, setup, audio).first_divergent_stage == "segment.0.retrieval"


def test_wrong_rms_frame_length_diverges_at_rms_mix(monkeypatch, golden, setup, audio):
    original = dsp.frame_rms
    monkeypatch.setattr(dsp, "frame_rms", lambda x, frame_length, hop_length: original(x, frame_length // 2, hop_length))
    assert diff(golden, setup, audio).first_divergent_stage == "rms_mix"


def test_int16_rounding_instead_of_truncation_diverges_at_int16(monkeypatch, golden, setup, audio):
    def rounding(x):
        x = np.asarray(x, dtype=np.float32)
        scale = 32768 / max(np.abs(x).max() / 0.99, 1)
        return np.rint(x * scale).astype(np.int16)

    monkeypatch.setattr(dsp, "to_int16", rounding)
    assert diff(golden, setup, audio).first_divergent_stage == "int16"
