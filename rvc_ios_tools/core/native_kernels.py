"""C++ kernels for MLX on CPU besides the convolution (`csrc/`, in the same extension as `native_conv`):
exact GELU, GroupNorm over time and blocked self-attention, the content encoder's element-wise and attention
work.

MLX's CPU backend runs element-wise operations on one thread with scalar library calls for `erf` and `exp`
(a few tens of millions of values a second), and its attention needs every head's (T, T) scores at once.
These kernels run vectorised (AVX-512 or AVX2 where the CPU has them) on as many workers as OpenBLAS has
threads (`blas.set_num_threads`), and attention one block of queries at a time, so a layer holds a few MB of
scores whatever the length. GELU and the softmax's exponential use the same polynomials as the MLX
formulas they replace (`hubert.model`), within float32 rounding of them.

Availability follows `native_conv.available()` (one extension); callers check `layers.use_native_conv()`.
Inference only: the operations have no gradient.
"""

from __future__ import annotations

from . import blas  # noqa: F401  (before mlx)
from . import native_conv

import mlx.core as mx

# Queries per block: one block's scores for one head, 128 x T floats, stay in a core's L2 cache up to
# T of about 2000 frames (40 s); at T = 3300 (60 s) they take 1.7 MB per worker.
ATTENTION_QUERY_BLOCK = 128


def _extension():
    if native_conv._native_conv is None:
        raise native_conv.NativeConvUnavailable(native_conv.unavailable_reason())
    return native_conv._native_conv


def gelu(x: mx.array) -> mx.array:
    """x / 2 (1 + erf(x / sqrt 2)) of every value (float32), as `nn.GELU()` in PyTorch (not the tanh form)."""
    return _extension().gelu(x)


def group_norm_over_time(x: mx.array, weight: mx.array, bias: mx.array, eps: float) -> mx.array:
    """fairseq `Fp32GroupNorm(C, C)` on channels-last `x` (B, T, C): each channel of each item normalised over
    its T frames (biased variance, statistics in double), then `* weight + bias` per channel."""
    return _extension().group_norm_over_time(x, weight, bias, eps=float(eps))


def attention(q: mx.array, k: mx.array, v: mx.array, heads: int, query_block: int | None = None) -> mx.array:
    """softmax(q k^T) v for each of `heads` heads: `q` (already scaled), `k`, `v` (B, T, H) with the heads side
    by side along H, as the projections make them -> (B, T, H) in the same layout, ready for `out_proj`.
    The softmax is float32 with the row's maximum subtracted first, as PyTorch's; queries are taken
    `query_block` (default ATTENTION_QUERY_BLOCK) at a time."""
    block = ATTENTION_QUERY_BLOCK if query_block is None else query_block
    return _extension().attention(q, k, v, heads=int(heads), query_block=int(block))
