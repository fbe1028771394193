"""Plausible voice-porting mistakes, each made in the MLX reference and run through the golden diff.

Every mistake is made here (monkeypatching, weight edits, a wrong noise draw), never as a flag in model
code. The diff must name the stage where the mistake happens as the first divergent one, and where a
mistake has a clean signature (a transposed layout), name that too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rvc_ios_tools.core import blas  # noqa: F401  (OpenBLAS before mlx)

import mlx.core as mx  # noqa: E402

from rvc_ios_tools.core import rules  # noqa: E402
from catalogue_log import log_report  # noqa: E402
from rvc_ios_tools.core.diff import compare_golden  # noqa: E402
from rvc_ios_tools.core.golden import read_golden, write_golden  # noqa: E402
from rvc_ios_tools.voice.inputs import synthesize_voice_inputs  # noqa: E402
from rvc_ios_tools.voice.reference import build_model, draw_noise, run_voice, voice_spec  # noqa: E402
from rvc_ios_tools.voice import flow as flow_module  # noqa: E402
from rvc_ios_tools.voice import generator as generator_module  # noqa: E402
from rvc_ios_tools.voice import synthesizer as synthesizer_module  # noqa: E402
from rvc_ios_tools.voice.convert import convert_voice  # noqa: E402
from rvc_ios_tools.voice.upstream import demo_checkpoint  # noqa: E402

PRESET = "v2-40k-tiny"


@pytest.fixture(scope="module")
def voice():
    checkpoint = demo_checkpoint(PRESET, seed=7)
    inputs = synthesize_voice_inputs(checkpoint, seed=7, seconds=0.5)
    noise = draw_noise(checkpoint, inputs, seed=7)
    return checkpoint, inputs, noise


@pytest.fixture(scope="module")
def golden(voice, tmp_path_factory):
    checkpoint, inputs, noise = voice
    outputs = run_voice(convert_voice(checkpoint), checkpoint, inputs, noise)
    folder = tmp_path_factory.mktemp("voice-golden")
    write_golden(
        folder, "voice", {**inputs, **noise, **outputs}, voice_spec(checkpoint).stage_table(),
        model_name=PRESET, manifest_sha256="0" * 64, seed=7, tool_version="test",
    )
    return read_golden(folder)


def candidate_run(voice, weights=None, noise=None, model=None):
    checkpoint, inputs, recorded_noise = voice
    model = model or build_model(checkpoint, weights if weights is not None else convert_voice(checkpoint))
    return run_voice(model, checkpoint, inputs, noise if noise is not None else recorded_noise)


def diff(golden, candidate):
    return log_report(compare_golden(golden, candidate, {}))


def signature_kinds(report, stage_name: str) -> set[str]:
    stage = next(stage for stage in report.stages if stage.name == stage_name)
    return {signature.kind for tensor in stage.tensors for signature in tensor.signatures}


def test_the_reference_itself_passes_every_stage(golden, voice):
    report = diff(golden, candidate_run(voice))
    assert report.passed and report.first_divergent_stage is None


def test_flip_after_the_coupling_layer_diverges_at_the_first_flow_step(golden, voice, monkeypatch):
    def coupling_then_flip(self, k, x, x_mask, g):
        x = getattr(self, f"flow_{k}").reverse(x, x_mask, g)
        return x[..., ::-1]

    monkeypatch.setattr(flow_module.ResidualCouplingBlock, "reverse_step", coupling_then_flip)
    assert diff(golden, candidate_run(voice)).first_divergent_stage == "flow.flow_3"


def test_flow_layers_loaded_in_reverse_order_diverge_at_the_first_flow_step(golden, voice):
    checkpoint, _, _ = voice
    weights = {}
    for key, array in convert_voice(checkpoint).items():
        if key.startswith("flow.flow_"):
            k = int(key.split(".")[1].rsplit("_", 1)[1])
            key = key.replace(f"flow.flow_{k}.", f"flow.flow_{3 - k}.", 1)
        weights[key] = array
    assert diff(golden, candidate_run(voice, weights)).first_divergent_stage == "flow.flow_3"


def test_layer_norm_gamma_and_beta_not_loaded_diverge_at_the_text_encoder(golden, voice):
    checkpoint, _, _ = voice
    weights = dict(convert_voice(checkpoint))
    for key in weights:
        if ".norm1_" in key or ".norm2_" in key:
            weights[key] = np.ones_like(weights[key]) if key.endswith(".weight") else np.zeros_like(weights[key])
    assert diff(golden, candidate_run(voice, weights)).first_divergent_stage == "text_encoder"


def test_relative_position_embeddings_dropped_diverge_at_the_text_encoder(golden, voice):
    checkpoint, _, _ = voice
    weights = {
        key: np.zeros_like(array) if key.endswith(("emb_rel_k", "emb_rel_v")) else array
        for key, array in convert_voice(checkpoint).items()
    }
    assert diff(golden, candidate_run(voice, weights)).first_divergent_stage == "text_encoder"


def test_relative_position_embeddings_read_in_the_wrong_direction_diverge_at_the_text_encoder(golden, voice):
    """The (1, 2w+1, d) tables transposed in their position axis: offset -r read where +r belongs (the
    relative-to-absolute index mapped backwards), a mistake no shape check can see."""
    checkpoint, _, _ = voice
    weights = {
        key: np.ascontiguousarray(array[:, ::-1]) if key.endswith(("emb_rel_k", "emb_rel_v")) else array
        for key, array in convert_voice(checkpoint).items()
    }
    assert diff(golden, candidate_run(voice, weights)).first_divergent_stage == "text_encoder"


def test_wavenet_reading_the_first_cond_slice_in_every_layer_diverges_at_the_first_flow_step(golden, voice):
    """One cond_layer projects the speaker to 2*hidden channels per layer; a port with one 2*hidden
    projection shared by every layer (per-layer instead of sliced) uses layer 0's slice throughout."""
    checkpoint, _, _ = voice
    weights = dict(convert_voice(checkpoint))
    edited = 0
    for key in list(weights):
        if key.startswith("flow.") and ".cond_layer." in key:
            array = weights[key]
            layers = array.shape[0] // (2 * checkpoint.config.hidden_channels)
            assert layers > 1, "the preset's WaveNet must have several layers for this mistake to matter"
            weights[key] = np.concatenate([array[: array.shape[0] // layers]] * layers, axis=0)
            edited += 1
    assert edited == 8  # weight and bias of each of the four flow steps
    assert diff(golden, candidate_run(voice, weights)).first_divergent_stage == "flow.flow_3"


def test_weight_norm_folded_with_one_global_norm_diverges_at_the_first_flow_step(golden, voice, monkeypatch):
    """||v|| over the whole tensor instead of per output row: the flow's WaveNet is the first weight-norm user."""

    def fold_with_global_norm(g, v):
        v32, g32 = v.astype(np.float32), g.astype(np.float32)
        return (v32 * (g32 / np.sqrt(np.sum(v32 * v32)))).astype(np.float32)

    checkpoint, _, _ = voice
    monkeypatch.setattr(rules, "fold_weight_norm", fold_with_global_norm)
    assert diff(golden, candidate_run(voice, convert_voice(checkpoint))).first_divergent_stage == "flow.flow_3"


def test_encoder_outputs_left_channels_last_are_named_a_transposed_layout(golden, voice):
    """The port writes enc_p's outputs as its own (B, T, C) without declaring that layout."""
    candidate = candidate_run(voice)
    for name in ("enc_p.hidden", "m_p", "logs_p"):
        candidate[name] = np.ascontiguousarray(candidate[name].transpose(0, 2, 1))
    report = diff(golden, candidate)
    assert report.first_divergent_stage == "text_encoder"
    assert report.divergent_stages == ("text_encoder",)
    assert signature_kinds(report, "text_encoder") == {"transposed_layout"}


def test_speaker_embedding_from_the_wrong_row_diverges_at_the_speaker_stage(golden, voice, monkeypatch):
    def next_speaker(self, sid):
        return self.emb_g((sid + 1) % self.emb_g.weight.shape[0])[:, None, :]

    monkeypatch.setattr(synthesizer_module.Synthesizer, "speaker", next_speaker)
    assert diff(golden, candidate_run(voice)).first_divergent_stage == "speaker"


def test_nsf_noise_drawn_afresh_diverges_at_the_nsf_source(golden, voice):
    _, _, noise = voice
    fresh = dict(noise)
    fresh["noise.nsf"] = np.random.default_rng(12345).standard_normal(noise["noise.nsf"].shape).astype(np.float32)
    report = diff(golden, candidate_run(voice, noise=fresh))
    assert report.first_divergent_stage == "nsf_source"
    assert report.divergent_stages == ("nsf_source",)


def test_sine_phase_reset_every_frame_diverges_at_the_nsf_source(golden, voice, monkeypatch):
    """Each frame's sine restarts at phase 0 instead of continuing the running phase across frames."""

    def sine_restarting_each_frame(self, f0, upp, noise, phase):
        rad = mx.repeat((f0[..., None] / self.sampling_rate) % 1, upp, axis=1)
        within_frame = mx.cumsum(rad.reshape(f0.shape[0], f0.shape[1], upp, 1), axis=2).reshape(rad.shape)
        sine = mx.sin(within_frame * 2 * math.pi) * self.sine_amp
        uv = mx.repeat((f0[..., None] > 0).astype(mx.float32), upp, axis=1)
        return sine * uv + (uv * self.noise_std + (1 - uv) * self.sine_amp / 3) * noise

    monkeypatch.setattr(generator_module.SineGen, "__call__", sine_restarting_each_frame)
    report = diff(golden, candidate_run(voice))
    assert report.first_divergent_stage == "nsf_source"
