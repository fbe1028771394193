"""The MLX reference synthesizer against upstream PyTorch: every stage within 80 dB SNR.

Both sides run the same fp16 demo voice in float32 with the same inputs and noise (upstream's random calls
are replaced by the recorded draws). Tiny voices cover v1/v2, 32k/40k/48k, f0 and no-f0; the full-size
v2 40k voice (2 s of audio, ~10 s of test time) runs in the default set, so every stage is checked at full
size on every run.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from rvc_ios_tools.core import blas
from rvc_ios_tools.voice.checkpoint import load_voice
from rvc_ios_tools.voice.convert import convert_voice
from rvc_ios_tools.core.errors import WeightsMismatchError
from rvc_ios_tools.voice.inputs import synthesize_voice_inputs
from rvc_ios_tools.voice.reference import build_model, draw_noise, run_stage, run_voice, synthesize, voice_spec
from rvc_ios_tools.voice.synthesizer import Synthesizer
from rvc_ios_tools.core.layers import load_weights_strictly
from rvc_ios_tools.core.figures import compare_runs
from rvc_ios_tools.voice.upstream import demo_checkpoint, parity_figures, run_upstream_voice, upstream_model

MIN_SNR_DB = 80.0

TINY_PRESETS = [
    f"{version}-{rate}{'' if f0 else '-nof0'}-tiny"
    for version in ("v1", "v2")
    for rate in ("32k", "40k", "48k")
    for f0 in (True, False)
]


def assert_all_stages_pass(figures, label: str) -> None:
    failing = [f"{f.name}: {f.snr_db:.1f} dB" for f in figures if not f.snr_db >= MIN_SNR_DB]
    assert not failing, f"{label}: stages below {MIN_SNR_DB} dB: {', '.join(failing)}"


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_every_stage_matches_upstream_on_tiny_voice(preset):
    figures = parity_figures(preset, seconds=0.5, seed=3)
    names = [f.name for f in figures]
    expected = ["g", "enc_p.hidden", "m_p", "logs_p", "x_mask", "z_p", "flow.flow_3", "flow.flow_0", "z", "audio"]
    assert set(expected) <= set(names)
    assert ("dec.source" in names) == ("nof0" not in preset)
    assert_all_stages_pass(figures, preset)


@pytest.fixture(scope="module")
def v2_40k_tiny():
    checkpoint = demo_checkpoint("v2-40k-tiny", seed=5)
    inputs = synthesize_voice_inputs(checkpoint, seed=5, seconds=0.6)
    noise = draw_noise(checkpoint, inputs, seed=5)
    reference = run_upstream_voice(upstream_model(checkpoint), checkpoint.f0, inputs, noise)
    weights = convert_voice(checkpoint)
    return checkpoint, inputs, noise, reference, weights


def test_voice_read_from_disk_matches_upstream_in_both_flavors(voice_file):
    for flavor in ("rvc-webui", "applio"):
        checkpoint = load_voice(voice_file("v1-40k-tiny", flavor=flavor, seed=2))
        inputs = synthesize_voice_inputs(checkpoint, seed=2, seconds=0.4)
        noise = draw_noise(checkpoint, inputs, seed=2)
        reference = run_upstream_voice(upstream_model(checkpoint), checkpoint.f0, inputs, noise)
        candidate = run_voice(convert_voice(checkpoint), checkpoint, inputs, noise)
        assert_all_stages_pass(compare_runs(reference, candidate), flavor)


def test_each_stage_fed_upstream_tensors_matches_upstream(v2_40k_tiny):
    """Teacher forcing: every stage run alone from upstream's own inputs to it."""
    checkpoint, inputs, noise, reference, weights = v2_40k_tiny
    model = build_model(checkpoint, weights)
    golden = {**inputs, **noise, **reference}
    for stage in voice_spec(checkpoint).stage_table().stages:
        outputs = run_stage(model, checkpoint, stage.name, golden)
        assert_all_stages_pass(compare_runs({n: reference[n] for n in outputs}, outputs), stage.name)


def test_run_voice_returns_every_golden_tensor_in_upstream_shapes(v2_40k_tiny):
    checkpoint, inputs, noise, reference, weights = v2_40k_tiny
    outputs = run_voice(weights, checkpoint, inputs, noise)
    assert set(outputs) == set(reference)
    for name, array in reference.items():
        assert outputs[name].shape == array.shape, name
        assert outputs[name].dtype == np.float32, name


def test_synthesize_gives_the_chained_runs_audio(v2_40k_tiny):
    checkpoint, inputs, noise, reference, weights = v2_40k_tiny
    audio = synthesize(build_model(checkpoint, weights), inputs, noise)
    assert np.array_equal(audio, run_voice(weights, checkpoint, inputs, noise)["audio"])


def test_draw_noise_is_deterministic_and_shaped_like_upstreams_draws(v2_40k_tiny):
    checkpoint, inputs, _, _, _ = v2_40k_tiny
    frames = inputs["phone"].shape[1]
    noise = draw_noise(checkpoint, inputs, seed=11)
    assert noise["noise.z_p"].shape == (1, checkpoint.config.inter_channels, frames)
    assert noise["noise.nsf"].shape == (1, frames * checkpoint.config.upsample_factor, 1)
    assert noise["noise.nsf_phase"].shape == (1, 1) and noise["noise.nsf_phase"][0, 0] == 0.0
    again = draw_noise(checkpoint, inputs, seed=11)
    assert all(np.array_equal(noise[name], again[name]) for name in noise)


def test_no_f0_voice_draws_only_the_prior_noise():
    checkpoint = demo_checkpoint("v1-32k-nof0-tiny", seed=0)
    inputs = synthesize_voice_inputs(checkpoint, seed=0, seconds=0.2)
    assert set(draw_noise(checkpoint, inputs, seed=0)) == {"noise.z_p"}


def _tiny_model_and_weights(v2_40k_tiny):
    checkpoint, _, _, _, weights = v2_40k_tiny
    spec = voice_spec(checkpoint)
    return Synthesizer(spec.config, spec.version, spec.f0), dict(weights)


def test_loading_refuses_a_missing_key_and_names_it(v2_40k_tiny):
    model, weights = _tiny_model_and_weights(v2_40k_tiny)
    del weights["flow.flow_2.enc.cond_layer.weight"]
    with pytest.raises(WeightsMismatchError, match=r"missing: flow\.flow_2\.enc\.cond_layer\.weight"):
        load_weights_strictly(model, weights)


def test_loading_refuses_an_unused_key_and_names_it(v2_40k_tiny):
    model, weights = _tiny_model_and_weights(v2_40k_tiny)
    weights["dec.resblock_99.c1_0.weight"] = np.zeros((2, 3, 2), np.float32)
    with pytest.raises(WeightsMismatchError, match=r"unused: dec\.resblock_99\.c1_0\.weight \(2, 3, 2\)"):
        load_weights_strictly(model, weights)


def test_loading_refuses_a_wrong_shape_and_names_both_shapes(v2_40k_tiny):
    model, weights = _tiny_model_and_weights(v2_40k_tiny)
    upstream_layout = weights["dec.up_0.weight"].transpose(2, 0, 1)  # (O,K,I) -> (I,O,K) not converted
    weights["dec.up_0.weight"] = upstream_layout
    with pytest.raises(WeightsMismatchError, match=r"dec\.up_0\.weight is \(32, 16, 16\), the model needs \(16, 16, 32\)"):
        load_weights_strictly(model, weights)


def test_module_tree_equals_the_exported_keys(v2_40k_tiny):
    from mlx.utils import tree_flatten

    model, weights = _tiny_model_and_weights(v2_40k_tiny)
    assert {key for key, _ in tree_flatten(model.parameters())} == set(weights)


# --- layers and numerics the parity rests on ---


def test_conv_layers_match_torch_including_dilation_stride_and_transpose():
    import mlx.core as mx
    import torch

    from rvc_ios_tools.core.diff import snr_db
    from rvc_ios_tools.core.layers import conv1d, conv_transpose1d

    rng = np.random.default_rng(0)
    for in_ch, out_ch, kernel, stride, padding, dilation in [
        (24, 16, 11, 1, (25, 25), 5),  # per-tap matmuls
        (8, 16, 3, 1, (3, 3), 3),  # gathered taps
        (1, 8, 80, 40, (20, 20), 1),  # NSF noise conv
        (12, 8, 4, 1, (1, 2), 1),  # FFN's asymmetric same-padding
    ]:
        x = rng.standard_normal((2, 120, in_ch)).astype(np.float32)
        w = rng.standard_normal((out_ch, in_ch, kernel)).astype(np.float32)
        b = rng.standard_normal(out_ch).astype(np.float32)
        padded = np.pad(x, ((0, 0), padding, (0, 0))).transpose(0, 2, 1).copy()
        ref = torch.nn.functional.conv1d(
            torch.from_numpy(padded), torch.from_numpy(w), torch.from_numpy(b), stride=stride, dilation=dilation
        ).numpy().transpose(0, 2, 1)
        out = np.array(conv1d(mx.array(x), mx.array(w.transpose(0, 2, 1)), mx.array(b), stride, padding, dilation))
        assert out.shape == ref.shape and snr_db(ref, out) > 120
    for in_ch, out_ch, kernel, stride in [(32, 16, 16, 10), (16, 8, 4, 2), (24, 12, 24, 12), (8, 4, 20, 8)]:
        x = rng.standard_normal((2, 9, in_ch)).astype(np.float32)
        w = rng.standard_normal((in_ch, out_ch, kernel)).astype(np.float32)
        b = rng.standard_normal(out_ch).astype(np.float32)
        pad = (kernel - stride) // 2
        ref = torch.nn.functional.conv_transpose1d(
            torch.from_numpy(x.transpose(0, 2, 1).copy()), torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=pad
        ).numpy().transpose(0, 2, 1)
        out = np.array(conv_transpose1d(mx.array(x), mx.array(w.transpose(1, 2, 0)), mx.array(b), stride, pad))
        assert out.shape == ref.shape and snr_db(ref, out) > 120


def test_phase_upsampling_is_bit_identical_to_torch():
    """SineGen's wrap detection needs upstream's exact float32 interpolation and cumsum, not just close ones."""
    import mlx.core as mx
    import torch
    import torch.nn.functional as F

    from rvc_ios_tools.voice.generator import cumsum_like_torch, linear_upsample_align_corners

    rng = np.random.default_rng(0)
    frames, upp = 300, 400
    # Flat (unvoiced) stretches are where a plain a*(1-w) + b*w wobbles and fakes phase wraps.
    rad = (rng.random(frames) * 0.02 * (rng.random(frames) > 0.4)).astype(np.float32)
    cum = torch.cumsum(torch.from_numpy(rad), 0)
    ours_cum = np.array(cumsum_like_torch(mx.array(rad)[None, :, None], axis=1))[0, :, 0]
    assert np.array_equal(ours_cum, cum.numpy())
    ref = F.interpolate((cum * upp)[None, None], scale_factor=float(upp), mode="linear", align_corners=True)
    ours = linear_upsample_align_corners(mx.array(cum.numpy() * upp)[None, :, None], frames * upp)
    assert np.array_equal(np.array(ours)[0, :, 0], ref[0, 0].numpy())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OpenBLAS routing is Linux-only")
def test_mlx_matmuls_run_on_openblas_when_it_is_installed():
    import ctypes.util

    if ctypes.util.find_library("openblas") is None and not blas.openblas_loaded():
        pytest.skip("libopenblas0-pthread is not installed")
    assert blas.openblas_loaded()


# --- full size ---


def test_every_stage_matches_upstream_on_full_size_v2_40k_voice():
    figures = parity_figures("v2-40k", seconds=2.0, seed=0)
    assert_all_stages_pass(figures, "v2-40k")
    assert math.isinf(next(f.snr_db for f in figures if f.name == "g"))
