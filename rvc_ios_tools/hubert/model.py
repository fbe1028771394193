"""HuBERT-base / ContentVec in MLX: fairseq's `HubertModel.extract_features` (= transformers' `HubertModel`).

Channels-last throughout: activations are (B, T, C) where upstream's front end has (B, C, T). Names follow the
exported keys (`convert.HUBERT_RULES`). Upstream references are fairseq v0.12.2 (`wav2vec2.py`, `hubert.py`).

On Linux with the native kernels built (`layers.use_native_conv()`), the convolutions, GELU, the GroupNorm and
attention's softmax(q k^T) v run as C++ kernels on OpenBLAS (`core.native_conv`, `core.native_kernels`); the
MLX formulas below are the same arithmetic, used without them.
"""

from __future__ import annotations

from ..core import blas  # noqa: F401  (OpenBLAS before mlx)

import math
from typing import Any, Mapping

import mlx.core as mx
import mlx.nn as nn

from ..core import native_conv, native_kernels
from ..core.layers import Conv1d, conv1d, use_native_conv

# Without the native kernels, one layer's attention scores for all heads are computed for this many bytes'
# worth of queries at a time (12 heads x T keys x 4 bytes per query row): at T = 3300 frames all queries at once
# would take 500 MB. (The native kernel takes `native_kernels.ATTENTION_QUERY_BLOCK` queries per head at a time.)
ATTENTION_BLOCK_BYTES = 64 * 2**20


# MLX's CPU `erf` and `exp` are scalar library calls (about 25 and 60 M elements/s here); GELU after every layer
# and the attention softmax spend most of the encoder's time in them. Both are written instead as a handful of
# multiply-adds, which MLX runs (fused by `mx.compile`) several times faster, at the same or better accuracy.

# The rational approximation of erf on [-4, 4] that Eigen and XLA use for float32 (erf(x) = x P(x^2) / Q(x^2);
# outside, erf is +-1 in float32): within 4.5e-7 of erf everywhere, as MLX's own erf (5.3e-7).
ERF_NUMERATOR = (-1.60960333262415e-02, -2.95459980854025e-03, -7.34990630326855e-04, -5.69250639462346e-05,
                 -2.10102402082508e-06, 2.77068142495902e-08, -2.72614225801306e-10)
ERF_DENOMINATOR = (-1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03, -2.13374055278905e-04,
                   -1.45660718464996e-05)


def _polynomial(x: mx.array, coefficients: tuple[float, ...]) -> mx.array:
    """sum_i coefficients[i] x^i by Horner's rule."""
    result = x * coefficients[-1] + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        result = result * x + c
    return result


def _erf(x: mx.array) -> mx.array:
    x = mx.clip(x, -4.0, 4.0)
    x2 = x * x
    return x * _polynomial(x2, ERF_NUMERATOR) / _polynomial(x2, ERF_DENOMINATOR)


def _gelu(x: mx.array) -> mx.array:
    return 0.5 * x * (1.0 + _erf(x * 0.7071067811865476))


def _exp(x: mx.array) -> mx.array:
    """e^x for x <= 0 (softmax arguments): 2^n e^r with n = round(x / ln 2), |r| <= ln 2 / 2 (ln 2 split in two
    parts so r is exact), e^r by its Taylor series to r^8 (error below 1e-7 relative), 2^n built in the exponent
    bits. Below -87 the result is 0 in float32 anyway."""
    x = mx.maximum(x, -87.0)
    n = mx.round(x * 1.4426950408889634)
    r = x - n * 0.693145751953125 - n * 1.428606765330187e-06
    series = _polynomial(r, tuple(1.0 / math.factorial(i) for i in range(9)))
    return series * ((n.astype(mx.int32) + 127) << 23).view(mx.float32)


def _softmax_numerator(scores: mx.array, row_max: mx.array) -> mx.array:
    return _exp(scores - row_max)


try:  # compiled kernels need a C++ compiler at run time on CPU; without one the same ops run one by one
    _probe = mx.array([0.5])
    mx.eval(mx.compile(_gelu)(_probe), mx.compile(_softmax_numerator)(_probe, _probe))
    _gelu_kernel, _softmax_kernel = mx.compile(_gelu), mx.compile(_softmax_numerator)
except Exception:  # noqa: BLE001  (any failure to compile means: run uncompiled)
    _gelu_kernel, _softmax_kernel = _gelu, _softmax_numerator


def gelu(x: mx.array) -> mx.array:
    """Exact (erf) GELU, as `nn.GELU()` in fairseq and `ACT2FN["gelu"]` in transformers (not the tanh form)."""
    return native_kernels.gelu(x) if use_native_conv() else _gelu_kernel(x)


def softmax(scores: mx.array) -> mx.array:
    """Softmax over the last axis in float32, as PyTorch's (max subtracted first)."""
    e = _softmax_kernel(scores, mx.max(scores, axis=-1, keepdims=True))
    return e / mx.sum(e, axis=-1, keepdims=True)


class GroupNormOverTime(nn.Module):
    """fairseq `Fp32GroupNorm(C, C)` on conv 0: each channel normalised over the whole time axis (biased
    variance), then scaled per channel. Not a LayerNorm over channels."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.weight = mx.ones((channels,))
        self.bias = mx.zeros((channels,))
        self.eps = eps

    def __call__(self, x: mx.array) -> mx.array:
        if use_native_conv():
            return native_kernels.group_norm_over_time(x, self.weight, self.bias, self.eps)
        frames = x.shape[1]
        if frames <= GROUP_NORM_CHUNK_FRAMES:
            mean = mean_over_time(x)
            centered = x - mean
            variance = mean_over_time(centered * centered)
            return centered * mx.rsqrt(variance + self.eps) * self.weight + self.bias
        # Long audio: the same statistics, the temporaries made a chunk of frames at a time (each (B, T, C)
        # temporary of conv 0 is 393 MB per minute of audio).
        mean = mean_over_time(x)
        squares = mx.zeros(mean.shape)
        for start in range(0, frames, GROUP_NORM_CHUNK_FRAMES):
            centered = x[:, start:start + GROUP_NORM_CHUNK_FRAMES] - mean
            squares = squares + mean_over_time(centered * centered) * centered.shape[1]
            mx.eval(squares)
        scale = mx.rsqrt(squares / frames + self.eps) * self.weight
        chunks = []
        for start in range(0, frames, GROUP_NORM_CHUNK_FRAMES):
            chunks.append((x[:, start:start + GROUP_NORM_CHUNK_FRAMES] - mean) * scale + self.bias)
            mx.eval(chunks[-1])
        return mx.concatenate(chunks, axis=1)


# Up to this many frames the GroupNorm runs in one piece (every committed golden set); beyond, in chunks of it.
GROUP_NORM_CHUNK_FRAMES = 65536


# Frames summed per block before the blocks are summed (see `mean_over_time`).
TIME_SUM_BLOCK = 256


def mean_over_time(x: mx.array) -> mx.array:
    """(B, T, C) -> (B, 1, C), summed in blocks of frames and then over the blocks.

    MLX's CPU reduction along a strided axis accumulates each channel in one running float32 sum, whose error
    grows with T: on 20 s of audio (64 000 frames after conv 0) that alone put the GroupNorm at 91 dB against
    PyTorch's (141 dB against float64). Two-level sums keep it near PyTorch's."""
    batch, frames, channels = x.shape
    pad = -frames % TIME_SUM_BLOCK
    if pad:
        x = mx.pad(x, [(0, 0), (0, pad), (0, 0)])
    blocks = x.reshape(batch, -1, TIME_SUM_BLOCK, channels).sum(axis=2)
    return blocks.sum(axis=1, keepdims=True) / frames


class FeatureExtractor(nn.Module):
    """`ConvFeatureExtractionModel(mode="default")`: unpadded, bias-free convolutions, each followed by GELU;
    the first also by the GroupNorm (wav2vec2.py L864-883)."""

    def __init__(self, conv_layers: list[list[int]], eps: float):
        super().__init__()
        self.strides = [stride for _, _, stride in conv_layers]
        channels = 1
        for i, (out_channels, kernel, stride) in enumerate(conv_layers):
            setattr(self, f"conv_{i}", Conv1d(channels, out_channels, kernel, stride=stride, bias=False))
            channels = out_channels
        self.norm_0 = GroupNormOverTime(conv_layers[0][0], eps)

    def layer(self, i: int, x: mx.array) -> mx.array:
        """Conv layer i (with its norm and GELU): (B, T, C_in) -> (B, T', C_out)."""
        x = getattr(self, f"conv_{i}")(x)
        if i == 0:
            x = self.norm_0(x)
        return gelu(x)

    def __call__(self, audio: mx.array) -> mx.array:
        """(B, N) raw 16 kHz audio -> (B, T, C)."""
        x = audio[..., None]
        for i in range(len(self.strides)):
            x = self.layer(i, x)
            if math.prod(x.shape) > 2**22:
                mx.eval(x)  # one layer's temporaries at a time: conv 0's output alone is 393 MB per minute of audio
        return x


class FeatureProjection(nn.Module):
    """The top-level `layer_norm` on the conv features, then `post_extract_proj` (hubert.py L443-451)."""

    def __init__(self, in_channels: int, hidden_size: int, eps: float):
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_channels, eps=eps)
        self.projection = nn.Linear(in_channels, hidden_size)


class PositionalConv(nn.Module):
    """`encoder.pos_conv`: Conv1d(H, H, K, padding=K // 2, groups=G) with its weight-norm weight folded, then
    `SamePad` (an even K makes T + 1 frames: the *last* is dropped) and GELU (wav2vec2.py L900-916)."""

    def __init__(self, hidden_size: int, kernel_size: int, groups: int):
        super().__init__()
        self.weight = mx.zeros((hidden_size, kernel_size, hidden_size // groups))
        self.bias = mx.zeros((hidden_size,))
        self.groups = groups

    def __call__(self, x: mx.array) -> mx.array:
        frames = x.shape[1]
        kernel = self.weight.shape[1]
        padding = (kernel // 2, kernel // 2)
        if use_native_conv():
            # Cache-sized tiles of one group's im2col rows, one sgemm each, so the (T, K * H / G) matrix never
            # exists whole (not Winograd: its rounding over 128 taps would cost parity).
            y = native_conv.conv1d(x, self.weight, self.bias, padding, method="unfolded", groups=self.groups)
        else:
            width = self.weight.shape[2]
            y = mx.concatenate([conv1d(x[..., g * width:(g + 1) * width], self.weight[g * width:(g + 1) * width],
                                       self.bias[g * width:(g + 1) * width], 1, padding)
                                for g in range(self.groups)], axis=-1)
        return gelu(self.same_pad(y, frames))

    def same_pad(self, y: mx.array, frames: int) -> mx.array:
        """fairseq `SamePad`: with an even kernel, K // 2 frames of padding on both sides make one frame too
        many, and the last is removed (`x[:, :, :-1]`, same_pad.py L20), not the first."""
        return y[:, :frames]


class Attention(nn.Module):
    """fairseq `MultiheadAttention(self_attention=True)`: heads of H / n, q scaled by head_dim ** -0.5."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scaling = (hidden_size // num_heads) ** -0.5
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        q = self.q_proj(x) * self.scaling
        k = self.k_proj(x)
        v = self.v_proj(x)
        return self.out_proj(attention_over_heads(q, k, v, self.num_heads))


def attention_over_heads(q: mx.array, k: mx.array, v: mx.array, heads: int) -> mx.array:
    """softmax(q k^T) v per head: (B, T, H) projections with the heads side by side along H (q scaled) ->
    (B, T, H) in the same layout. No mask: RVC passes none (`padding_mask` is all False)."""
    if use_native_conv():
        return native_kernels.attention(q, k, v, heads)
    batch, frames, hidden = q.shape

    def split(t: mx.array) -> mx.array:
        return t.reshape(batch, frames, heads, hidden // heads).transpose(0, 2, 1, 3)

    q, k, v = split(q), split(k), split(v)
    key_t = k.transpose(0, 1, 3, 2)
    # Queries in blocks, so one block's (B, heads, rows, T) scores are all that exists at a time.
    rows = max(16, ATTENTION_BLOCK_BYTES // max(1, batch * heads * frames * 4))
    blocks = []
    for start in range(0, frames, rows):
        scores = q[:, :, start:start + rows] @ key_t
        blocks.append(softmax(scores) @ v)
        if frames > rows:
            mx.eval(blocks[-1])  # free this block's scores before the next block's are made
    out = blocks[0] if len(blocks) == 1 else mx.concatenate(blocks, axis=2)
    return out.transpose(0, 2, 1, 3).reshape(batch, frames, hidden)


class EncoderLayer(nn.Module):
    """`TransformerSentenceEncoderLayer` with `layer_norm_first=False`: post-LN (wav2vec2.py L1259-1282)."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, eps: float):
        super().__init__()
        self.attention = Attention(hidden_size, num_heads)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=eps)
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.final_norm = nn.LayerNorm(hidden_size, eps=eps)

    def __call__(self, x: mx.array) -> mx.array:
        x = self.attention_norm(x + self.attention(x))
        return self.final_norm(x + self.fc2(gelu(self.fc1(x))))


class Encoder(nn.Module):
    """`TransformerEncoder`: x + pos_conv(x), the encoder LayerNorm (before layer 1, none after the last), layers."""

    def __init__(self, a: Mapping[str, Any]):
        super().__init__()
        self.num_layers = a["num_layers"]
        self.pos_conv = PositionalConv(a["hidden_size"], a["conv_pos"], a["conv_pos_groups"])
        self.layer_norm = nn.LayerNorm(a["hidden_size"], eps=a["layer_norm_eps"])
        for n in range(self.num_layers):
            setattr(self, f"layer_{n}", EncoderLayer(a["hidden_size"], a["num_heads"], a["intermediate_size"],
                                                     a["layer_norm_eps"]))

    def layer(self, n: int) -> EncoderLayer:
        return getattr(self, f"layer_{n}")


class HubertModel(nn.Module):
    """audio -> conv features -> LayerNorm -> projection -> encoder; `final_proj` for v1 features."""

    def __init__(self, architecture: Mapping[str, Any]):
        super().__init__()
        a = architecture
        self.architecture = dict(a)
        eps = a["layer_norm_eps"]
        self.feature_extractor = FeatureExtractor(a["conv_layers"], eps)
        self.feature_projection = FeatureProjection(a["conv_layers"][-1][0], a["hidden_size"], eps)
        self.encoder = Encoder(a)
        if a["final_proj_dim"] is not None:
            self.final_proj = nn.Linear(a["hidden_size"], a["final_proj_dim"])

    @property
    def has_final_proj(self) -> bool:
        return "final_proj" in self

    def encoder_input(self, audio: mx.array) -> mx.array:
        """(B, N) audio -> (B, T, H): transformers' `hidden_states[0]`."""
        x = self.feature_projection.layer_norm(self.feature_extractor(audio))
        x = self.feature_projection.projection(x)
        return self.encoder.layer_norm(x + self.encoder.pos_conv(x))

    def __call__(self, audio: mx.array, output_layer: int | None = None) -> mx.array:
        """fairseq `extract_features(source, output_layer=L)`: the output of layer L (1-based; all by default),
        layers past L never run."""
        last = self.encoder.num_layers if output_layer is None else output_layer
        x = self.encoder_input(audio)
        for n in range(last):
            x = self.encoder.layer(n)(x)
            if math.prod(x.shape) > 2**22:
                mx.eval(x)  # one layer's activations at a time on long audio
        return x
