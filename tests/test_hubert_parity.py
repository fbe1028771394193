"""The MLX content encoder against transformers' `HubertModel` (+ final_proj), stage by stage, at 100 dB.

Both sides hold the same random weights (every parameter drawn, the positional convolution's gain perturbed
so the fold matters, `.eval()`): transformers loads them by name; ours reads the same weights written as a
fairseq training dict (hubert_base.pt's format) through `load_hubert`, so the fairseq loading path is under
test too. Audio is real speech (espeak-ng, resampled by sox), raw floats as RVC feeds them.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rvc_ios_tools.core import native_conv, native_kernels  # noqa: E402
from rvc_ios_tools.core.figures import compare_runs  # noqa: E402
from rvc_ios_tools.core.layers import NATIVE_CONV_ENV  # noqa: E402
from rvc_ios_tools.hubert import model as hubert_model  # noqa: E402
from rvc_ios_tools.hubert.convert import convert_hubert, frame_count, load_hubert  # noqa: E402
from rvc_ios_tools.hubert.demo import (  # noqa: E402
    demo_architecture,
    random_hubert_state_dict,
    synthesized_speech,
    write_demo_fairseq,
)
from rvc_ios_tools.hubert.reference import (  # noqa: E402
    AudioTooShortError,
    build_hubert,
    extract_features,
    hubert_golden_tensors,
)
from rvc_ios_tools.hubert.stages import HUBERT_MIN_SNR_DB, hubert_stage_table  # noqa: E402
from rvc_ios_tools.hubert.upstream import load_upstream_hubert, run_upstream_hubert  # noqa: E402

SEED = 0
# (samples, why)
LENGTHS = {
    "speech-1s": 16000,  # 49 frames; 15600 is not a multiple of 320 either
    "401-samples": 401,  # one frame, one sample past the receptive field
    "speech-odd": 16000 + 4321,  # (N - 400) % 320 = 121: the last samples feed no frame
}


class Pair:
    """transformers' model and ours, on the same weights."""

    def __init__(self, preset: str, folder):
        self.architecture = demo_architecture(preset)
        state = random_hubert_state_dict(SEED, self.architecture)
        self.upstream = load_upstream_hubert(state, self.architecture)
        checkpoint = load_hubert(write_demo_fairseq(folder / f"hubert-{preset}.pt", seed=SEED, preset=preset))
        assert checkpoint.flavor == "fairseq"
        self.ours = build_hubert(convert_hubert(checkpoint), checkpoint.architecture)

    def figures(self, audio: np.ndarray, v1_convention: str = "rvc"):
        reference = run_upstream_hubert(self.upstream, audio, v1_convention)
        candidate = hubert_golden_tensors(self.ours, audio, v1_convention)
        assert set(reference) == set(candidate) == set(hubert_stage_table(self.ours).tensor_names)
        return compare_runs({k: v for k, v in reference.items() if k != "audio"}, candidate)


@pytest.fixture(scope="module")
def speech():
    return synthesized_speech(20 * 16000)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return Pair("tiny", tmp_path_factory.mktemp("hubert-tiny"))


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return Pair("full", tmp_path_factory.mktemp("hubert-full"))


def assert_every_stage_at_100_db(figures):
    worst = min(figures, key=lambda f: f.snr_db)
    assert worst.snr_db >= HUBERT_MIN_SNR_DB, f"{worst.name}: {worst.snr_db:.1f} dB"


@pytest.mark.parametrize("length", LENGTHS, ids=str)
def test_tiny_encoder_matches_transformers_at_every_stage(tiny, speech, length):
    audio = speech[: LENGTHS[length]]
    figures = tiny.figures(audio)
    assert {f.name for f in figures} >= {"conv_0", "pos_conv", "layer_0", "layer_3", "v1", "v2"}
    assert_every_stage_at_100_db(figures)


def test_tiny_encoder_with_applios_v1_convention(tiny, speech):
    assert_every_stage_at_100_db(tiny.figures(speech[:16000], v1_convention="applio"))


def test_full_size_encoder_matches_transformers_on_1_s_of_speech(full, speech):
    figures = full.figures(speech[:16000])
    assert len([f for f in figures if f.name.startswith("layer_")]) == 13
    assert_every_stage_at_100_db(figures)


@pytest.mark.slow
def test_full_size_encoder_matches_transformers_on_20_s_of_speech(full, speech):
    assert_every_stage_at_100_db(full.figures(speech))


@pytest.mark.parametrize("samples", [400, 401, 719, 720, 16000, 20321])
def test_frame_count_follows_the_front_end(tiny, samples):
    features = extract_features(tiny.ours, np.zeros(samples, np.float32) + 0.01)
    assert features.shape == (1, frame_count(samples, tiny.architecture), 48) == (1, (samples - 400) // 320 + 1, 48)


def test_fewer_samples_than_the_receptive_field_is_an_error(tiny):
    with pytest.raises(AudioTooShortError, match="400 samples"):
        extract_features(tiny.ours, np.zeros(399, np.float32))


def test_features_are_v2_from_the_last_layer_and_v1_from_final_proj_of_layer_v1(tiny, speech):
    audio = speech[:8000]
    with torch.no_grad():
        result = tiny.upstream(torch.from_numpy(audio[None]), output_hidden_states=True)
        v1 = tiny.upstream.final_proj(result.hidden_states[tiny.architecture["v1_layer"]]).numpy()
    np.testing.assert_allclose(extract_features(tiny.ours, audio, "v2"), result.last_hidden_state.numpy(), atol=1e-4)
    np.testing.assert_allclose(extract_features(tiny.ours, audio, "v1"), v1, atol=1e-4)


@pytest.fixture(params=["native kernels", "MLX formulas"])
def kernels(request, monkeypatch):
    """Both ways the reference computes: the C++ kernels (the default on Linux) and the MLX formulas."""
    if request.param == "native kernels" and not native_conv.available():
        pytest.skip(str(native_conv.unavailable_reason()))
    monkeypatch.setenv(NATIVE_CONV_ENV, "1" if request.param == "native kernels" else "0")
    return request.param


def test_tiny_encoder_matches_transformers_with_either_kernels(tiny, speech, kernels):
    assert_every_stage_at_100_db(tiny.figures(speech[: LENGTHS["speech-odd"]]))


def test_attention_in_query_blocks_equals_attention_at_once(tiny, speech, kernels, monkeypatch):
    """Long audio computes attention a block of queries at a time (bounded memory); the result is the same."""
    audio = speech[:32000]
    whole = extract_features(tiny.ours, audio)
    monkeypatch.setattr(hubert_model, "ATTENTION_BLOCK_BYTES", 1)  # the smallest blocks: 16 of the 99 queries
    monkeypatch.setattr(native_kernels, "ATTENTION_QUERY_BLOCK", 1)  # one query at a time
    np.testing.assert_allclose(extract_features(tiny.ours, audio), whole, rtol=0, atol=2e-6)


def test_group_norm_in_chunks_of_frames_equals_it_at_once(tiny, speech, monkeypatch):
    """Without the native kernels, long audio normalises conv 0 a chunk of frames at a time (bounded
    temporaries); the result is the same."""
    monkeypatch.setenv(NATIVE_CONV_ENV, "0")
    audio = speech[:16000]  # 3199 frames after conv 0
    whole = hubert_golden_tensors(tiny.ours, audio)["conv_0"]
    monkeypatch.setattr(hubert_model, "GROUP_NORM_CHUNK_FRAMES", 512)
    np.testing.assert_allclose(hubert_golden_tensors(tiny.ours, audio)["conv_0"], whole, rtol=0, atol=2e-6)
