"""MLX layers every network shares: Conv1d and ConvTranspose1d on CPU written as matmuls so they run on BLAS,
and strict weight loading.

MLX's CPU convolution uses a BLAS matmul only for undilated, unflipped kernels; dilated convolutions (every
ResBlock1 `c1_*` with dilation 3 or 5) and transposed convolutions (every `up_*`) fall back to a direct loop
that runs at about 1 GFLOP/s, 50-100x slower than the matmul route. Both layers here keep MLX's parameter
names and channels-last layouts (weight `(O, K, I)`, bias `(O,)`, activations `(B, T, C)`), so the exported
weights load unchanged; only the arithmetic is arranged differently.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Mapping

from . import blas  # noqa: F401
from . import native_conv

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from .errors import WeightsMismatchError

# RVC_IOS_NATIVE_CONV=0 runs every convolution as the MLX matmuls below, without the C++ kernel.
NATIVE_CONV_ENV = "RVC_IOS_NATIVE_CONV"
_native_warned = False


def use_native_conv() -> bool:
    """Whether convolutions (and `native_kernels`) go to the C++ kernels: built, and not switched off."""
    global _native_warned
    if os.environ.get(NATIVE_CONV_ENV, "1") == "0":
        return False
    if native_conv.available():
        return True
    if not _native_warned:
        _native_warned = True
        warnings.warn(
            f"{native_conv.unavailable_reason()}. Convolutions fall back to MLX matmuls, about 2x slower.",
            RuntimeWarning,
            stacklevel=3,
        )
    return False

# Up to this many input channels, gather the taps into one (T, K*I) matrix and run a single matmul (the NSF
# noise convs: one channel, up to 80 taps). Above it, one matmul per tap accumulated with addmm is faster:
# MLX's concatenate is a slow single-threaded copy, even at 32 channels.
GATHER_TAPS_MAX_CHANNELS = 4


def conv1d(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None = None,
    stride: int = 1,
    padding: tuple[int, int] = (0, 0),
    dilation: int = 1,
) -> mx.array:
    """PyTorch's Conv1d on channels-last input: `x` (B, T, I), `weight` (O, K, I) -> (B, T_out, O)."""
    out_channels, kernel_size, in_channels = weight.shape
    left, right = padding
    if left or right:
        x = mx.pad(x, [(0, 0), (left, right), (0, 0)])
    length = x.shape[1]
    frames = (length - dilation * (kernel_size - 1) - 1) // stride + 1
    span = stride * (frames - 1) + 1

    def tap(k: int) -> mx.array:
        start = k * dilation
        return x[:, start : start + span : stride, :] if (stride > 1 or kernel_size > 1) else x

    if kernel_size == 1 or in_channels <= GATHER_TAPS_MAX_CHANNELS:
        # (B, T, K*I) with the tap index major, matching weight.reshape(O, K*I).
        taps = tap(0) if kernel_size == 1 else mx.concatenate([tap(k) for k in range(kernel_size)], axis=-1)
        matrix = weight.reshape(out_channels, kernel_size * in_channels).T
        return taps @ matrix if bias is None else mx.addmm(bias, taps, matrix)

    y = tap(0) @ weight[:, 0, :].T if bias is None else mx.addmm(bias, tap(0), weight[:, 0, :].T)
    for k in range(1, kernel_size):
        y = mx.addmm(y, tap(k), weight[:, k, :].T)
    return y


def conv_transpose1d(
    x: mx.array, weight: mx.array, bias: mx.array | None = None, stride: int = 1, padding: int = 0
) -> mx.array:
    """PyTorch's ConvTranspose1d (no output padding) on channels-last input: (B, T, I) -> (B, T_out, O).

    Each input frame t writes `x[t] @ weight[:, k, :].T` to output position `t * stride + k - padding`.
    One matmul gives every frame's K contributions; the kernel is zero-padded to whole multiples of the
    stride so the contributions fold into `m` chunks of `stride` samples, and chunk j is added `j` frames
    later (overlap-add).
    """
    batch, frames, in_channels = x.shape
    out_channels, kernel_size, _ = weight.shape
    chunks = math.ceil(kernel_size / stride)
    padded_kernel = chunks * stride
    if padded_kernel != kernel_size:
        weight = mx.pad(weight, [(0, 0), (0, padded_kernel - kernel_size), (0, 0)])
    # (I, K' * O): column k * O + o.
    matrix = weight.transpose(2, 1, 0).reshape(in_channels, padded_kernel * out_channels)
    y = (x @ matrix).reshape(batch, frames, chunks, stride * out_channels)
    full_length = (frames + chunks - 1) * stride
    out = None
    for j in range(chunks):
        part = y[:, :, j, :].reshape(batch, frames * stride, out_channels)
        part = mx.pad(part, [(0, 0), (j * stride, full_length - frames * stride - j * stride), (0, 0)])
        out = part if out is None else out + part
    length = (frames - 1) * stride + kernel_size - 2 * padding
    out = out[:, padding : padding + length, :]
    return out if bias is None else out + bias


class Conv1d(nn.Module):
    """Same parameters as `mlx.nn.Conv1d`; padding may be asymmetric `(left, right)` like upstream's FFN."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = mx.zeros((out_channels, kernel_size, in_channels))
        if bias:
            self.bias = mx.zeros((out_channels,))
        self._stride = stride
        self._padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
        self._dilation = dilation

    def __call__(self, x: mx.array, input_slope: float | None = None, residual: mx.array | None = None) -> mx.array:
        """conv(leaky_relu(x, input_slope)) + residual; the slope and the residual are optional.

        Runs on the C++ kernel when it is built (`native_conv`), which fuses both into the convolution;
        otherwise MLX ops do the same arithmetic.
        """
        if use_native_conv():
            return native_conv.conv1d(
                x, self.weight, self.get("bias"), self._padding, self._dilation, input_slope, residual,
                stride=self._stride,
            )
        if input_slope is not None:
            x = nn.leaky_relu(x, input_slope)
        y = conv1d(x, self.weight, self.get("bias"), self._stride, self._padding, self._dilation)
        return y if residual is None else y + residual


class ConvTranspose1d(nn.Module):
    """Same parameters as `mlx.nn.ConvTranspose1d` (weight `(O, K, I)`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.weight = mx.zeros((out_channels, kernel_size, in_channels))
        self.bias = mx.zeros((out_channels,))
        self._stride = stride
        self._padding = padding

    def __call__(self, x: mx.array) -> mx.array:
        return conv_transpose1d(x, self.weight, self.bias, self._stride, self._padding)


def load_weights_strictly(model: nn.Module, tensors: Mapping[str, Any]) -> nn.Module:
    """Load exported (channels-last) weights strictly: every key used, none missing, every shape equal.

    Raises WeightsMismatchError naming each offending key and both shapes.
    """
    expected = dict(tree_flatten(model.parameters()))
    missing = sorted(set(expected) - set(tensors))
    unused = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(
        key
        for key in set(expected) & set(tensors)
        if tuple(tensors[key].shape) != tuple(expected[key].shape)
    )
    if missing or unused or wrong_shape:
        problems = []
        if missing:
            problems.append(
                "missing: " + ", ".join(f"{key} {tuple(expected[key].shape)}" for key in missing)
            )
        if unused:
            problems.append("unused: " + ", ".join(f"{key} {tuple(tensors[key].shape)}" for key in unused))
        if wrong_shape:
            problems.append(
                "wrong shape: "
                + ", ".join(
                    f"{key} is {tuple(tensors[key].shape)}, the model needs {tuple(expected[key].shape)}"
                    for key in wrong_shape
                )
            )
        raise WeightsMismatchError(
            "The weights do not fit this model (" + "; ".join(problems) + "). Export the model again from "
            "its checkpoint (`rvc-ios export`), and build it from the manifest written with those weights."
        )
    model.update(tree_unflatten([(key, mx.array(tensors[key], dtype=mx.float32)) for key in expected]))
    return model
