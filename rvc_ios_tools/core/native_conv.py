"""The C++ Conv1d kernel for MLX on CPU (`csrc/`), built by setup.py as the extension module `_native_conv`
(which also holds the kernels of `native_kernels`).

The HiFi-GAN decoder spends nearly all its time in stride-1 convolutions of 32 to 256 channels. As one
matmul per tap (`layers.conv1d`) each tap re-reads and re-writes the whole output with an inner
dimension of only the channel count, which is memory-bound. The kernel works on cache-sized tiles of
output frames instead, several tiles at once (one per OpenBLAS thread), with the leaky ReLU before the
convolution and the residual after it fused in. Kernels of 3 or more taps take Winograd's F(4, 3) products
(about half the multiplications; csrc/conv1d_winograd.h), others one im2col sgemm per tile; so do strided
convolutions (the content encoder's front end) and grouped ones (its positional convolution, one tile per
frame range and group). Winograd weights are transformed once per weight array and kept, with a reference
to the weight, up to 512 MB in all; `clear_weight_cache()` drops them.

The extension is optional: when it was not built or cannot load, `available()` is False and
`unavailable_reason()` says why, so callers can fall back to `layers.conv1d`. It uses as many
threads as OpenBLAS (`blas.num_threads()`, set with `blas.set_num_threads`). Inference only: the operation
has no gradient.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from . import blas  # noqa: F401  (before mlx)

import mlx.core as mx


def _explain_import_error(error: ImportError) -> str:
    if not sys.platform.startswith("linux"):
        advice = "it is built on Linux only"
    elif importlib.util.find_spec(f"{__package__}._native_conv") is None:
        advice = ("it was not built: reinstall with `pip install -e .` and a C++20 compiler "
                  "(RVC_IOS_REQUIRE_NATIVE=1 makes a failed build an error that shows why)")
    else:
        advice = "the built module does not load here"
    return f"the native Conv1d kernel is unavailable ({error}); {advice}"


# Another build of the extension to load instead of the installed one, as a path to its .so file:
# scripts/sanitize_native.sh points it at an AddressSanitizer + UBSan build, leaving the installed one alone.
MODULE_PATH_VARIABLE = "RVC_IOS_NATIVE_MODULE_PATH"


def _load_extension():
    override = os.environ.get(MODULE_PATH_VARIABLE)
    if not override:
        from . import _native_conv

        return _native_conv
    name = f"{__package__}._native_conv"
    spec = importlib.util.spec_from_file_location(name, override)
    if spec is None or spec.loader is None:
        raise ImportError(f"{MODULE_PATH_VARIABLE}={override} is not an extension module file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module  # so `from . import _native_conv` anywhere finds this one
    return module


try:
    _native_conv = _load_extension()
except ImportError as error:
    _native_conv = None
    _unavailable_reason: str | None = _explain_import_error(error)
else:
    _unavailable_reason = None


class NativeConvUnavailable(RuntimeError):
    """The extension is not built or cannot run here; use `layers.conv1d` instead."""


def available() -> bool:
    return _native_conv is not None


def unavailable_reason() -> str | None:
    """Why `available()` is False (the import error, with what to do), or None when it is available."""
    return _unavailable_reason


def clear_weight_cache() -> None:
    """Drop the Winograd-transformed weights kept per weight array (and with them the weights' buffers)."""
    if _native_conv is not None:
        _native_conv.clear_weight_cache()


def conv1d(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None = None,
    padding: int | tuple[int, int] = (0, 0),
    dilation: int = 1,
    input_slope: float | None = None,
    residual: mx.array | None = None,
    method: str = "auto",
    stride: int = 1,
    groups: int = 1,
) -> mx.array:
    """PyTorch Conv1d on channels-last float32 input, with optional fused input and output steps.

    `x` (B, T, I), `weight` (O, K, I / groups), `bias` (O,) -> (B, T_out, O), equal to
    `layers.conv1d(leaky_relu(x, input_slope) if input_slope is not None else x, weight, bias, stride,
    padding, dilation) + residual` (the residual, shaped like the output, is optional) for one group; with
    `groups`, input channels g I / G ..< (g + 1) I / G feed output channels g O / G ..< (g + 1) O / G.
    Padding is `(left, right)` or one int for both sides. `method`: "auto" (Winograd F(4, 3) for stride-1,
    ungrouped kernels of 3 or more taps, unfolded otherwise), "unfolded" (im2col, one sgemm per tile and
    group) or "winograd". Raises ValueError for shapes, dtypes or settings it does not accept.
    """
    if _native_conv is None:
        raise NativeConvUnavailable(_unavailable_reason)
    if isinstance(padding, int):
        padding = (padding, padding)
    return _native_conv.conv1d(
        x,
        weight,
        bias,
        padding=(int(padding[0]), int(padding[1])),
        dilation=int(dilation),
        input_slope=None if input_slope is None else float(input_slope),
        residual=residual,
        method=method,
        stride=int(stride),
        groups=int(groups),
    )


def gru_recurrence(input_gates: mx.array, weight_hh: mx.array, bias_hh: mx.array, reverse: bool = False) -> mx.array:
    """One direction of PyTorch's GRU recurrence in C++, from h = 0: `input_gates` (B, T, 3H) = W_i x + b_i
    (gate order r, z, n), `weight_hh` (3H, H), `bias_hh` (3H,) -> (B, T, H), with `b_hn` inside the reset
    gate as PyTorch has it. `reverse` steps from the last frame to the first; outputs keep frame order.

    The same formula as `models.rmvpe.GRU.step`, one OpenBLAS matrix-vector product per frame instead of
    about ten MLX operations (RMVPE's BiGRU on 30 s of audio: 6000 steps). Raises ValueError for shapes or
    dtypes it does not accept.
    """
    if _native_conv is None:
        raise NativeConvUnavailable(_unavailable_reason)
    return _native_conv.gru_recurrence(input_gates, weight_hh, bias_hh, reverse=bool(reverse))
