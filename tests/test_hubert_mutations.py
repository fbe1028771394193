"""Content-encoder porting mistakes seen in the wild, each made in the MLX reference and run through the golden
diff: it must name the stage where the mistake happens (first divergent stage, every stage held to 100 dB).

The model is the tiny demo encoder (the committed fixtures' structure: every layer kind, random weights, the
positional convolution's gain perturbed), the audio 1 s of espeak-ng speech.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from catalogue_log import log_report
from rvc_ios_tools.core.diff import compare_golden
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.hubert import model as hubert_model
from rvc_ios_tools.hubert.convert import TINY_ARCHITECTURE, convert_hubert_state_dict
from rvc_ios_tools.hubert.demo import random_hubert_state_dict, synthesized_speech
from rvc_ios_tools.hubert.reference import build_hubert, hubert_golden_tensors, write_hubert_golden

SAMPLES = 16000


@pytest.fixture(scope="module")
def state():
    return {key: tensor.numpy() for key, tensor in random_hubert_state_dict(0, TINY_ARCHITECTURE).items()}


@pytest.fixture(scope="module")
def weights(state):
    converted, _ = convert_hubert_state_dict(state, TINY_ARCHITECTURE)
    return {key: tensor.array for key, tensor in converted.items()}


@pytest.fixture(scope="module")
def audio():
    return synthesized_speech(SAMPLES)


@pytest.fixture(scope="module")
def golden(weights, audio, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hubert-golden")
    write_hubert_golden(folder, build_hubert(weights, TINY_ARCHITECTURE), audio, model_name="hubert-tiny",
                        manifest_sha256="0" * 64, seed=0)
    return read_golden(folder)


def first_divergent(golden, candidate: dict[str, np.ndarray]) -> str | None:
    return log_report(compare_golden(golden, candidate, {})).first_divergent_stage


def run(weights, audio, architecture=TINY_ARCHITECTURE, v1_convention="rvc"):
    return hubert_golden_tensors(build_hubert(weights, architecture), audio, v1_convention)


def test_the_reference_itself_passes_every_stage(golden, weights, audio):
    report = compare_golden(golden, run(weights, audio), {})
    assert report.passed and report.first_divergent_stage is None


def test_gelu_missing_after_the_positional_conv_diverges_at_pos_conv(golden, weights, audio, monkeypatch):
    original = hubert_model.PositionalConv.__call__

    def without_gelu(self, x):
        with monkeypatch.context() as patch:
            patch.setattr(hubert_model, "gelu", lambda y: y)
            return original(self, x)

    monkeypatch.setattr(hubert_model.PositionalConv, "__call__", without_gelu)
    assert first_divergent(golden, run(weights, audio)) == "pos_conv"


def test_layer_norm_eps_1e_12_diverges_at_conv_0(golden, weights, audio):
    """BERT's eps everywhere: the GroupNorm on conv 0 is the first norm the audio meets."""
    assert first_divergent(golden, run(weights, audio, {**TINY_ARCHITECTURE, "layer_norm_eps": 1e-12})) == "conv_0"


def test_pre_ln_layers_diverge_at_layer_1(golden, weights, audio, monkeypatch):
    def pre_ln(self, x):
        x = x + self.attention(self.attention_norm(x))
        return x + self.fc2(hubert_model.gelu(self.fc1(self.final_norm(x))))

    monkeypatch.setattr(hubert_model.EncoderLayer, "__call__", pre_ln)
    assert first_divergent(golden, run(weights, audio)) == "layer_1"


def test_tanh_approximate_gelu_diverges_at_conv_0(golden, weights, audio, monkeypatch):
    """MLX's `nn.GELU(approx="precise")` is the tanh form; upstream's is exact (erf)."""
    monkeypatch.setattr(hubert_model, "gelu", nn.gelu_approx)
    assert first_divergent(golden, run(weights, audio)) == "conv_0"


def test_weight_norm_folded_over_dim_0_diverges_at_pos_conv(golden, weights, state, audio):
    """The norm per output channel (as for voices) instead of per kernel tap."""
    g = state["encoder.pos_conv_embed.conv.parametrizations.weight.original0"].astype(np.float64)
    v = state["encoder.pos_conv_embed.conv.parametrizations.weight.original1"].astype(np.float64)
    per_row = g * v / np.sqrt((v * v).sum(axis=(1, 2), keepdims=True))
    mutated = {**weights, "encoder.pos_conv.weight": np.ascontiguousarray(per_row.transpose(0, 2, 1), np.float32)}
    assert first_divergent(golden, run(mutated, audio)) == "pos_conv"


def test_first_instead_of_last_frame_dropped_diverges_at_pos_conv(golden, weights, audio, monkeypatch):
    monkeypatch.setattr(hubert_model.PositionalConv, "same_pad", lambda self, y, frames: y[:, y.shape[1] - frames:])
    assert first_divergent(golden, run(weights, audio)) == "pos_conv"


def test_no_attention_scaling_diverges_at_layer_1(golden, weights, audio):
    model = build_hubert(weights, TINY_ARCHITECTURE)
    for n in range(TINY_ARCHITECTURE["num_layers"]):
        model.encoder.layer(n).attention.scaling = 1.0
    assert first_divergent(golden, hubert_golden_tensors(model, audio)) == "layer_1"


def test_v1_from_the_last_layer_diverges_at_v1(golden, weights, audio):
    """Applio's final_proj(layer 12) where RVC's final_proj(layer 9) is wanted."""
    assert first_divergent(golden, run(weights, audio, v1_convention="applio")) == "v1"


def test_group_norm_over_channels_instead_of_time_diverges_at_conv_0(golden, weights, audio, monkeypatch):
    def over_channels(self, x):
        mean = mx.mean(x, axis=-1, keepdims=True)
        variance = mx.var(x, axis=-1, keepdims=True)
        return (x - mean) * mx.rsqrt(variance + self.eps) * self.weight + self.bias

    monkeypatch.setattr(hubert_model.GroupNormOverTime, "__call__", over_channels)
    assert first_divergent(golden, run(weights, audio)) == "conv_0"


def test_final_proj_dropped_diverges_at_v1(golden, weights, audio):
    """v1 features taken as layer 9 itself, 768-d where final_proj makes 256-d."""
    candidate = run(weights, audio)
    candidate["v1"] = candidate[f"layer_{TINY_ARCHITECTURE['v1_layer']}"]
    assert first_divergent(golden, candidate) == "v1"
