"""The numpy MIL interpreter's own kernels (the ops with no coremltools value_inference) against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("coremltools")

import torch
import torch.nn.functional as F

from rvc_ios_tools.coreml.interpreter import UnsupportedOpError, run_program
from rvc_ios_tools.coreml.toolchain import import_coremltools
from rvc_ios_tools.core.diff import snr_db

ct = import_coremltools()
from coremltools.converters.mil import Builder as mb  # noqa: E402  (after import_coremltools)
from coremltools.converters.mil.mil.program import get_new_symbol  # noqa: E402

RNG = np.random.default_rng(0)


def program(x_shape, body, rangedim=False):
    shape = (*x_shape[:-1], get_new_symbol()) if rangedim else x_shape

    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=ct.target.iOS18)
    def built(x):
        return body(x)

    return built


def test_conv1d_with_stride_dilation_groups_and_custom_pads_matches_torch():
    x = RNG.standard_normal((1, 4, 37)).astype(np.float32)
    w = RNG.standard_normal((6, 2, 3)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    built = program(x.shape, lambda v: mb.conv(x=v, weight=w, bias=b, strides=[2], dilations=[3], groups=2,
                                                pad_type="custom", pad=[2, 1]))
    ours = next(iter(run_program(built, {"x": x}).values()))
    theirs = F.conv1d(F.pad(torch.from_numpy(x), (2, 1)), torch.from_numpy(w), torch.from_numpy(b), stride=2,
                      dilation=3, groups=2).numpy()
    assert ours.shape == theirs.shape and snr_db(theirs, ours) > 120


def test_conv2d_same_padding_matches_torch():
    x = RNG.standard_normal((1, 3, 9, 11)).astype(np.float32)
    w = RNG.standard_normal((5, 3, 3, 3)).astype(np.float32)
    built = program(x.shape, lambda v: mb.conv(x=v, weight=w, pad_type="same"))
    ours = next(iter(run_program(built, {"x": x}).values()))
    theirs = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    assert snr_db(theirs, ours) > 120


def test_conv_transpose1d_with_pads_matches_torch():
    x = RNG.standard_normal((1, 4, 13)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 16)).astype(np.float32)  # (C_in, C_out, K), upstream's ups_0 shape family
    built = program(x.shape, lambda v: mb.conv_transpose(x=v, weight=w, strides=[8], pad_type="custom", pad=[4, 4]))
    ours = next(iter(run_program(built, {"x": x}).values()))
    theirs = F.conv_transpose1d(torch.from_numpy(x), torch.from_numpy(w), stride=8, padding=4).numpy()
    assert ours.shape == theirs.shape and snr_db(theirs, ours) > 120


def test_linear_upsample_with_aligned_corners_matches_torch():
    x = RNG.standard_normal((1, 1, 1, 9)).astype(np.float32)
    built = program(x.shape, lambda v: mb.upsample_bilinear(x=v, scale_factor_height=1.0, scale_factor_width=40.0,
                                                            align_corners=True))
    ours = next(iter(run_program(built, {"x": x}).values()))
    theirs = F.interpolate(torch.from_numpy(x[0]), scale_factor=40.0, mode="linear", align_corners=True).numpy()
    assert snr_db(theirs[0], ours[0, 0]) > 120


def test_runtime_shapes_run_a_flexible_program_at_any_length():
    def body(v):
        expanded = mb.expand_dims(x=v, axes=[0])
        return mb.squeeze(x=mb.fill_like(ref_tensor=expanded, value=2.0), axes=[0])

    built = program((1, 3, 8), body, rangedim=True)
    for length in (5, 17):
        out = next(iter(run_program(built, {"x": np.zeros((1, 3, length), np.float32)}).values()))
        assert out.shape == (1, 3, length) and np.all(out == 2.0)


def test_an_op_without_any_implementation_is_named():
    built = program((1, 4), lambda v: mb.random_uniform(shape=np.array([1, 4], np.int32)))
    with pytest.raises(UnsupportedOpError, match="random_uniform"):
        run_program(built, {"x": np.zeros((1, 4), np.float32)})
