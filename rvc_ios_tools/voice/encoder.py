"""RVC's text (content) encoder `enc_p`: upstream `TextEncoder256/768` and VITS `attentions.Encoder`.

Channels-last throughout: activations are (B, T, C) where upstream has (B, C, T), and masks are (B, T, 1).
"""

from __future__ import annotations

import math

from ..core import blas  # noqa: F401

import mlx.core as mx
import mlx.nn as nn

from ..core.layers import Conv1d

# Upstream attentions.Encoder builds its MultiHeadAttention with window_size=10, heads_share=True.
ATTENTION_WINDOW = 10
# Upstream's modules.LayerNorm default.
LAYER_NORM_EPS = 1e-5
# Upstream fills masked attention scores with -1e4 (not -inf), so a fully masked row stays uniform.
MASKED_SCORE = -1e4


def band_to_absolute(band: mx.array, window: int) -> mx.array:
    """(..., T, 2w+1) logits by relative offset -w..w -> (..., T, T) by key position, zero off the band.

    Upstream pads its relative-key table to 2T-1 rows with zeros past the window and turns (T, 2T-1) logits
    into (T, T) with a pad-and-reshape trick (`_get_relative_embeddings`, `_relative_position_to_absolute_position`):
    out[i, j] = q_i . e[j - i + w] for |j - i| <= w, and 0 elsewhere, since the padded rows are zero. This is
    the same skew on the band alone: rows padded by T zeros and read back with a row stride one shorter, so
    row i starts i places later (O(T^2) memory moves instead of a (T, 2T-1) matmul and gather).
    """
    *lead, length, width = band.shape
    keep = [(0, 0)] * len(lead)
    flat = mx.pad(band, keep + [(0, 0), (0, length)]).reshape(*lead, length * (length + width))
    flat = mx.pad(flat, keep + [(0, window)])  # the last rows read past the end when T < w
    skewed = flat[..., window : window + length * (length + width - 1)]
    return skewed.reshape(*lead, length, length + width - 1)[..., :length]


def absolute_to_band(x: mx.array, window: int) -> mx.array:
    """(..., T, T) weights by key position -> (..., T, 2w+1) by relative offset -w..w, zero where no key is.

    The inverse skew (upstream `_absolute_position_to_relative_position`, then the matmul with the zero-padded
    value table, of which only the band's 2w+1 rows are nonzero): out[i, r] = x[i, i + r - w] when that key
    index is in 0..T-1, else 0.
    """
    *lead, length, _ = x.shape
    width = 2 * window + 1
    keep = [(0, 0)] * len(lead)
    flat = mx.pad(x, keep + [(0, 0), (window, window)]).reshape(*lead, length * (length + width - 1))
    flat = mx.pad(flat, keep + [(0, length)])
    return flat.reshape(*lead, length, length + width)[..., :width]


class MultiHeadAttention(nn.Module):
    """Self-attention with shared (heads_share=True) relative-position keys and values."""

    def __init__(self, channels: int, out_channels: int, n_heads: int, window_size: int = ATTENTION_WINDOW):
        super().__init__()
        assert channels % n_heads == 0
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = Conv1d(channels, channels, 1)
        self.conv_k = Conv1d(channels, channels, 1)
        self.conv_v = Conv1d(channels, channels, 1)
        self.conv_o = Conv1d(channels, out_channels, 1)
        self.emb_rel_k = mx.zeros((1, 2 * window_size + 1, self.k_channels))
        self.emb_rel_v = mx.zeros((1, 2 * window_size + 1, self.k_channels))

    def __call__(self, x: mx.array, attn_mask: mx.array) -> mx.array:
        """x (B, T, C); attn_mask (B, 1, T, T), nonzero where query and key are both valid frames."""
        q = self.conv_q(x)
        k = self.conv_k(x)
        v = self.conv_v(x)
        return self.conv_o(self.attention(q, k, v, attn_mask))

    def attention(self, query: mx.array, key: mx.array, value: mx.array, mask: mx.array) -> mx.array:
        batch, length, channels = key.shape
        # (B, T, C) -> (B, heads, T, D); upstream's view(b, heads, D, t) splits channels the same way.
        def heads(t: mx.array) -> mx.array:
            return t.reshape(batch, length, self.n_heads, self.k_channels).transpose(0, 2, 1, 3)

        query, key, value = heads(query), heads(key), heads(value)
        query = query / math.sqrt(self.k_channels)
        scores = query @ key.swapaxes(-2, -1)

        # emb_rel_k (1, 2w+1, D) is shared by the heads: one logit per query and offset -w..w.
        scores = scores + band_to_absolute(query @ self.emb_rel_k[None].swapaxes(-2, -1), self.window_size)

        scores = mx.where(mask == 0, mx.array(MASKED_SCORE, dtype=scores.dtype), scores)
        p_attn = mx.softmax(scores, axis=-1)
        output = p_attn @ value

        output = output + absolute_to_band(p_attn, self.window_size) @ self.emb_rel_v[None]
        # (B, heads, T, D) -> (B, T, C)
        return output.transpose(0, 2, 1, 3).reshape(batch, length, channels)


class FFN(nn.Module):
    """Two convolutions with ReLU between, 'same' padding (left (k-1)//2, right k//2), input masked."""

    def __init__(self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int):
        super().__init__()
        padding = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = Conv1d(in_channels, filter_channels, kernel_size, padding=padding)
        self.conv_2 = Conv1d(filter_channels, out_channels, kernel_size, padding=padding)

    def __call__(self, x: mx.array, x_mask: mx.array) -> mx.array:
        x = self.conv_1(x * x_mask)
        x = nn.relu(x)
        x = self.conv_2(x * x_mask)
        return x * x_mask


class Encoder(nn.Module):
    """Post-norm transformer: x = norm1(x + attn(x)); x = norm2(x + ffn(x)), per layer."""

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int):
        super().__init__()
        self.n_layers = n_layers
        for i in range(n_layers):
            setattr(self, f"attn_{i}", MultiHeadAttention(hidden_channels, hidden_channels, n_heads))
            setattr(self, f"norm1_{i}", nn.LayerNorm(hidden_channels, eps=LAYER_NORM_EPS))
            setattr(self, f"ffn_{i}", FFN(hidden_channels, hidden_channels, filter_channels, kernel_size))
            setattr(self, f"norm2_{i}", nn.LayerNorm(hidden_channels, eps=LAYER_NORM_EPS))

    def __call__(self, x: mx.array, x_mask: mx.array) -> mx.array:
        # (B, T, 1) -> (B, 1, T, T): query mask times key mask.
        attn_mask = (x_mask * x_mask.swapaxes(1, 2))[:, None]
        x = x * x_mask
        for i in range(self.n_layers):
            y = getattr(self, f"attn_{i}")(x, attn_mask)
            x = getattr(self, f"norm1_{i}")(x + y)
            y = getattr(self, f"ffn_{i}")(x, x_mask)
            x = getattr(self, f"norm2_{i}")(x + y)
        return x * x_mask


def sequence_mask(lengths: mx.array, max_length: int) -> mx.array:
    """(B,) lengths -> (B, T, 1) float mask, 1 for frames before each length."""
    return (mx.arange(max_length)[None, :] < lengths[:, None]).astype(mx.float32)[..., None]


class TextEncoder(nn.Module):
    """Upstream TextEncoder256 (v1, 256-dim features) and TextEncoder768 (v2): same math, input width differs."""

    def __init__(
        self,
        feature_dim: int,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        f0: bool = True,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = nn.Linear(feature_dim, hidden_channels)
        if f0:
            self.emb_pitch = nn.Embedding(256, hidden_channels)  # coarse pitch 1..255
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = Conv1d(hidden_channels, out_channels * 2, 1)

    def __call__(
        self, phone: mx.array, pitch: mx.array | None, lengths: mx.array
    ) -> tuple[mx.array, mx.array, mx.array, mx.array]:
        """phone (B, T, F), pitch (B, T) int or None, lengths (B,) -> (hidden, m, logs, x_mask), channels-last."""
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = x * math.sqrt(self.hidden_channels)
        x = nn.leaky_relu(x, 0.1)
        x_mask = sequence_mask(lengths, x.shape[1])
        hidden = self.encoder(x * x_mask, x_mask)
        stats = self.proj(hidden) * x_mask
        m, logs = stats[..., : self.out_channels], stats[..., self.out_channels :]
        return hidden, m, logs, x_mask
