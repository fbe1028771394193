"""The native Conv1d kernel (`native_conv.conv1d`) against the per-tap MLX layer it replaces and PyTorch, at
stride 1 (the synthesizer's convolutions), strided (the content encoder's front end) and grouped (its
positional convolution)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rvc_ios_tools.core import blas, native_conv

import mlx.core as mx

from rvc_ios_tools.core import layers

needs_kernel = pytest.mark.skipif(not native_conv.available(), reason=str(native_conv.unavailable_reason()))

# Winograd's output transform amplifies the products' rounding by up to 8; either method stays within a
# few ulps of the largest output.
RELATIVE_TOLERANCE = 2e-5

METHODS = ("auto", "unfolded", "winograd")


def random_conv(rng, batch, frames, in_channels, out_channels, kernel_size):
    x = rng.standard_normal((batch, frames, in_channels)).astype(np.float32)
    weight = (rng.standard_normal((out_channels, kernel_size, in_channels)) / np.sqrt(kernel_size * in_channels))
    bias = rng.standard_normal(out_channels)
    return x, weight.astype(np.float32), bias.astype(np.float32)


def per_tap_reference(x, weight, bias, padding, dilation, input_slope=None, residual=None):
    source = mx.array(x)
    if input_slope is not None:
        source = mx.where(source > 0, source, source * input_slope)
    y = layers.conv1d(source, mx.array(weight), None if bias is None else mx.array(bias), 1, padding, dilation)
    return np.array(y if residual is None else y + mx.array(residual))


def torch_reference(x, weight, bias, padding, dilation, input_slope=None):
    source = torch.from_numpy(x).transpose(1, 2)  # (B, I, T)
    if input_slope is not None:
        source = F.leaky_relu(source, input_slope)
    source = F.pad(source, padding)
    y = F.conv1d(source, torch.from_numpy(weight).permute(0, 2, 1), torch.from_numpy(bias), dilation=dilation)
    return y.transpose(1, 2).numpy()


def native(x, weight, bias, padding, dilation, input_slope=None, residual=None, method="auto"):
    y = native_conv.conv1d(
        mx.array(x),
        mx.array(weight),
        None if bias is None else mx.array(bias),
        padding=padding,
        dilation=dilation,
        input_slope=input_slope,
        residual=None if residual is None else mx.array(residual),
        method=method,
    )
    return np.array(y)


def assert_close(actual, expected):
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    worst = float(np.abs(actual - expected).max())
    assert worst <= RELATIVE_TOLERANCE * scale, f"max abs difference {worst:.3g} at output scale {scale:.3g}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel is built on Linux only")
def test_kernel_is_built_on_linux():
    assert native_conv.available(), native_conv.unavailable_reason()


@needs_kernel
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "channels, kernel_size, dilation, padding",
    [
        (8, 3, 1, (1, 1)),
        (32, 3, 5, (5, 5)),
        (16, 7, 3, (9, 9)),
        (24, 11, 1, (5, 5)),
        (32, 11, 5, (25, 25)),
        (12, 5, 2, (0, 7)),  # asymmetric, and a kernel that is not a multiple of 3 taps
        (20, 4, 1, (3, 0)),
    ],
)
@pytest.mark.parametrize("batch, frames", [(1, 301), (2, 1537)])
def test_matches_per_tap_layer(method, channels, kernel_size, dilation, padding, batch, frames):
    rng = np.random.default_rng(kernel_size * 100 + dilation)
    x, weight, bias = random_conv(rng, batch, frames, channels, channels + 3, kernel_size)
    assert_close(native(x, weight, bias, padding, dilation, method=method),
                 per_tap_reference(x, weight, bias, padding, dilation))


@needs_kernel
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kernel_size, dilation", [(1, 1), (2, 1), (3, 3), (11, 5)])
def test_fuses_input_leaky_relu_and_residual(method, kernel_size, dilation):
    rng = np.random.default_rng(kernel_size)
    x, weight, bias = random_conv(rng, 2, 999, 16, 16, kernel_size)
    padding = (dilation * (kernel_size - 1) // 2, dilation * (kernel_size - 1) - dilation * (kernel_size - 1) // 2)
    residual = rng.standard_normal((2, 999, 16)).astype(np.float32)
    if method == "winograd" and kernel_size < 3:
        with pytest.raises(ValueError, match="3 or more taps"):
            native(x, weight, bias, padding, dilation, 0.1, residual, method)
        return
    assert_close(native(x, weight, bias, padding, dilation, 0.1, residual, method),
                 per_tap_reference(x, weight, bias, padding, dilation, 0.1, residual))


@needs_kernel
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("channels, kernel_size, dilation", [(32, 3, 1), (64, 7, 3), (16, 11, 5), (8, 1, 1)])
def test_matches_pytorch(method, channels, kernel_size, dilation):
    rng = np.random.default_rng(channels)
    x, weight, bias = random_conv(rng, 2, 2049, channels, channels, kernel_size)
    pad = dilation * (kernel_size - 1) // 2
    if method == "winograd" and kernel_size < 3:
        with pytest.raises(ValueError, match="3 or more taps"):
            native(x, weight, bias, (pad, pad), dilation, 0.1, method=method)
        return
    assert_close(native(x, weight, bias, (pad, pad), dilation, 0.1, method=method),
                 torch_reference(x, weight, bias, (pad, pad), dilation, 0.1))


@needs_kernel
@pytest.mark.parametrize("method", METHODS)
def test_input_shorter_than_kernel_span_is_padded(method):
    rng = np.random.default_rng(5)
    x, weight, bias = random_conv(rng, 2, 7, 6, 5, 11)  # span 51 > 7 frames
    assert_close(native(x, weight, bias, (25, 25), 5, method=method),
                 torch_reference(x, weight, bias, (25, 25), 5))


@needs_kernel
@pytest.mark.parametrize(
    "in_channels, kernel_size, stride, padding, dilation",
    [
        (1, 10, 5, (0, 0), 1),  # the content encoder's conv 0
        (16, 3, 2, (0, 0), 1),  # its convs 1 to 4
        (16, 2, 2, (0, 0), 1),  # its convs 5 and 6
        (1, 80, 40, (20, 20), 1),  # an NSF noise convolution
        (6, 3, 3, (2, 1), 2),
        (4, 1, 2, (0, 0), 1),  # pointwise, read in place every other frame
    ],
)
@pytest.mark.parametrize("frames", [7, 333, 2048])
def test_strided_matches_pytorch(in_channels, kernel_size, stride, padding, dilation, frames):
    rng = np.random.default_rng(kernel_size * 10 + stride)
    x, weight, bias = random_conv(rng, 2, frames, in_channels, 24, kernel_size)
    if frames + sum(padding) < dilation * (kernel_size - 1) + 1:
        with pytest.raises(ValueError, match="shorter than the kernel's span"):
            native_conv.conv1d(mx.array(x), mx.array(weight), mx.array(bias), padding, dilation, stride=stride)
        return
    y = native_conv.conv1d(mx.array(x), mx.array(weight), mx.array(bias), padding, dilation, stride=stride)
    expected = F.conv1d(F.pad(torch.from_numpy(x).transpose(1, 2), padding), torch.from_numpy(weight).permute(0, 2, 1),
                        torch.from_numpy(bias), stride=stride, dilation=dilation).transpose(1, 2).numpy()
    assert_close(np.array(y), expected)
    # The MLX layer used without the kernel agrees too.
    assert_close(np.array(layers.conv1d(mx.array(x), mx.array(weight), mx.array(bias), stride, padding, dilation)),
                 expected)


@needs_kernel
@pytest.mark.parametrize("channels, kernel_size, groups, frames", [(48, 16, 16, 300), (12, 8, 3, 37), (8, 3, 1, 50),
                                                                   (64, 128, 16, 200)])
def test_grouped_matches_pytorch(channels, kernel_size, groups, frames):
    """The positional convolution's shape (kernel 128, 16 groups), and others: one sgemm per tile and group."""
    rng = np.random.default_rng(channels + groups)
    _, weight, bias = random_conv(rng, 2, frames, channels // groups, channels, kernel_size)
    x = rng.standard_normal((2, frames, channels)).astype(np.float32)
    padding = (kernel_size // 2, kernel_size // 2)
    y = native_conv.conv1d(mx.array(x), mx.array(weight), mx.array(bias), padding, method="unfolded", groups=groups)
    expected = F.conv1d(torch.from_numpy(x).transpose(1, 2), torch.from_numpy(weight).permute(0, 2, 1),
                        torch.from_numpy(bias), padding=kernel_size // 2, groups=groups).transpose(1, 2).numpy()
    assert_close(np.array(y), expected)


@needs_kernel
def test_integer_padding_pads_both_sides():
    rng = np.random.default_rng(6)
    x, weight, bias = random_conv(rng, 1, 40, 4, 4, 3)
    assert_close(native(x, weight, bias, 2, 2), per_tap_reference(x, weight, bias, (2, 2), 2))


@needs_kernel
def test_without_bias():
    rng = np.random.default_rng(7)
    x, weight, _ = random_conv(rng, 1, 100, 8, 8, 3)
    assert_close(native(x, weight, None, (1, 1), 1), per_tap_reference(x, weight, None, (1, 1), 1))


@needs_kernel
@pytest.mark.parametrize("method", ("unfolded", "winograd"))
def test_reads_strided_inputs(method):
    rng = np.random.default_rng(8)
    x, weight, bias = random_conv(rng, 2, 300, 12, 10, 3)
    residual = rng.standard_normal((2, 300, 10)).astype(np.float32)
    # Channels-first storage seen channels-last, a weight stored (O, I, K), and every other frame.
    x_strided = mx.array(np.ascontiguousarray(x.transpose(0, 2, 1))).transpose(0, 2, 1)
    weight_strided = mx.array(np.ascontiguousarray(weight.transpose(0, 2, 1))).transpose(0, 2, 1)
    residual_strided = mx.array(np.repeat(residual, 2, axis=1))[:, ::2, :]
    bias_strided = mx.array(np.repeat(bias, 2))[::2]
    y = native_conv.conv1d(x_strided, weight_strided, bias_strided, padding=(1, 1), input_slope=0.2,
                           residual=residual_strided, method=method)
    assert_close(np.array(y), per_tap_reference(x, weight, bias, (1, 1), 1, 0.2, residual))


@needs_kernel
def test_residual_still_held_elsewhere_is_not_overwritten():
    rng = np.random.default_rng(9)
    x, weight, bias = random_conv(rng, 1, 200, 8, 8, 3)
    residual = mx.array(rng.standard_normal((1, 200, 8)).astype(np.float32))
    mx.eval(residual)
    before = np.array(residual)
    y = native_conv.conv1d(mx.array(x), mx.array(weight), mx.array(bias), padding=(1, 1), residual=residual)
    mx.eval(y)
    np.testing.assert_array_equal(np.array(residual), before)
    assert_close(np.array(y), per_tap_reference(x, weight, bias, (1, 1), 1, None, before))


@needs_kernel
def test_residual_computed_in_the_graph_is_reused_in_place():
    # A lazily computed residual nobody else holds gives its buffer to the output, as MLX's own ops do.
    rng = np.random.default_rng(10)
    x, weight, bias = random_conv(rng, 1, 500, 8, 8, 3)
    base = rng.standard_normal((1, 500, 8)).astype(np.float32)
    y = native_conv.conv1d(mx.array(x), mx.array(weight), mx.array(bias), padding=(1, 1),
                           residual=mx.array(base) * 2)
    assert_close(np.array(y), per_tap_reference(x, weight, bias, (1, 1), 1, None, base * 2))


@needs_kernel
def test_new_weights_of_the_same_shape_are_not_served_from_the_weight_cache():
    rng = np.random.default_rng(13)
    x, first, bias = random_conv(rng, 1, 300, 8, 8, 7)
    _, second, _ = random_conv(rng, 1, 300, 8, 8, 7)
    x_mx, bias_mx = mx.array(x), mx.array(bias)
    for weight in (first, second, first):
        y = native_conv.conv1d(x_mx, mx.array(weight), bias_mx, padding=(3, 3), method="winograd")
        assert_close(np.array(y), per_tap_reference(x, weight, bias, (3, 3), 1))
    native_conv.clear_weight_cache()
    y = native_conv.conv1d(x_mx, mx.array(second), bias_mx, padding=(3, 3), method="winograd")
    assert_close(np.array(y), per_tap_reference(x, second, bias, (3, 3), 1))


@needs_kernel
def test_chained_convolutions_evaluate_lazily():
    rng = np.random.default_rng(11)
    x, weight, bias = random_conv(rng, 1, 800, 16, 16, 3)
    mx_x, mx_w, mx_b = mx.array(x), mx.array(weight), mx.array(bias)
    y = native_conv.conv1d(mx_x, mx_w, mx_b, padding=(1, 1), input_slope=0.1)
    y = native_conv.conv1d(y, mx_w, mx_b, padding=(3, 3), dilation=3, input_slope=0.1, residual=mx_x)
    first = per_tap_reference(x, weight, bias, (1, 1), 1, 0.1)
    assert_close(np.array(y), per_tap_reference(first, weight, bias, (3, 3), 3, 0.1, x))


@needs_kernel
def test_same_result_on_one_thread_and_openblas_threads_restored():
    rng = np.random.default_rng(12)
    x, weight, bias = random_conv(rng, 2, 5000, 16, 16, 7)
    threads = blas.num_threads()
    try:
        blas.set_num_threads(1)
        single = native(x, weight, bias, (9, 9), 3)
        blas.set_num_threads(2)
        double = native(x, weight, bias, (9, 9), 3)
        assert blas.num_threads() == 2
    finally:
        blas.set_num_threads(threads)
    np.testing.assert_array_equal(single, double)


@needs_kernel
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(x=np.zeros((10, 4), np.float32)), "x must be (batch, frames, in_channels)"),
        (dict(x=np.zeros((1, 10, 4), np.float16)), "x must be float32"),
        (dict(weight=np.zeros((3, 3, 5), np.float32)), "input channels"),
        (dict(weight=np.zeros((3, 4), np.float32)), "weight must be (out_channels, kernel_size, in_channels)"),
        (dict(bias=np.zeros((4,), np.float32)), "bias must be (3,)"),
        (dict(residual=np.zeros((1, 9, 3), np.float32)), "residual must have the output's shape (1, 10, 3)"),
        (dict(padding=(-1, 1)), "padding must be non-negative"),
        (dict(dilation=0), "dilation must be at least 1"),
        (dict(padding=(0, 0), x=np.zeros((1, 2, 4), np.float32)), "shorter than the kernel's span of 3"),
        (dict(method="fft"), "method must be 'auto', 'unfolded' or 'winograd'"),
        (dict(method="winograd", weight=np.zeros((3, 2, 4), np.float32)), "needs a kernel of 3 or more taps"),
        (dict(stride=0), "stride must be at least 1"),
        (dict(groups=0), "groups must be at least 1"),
        (dict(groups=3, weight=np.zeros((3, 3, 1), np.float32)), "in 3 group(s) expects 3 input channels"),
        (dict(groups=2, weight=np.zeros((3, 3, 2), np.float32)), "3 output channels, not a multiple of groups = 2"),
        (dict(method="winograd", stride=2), "needs stride 1 and one group"),
    ],
)
def test_rejects_bad_inputs_with_a_clear_error(change, message):
    arguments = dict(
        x=np.zeros((1, 10, 4), np.float32),
        weight=np.zeros((3, 3, 4), np.float32),
        bias=np.zeros((3,), np.float32),
        padding=(1, 1),
        dilation=1,
        residual=None,
        method="auto",
        stride=1,
        groups=1,
    )
    arguments.update(change)
    for name in ("x", "weight", "bias", "residual"):
        if arguments[name] is not None:
            arguments[name] = mx.array(arguments[name])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        native_conv.conv1d(**arguments)


def test_unavailable_kernel_raises_with_the_reason(monkeypatch):
    monkeypatch.setattr(native_conv, "_native_conv", None)
    monkeypatch.setattr(native_conv, "_unavailable_reason", "not built: no compiler")
    assert not native_conv.available()
    with pytest.raises(native_conv.NativeConvUnavailable, match="no compiler"):
        native_conv.conv1d(mx.zeros((1, 4, 1)), mx.zeros((1, 1, 1)))
