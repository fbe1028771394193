"""The rule table, the weight-norm fold and the channels-last layouts (rvc_ios_tools/convert.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rvc_ios_tools.voice.checkpoint import load_voice
from rvc_ios_tools.core.rules import (
    MODULE_KINDS,
    _transposed_matrix,
    contiguous_as,
    convert_state_dict,
    find_rule,
    fold_weight_norm,
)
from rvc_ios_tools.voice.convert import VOICE_RULES
from rvc_ios_tools.voice.demo import PRESETS, upstream_class
from rvc_ios_tools.core.errors import UnknownKeyError

TINY_PRESETS = sorted(name for name in PRESETS if name.endswith("-tiny"))


def upstream_folded_state(voice_path, preset):
    """Upstream's own answer: the fp16 voice loaded into the float32 upstream model, remove_weight_norm."""
    spec = PRESETS[preset]
    payload = torch.load(voice_path, weights_only=True)
    weights = {}
    for key, tensor in payload["weight"].items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        weights[key] = tensor.float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = upstream_class(spec.version, spec.f0)(*spec.config, is_half=False)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected and all(k.startswith("enc_q.") for k in missing)
    model.dec.remove_weight_norm()
    model.flow.remove_weight_norm()
    return {k: v.detach().numpy() for k, v in model.state_dict().items() if not k.startswith("enc_q.")}


def expected_transform(source_key: str, array: np.ndarray) -> tuple[str, np.ndarray]:
    module_path, _, param = source_key.rpartition(".")
    rule, match = find_rule(module_path, VOICE_RULES)
    layout = MODULE_KINDS[rule.kind][param]
    return f"{rule.target_key(match)}.{layout.target_name}", layout.transform(array)


@pytest.mark.parametrize("preset", TINY_PRESETS)
@pytest.mark.parametrize("flavor", ["rvc-webui", "applio"])
def test_every_tensor_equals_upstream_folded_weight_in_swift_layout(voice_file, preset, flavor):
    path = voice_file(preset, flavor)
    converted, dropped = convert_state_dict(load_voice(path).state_dict, VOICE_RULES)
    reference = upstream_folded_state(path, preset)
    assert not dropped  # upstream voices never carry enc_q
    produced = {}
    for key, array in reference.items():
        target, expected = expected_transform(key, array)
        produced[target] = key
        got = converted[target].array
        assert got.shape == expected.shape, key
        # The fold runs upstream's own weight-norm function on the same float32 values: equal to the bit.
        np.testing.assert_array_equal(got, expected, err_msg=key)
    assert set(produced) == set(converted), "every converted key comes from exactly one upstream tensor"


def test_fold_matches_torch_weight_norm_on_conv_transpose():
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.ConvTranspose1d(6, 4, 5))
    with torch.no_grad():
        conv.parametrizations.weight.original0.uniform_(0.5, 2.0)
    g = conv.parametrizations.weight.original0.detach().numpy()
    v = conv.parametrizations.weight.original1.detach().numpy()
    assert g.shape == (6, 1, 1)  # dim 0 of ConvTranspose1d's (in, out, k) weight: the input channel
    np.testing.assert_array_equal(fold_weight_norm(g, v), conv.weight.detach().numpy())


def test_fold_from_fp16_is_computed_in_float32():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((4, 3, 5)).astype(np.float16)
    g = rng.uniform(0.5, 1.5, (4, 1, 1)).astype(np.float16)
    folded = fold_weight_norm(g, v)
    assert folded.dtype == np.float32
    expected = v.astype(np.float64) * g.astype(np.float64) / np.linalg.norm(v.astype(np.float64).reshape(4, -1), axis=1)[:, None, None]
    np.testing.assert_allclose(folded, expected, rtol=1e-6)


def test_global_norm_fold_would_differ_from_per_row_fold():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((4, 3, 5)).astype(np.float32)
    g = np.ones((4, 1, 1), np.float32)
    per_row = fold_weight_norm(g, v)
    global_fold = v / np.linalg.norm(v)
    assert not np.allclose(per_row, global_fold)


@pytest.mark.parametrize(
    "source, target",
    [
        ("dec.ups.2.weight", "dec.up_2.weight"),
        ("dec.resblocks.7.convs1.1.weight", "dec.resblock_7.c1_1.weight"),
        ("dec.resblocks.7.convs2.2.bias", "dec.resblock_7.c2_2.bias"),
        ("dec.noise_convs.0.weight", "dec.noise_conv_0.weight"),
        ("enc_p.encoder.attn_layers.3.conv_q.weight", "enc_p.encoder.attn_3.conv_q.weight"),
        ("enc_p.encoder.attn_layers.3.emb_rel_k", "enc_p.encoder.attn_3.emb_rel_k"),
        ("enc_p.encoder.norm_layers_1.0.gamma", "enc_p.encoder.norm1_0.weight"),
        ("enc_p.encoder.norm_layers_2.5.beta", "enc_p.encoder.norm2_5.bias"),
        ("enc_p.encoder.ffn_layers.1.conv_2.weight", "enc_p.encoder.ffn_1.conv_2.weight"),
        ("flow.flows.0.pre.weight", "flow.flow_0.pre.weight"),
        ("flow.flows.6.post.bias", "flow.flow_3.post.bias"),
        ("flow.flows.4.enc.in_layers.2.weight", "flow.flow_2.enc.in_layer_2.weight"),
        ("flow.flows.2.enc.res_skip_layers.0.bias", "flow.flow_1.enc.res_skip_layer_0.bias"),
        ("flow.flows.2.enc.cond_layer.weight", "flow.flow_1.enc.cond_layer.weight"),
        ("emb_g.weight", "emb_g.weight"),
        ("dec.m_source.l_linear.weight", "dec.m_source.l_linear.weight"),
    ],
)
def test_rule_table_renames(source, target):
    array = np.zeros((2, 2, 2), np.float32) if source.endswith("weight") and "emb" not in source and "l_linear" not in source else np.zeros((2,), np.float32)
    if source.endswith("emb_rel_k"):
        array = np.zeros((1, 21, 4), np.float32)
    if source in ("emb_g.weight", "dec.m_source.l_linear.weight"):
        array = np.zeros((2, 2), np.float32)
    converted, _ = convert_state_dict({source: array}, VOICE_RULES)
    assert list(converted) == [target]


@pytest.mark.parametrize(
    "kind, pytorch_shape, swift_shape, layout",
    [
        ("conv1d", (8, 3, 5), (8, 5, 3), "OKI"),
        ("conv_transpose1d", (3, 8, 5), (8, 5, 3), "OKI"),
        ("conv2d", (8, 3, 5, 7), (8, 5, 7, 3), "OHWI"),
        ("conv_transpose2d", (3, 8, 5, 7), (8, 5, 7, 3), "OHWI"),
        ("linear", (8, 3), (8, 3), "OI"),
        ("embedding", (8, 3), (8, 3), "ND"),
    ],
)
def test_layouts_are_channels_last(kind, pytorch_shape, swift_shape, layout):
    spec = MODULE_KINDS[kind]["weight"]
    array = np.arange(np.prod(pytorch_shape), dtype=np.float32).reshape(pytorch_shape)
    out = spec.transform(array)
    assert out.shape == swift_shape and spec.layout == layout
    if kind == "conv1d":
        assert out[2, 4, 1] == array[2, 1, 4]
    if kind == "conv_transpose1d":
        assert out[6, 4, 1] == array[1, 6, 4]


def test_relative_embeddings_are_not_transposed():
    table = np.arange(1 * 21 * 4, dtype=np.float32).reshape(1, 21, 4)
    converted, _ = convert_state_dict({"enc_p.encoder.attn_layers.0.emb_rel_v": table}, VOICE_RULES)
    np.testing.assert_array_equal(converted["enc_p.encoder.attn_0.emb_rel_v"].array, table)


def test_unknown_key_is_an_error_not_a_silent_drop():
    with pytest.raises(UnknownKeyError, match="dec.mystery.weight"):
        convert_state_dict({"dec.mystery.weight": np.zeros((2, 2, 2), np.float32)}, VOICE_RULES)


def test_unknown_parameter_of_a_known_module_is_an_error():
    with pytest.raises(UnknownKeyError, match="running_mean"):
        convert_state_dict({"dec.conv_pre.running_mean": np.zeros((2,), np.float32)}, VOICE_RULES)


def test_half_a_weight_norm_pair_is_an_error():
    with pytest.raises(UnknownKeyError, match="gain is missing"):
        convert_state_dict({"dec.ups.0.weight_v": np.zeros((2, 2, 2), np.float32)}, VOICE_RULES)


def test_enc_q_is_dropped_by_a_named_rule():
    converted, dropped = convert_state_dict({"enc_q.pre.weight": np.zeros((2, 2, 1), np.float32)}, VOICE_RULES)
    assert not converted
    assert dropped[0].source_key == "enc_q.pre.weight" and "training" in dropped[0].why


def test_odd_flow_indices_have_no_rule_because_flips_have_no_weights():
    with pytest.raises(UnknownKeyError):
        convert_state_dict({"flow.flows.1.pre.weight": np.zeros((2, 2, 1), np.float32)}, VOICE_RULES)


def test_float16_export_casts_after_folding():
    rng = np.random.default_rng(2)
    v = rng.standard_normal((4, 3, 5)).astype(np.float16)
    g = rng.uniform(0.5, 1.5, (4, 1, 1)).astype(np.float16)
    converted, _ = convert_state_dict({"dec.resblocks.0.convs1.0.weight_g": g, "dec.resblocks.0.convs1.0.weight_v": v}, VOICE_RULES, dtype="float16")
    tensor = converted["dec.resblock_0.c1_0.weight"]
    assert tensor.array.dtype == np.float16 and tensor.folded_weight_norm
    np.testing.assert_allclose(tensor.array, fold_weight_norm(g, v).transpose(0, 2, 1).astype(np.float16))


@pytest.mark.parametrize(
    "shape, axes, one_transpose",
    [
        ((96, 64, 24), (1, 2, 0), True),  # ConvTranspose1d (I,O,K) -> (O,K,I): the blocked-transpose path
        ((48, 32, 3, 3), (1, 2, 3, 0), True),  # ConvTranspose2d
        ((300, 200), (1, 0), True),
        ((8, 700, 2), (1, 2, 0), True),  # unit-free but tall
        ((64, 32, 5), (0, 2, 1), False),  # Conv1d: axis 0 stays, a strided copy
        ((3, 4, 5), (1, 2, 0), True),  # below the blocked path's minimum size
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_layout_copy_is_c_order_in_the_target_dtype(shape, axes, one_transpose, dtype):
    source = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    view = source.transpose(axes)
    assert (_transposed_matrix(view) is not None) == one_transpose
    out = contiguous_as(view, dtype)
    assert out.flags.c_contiguous and out.dtype == np.dtype(dtype) and out.shape == view.shape
    np.testing.assert_array_equal(out, np.ascontiguousarray(view).astype(dtype))
