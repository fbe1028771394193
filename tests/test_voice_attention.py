"""The text encoder's relative attention: the band skews against their definition, and the whole attention
against upstream's pad-and-reshape formulation written out in numpy, on lengths shorter and longer than the
window."""

from __future__ import annotations

import numpy as np
import pytest

from rvc_ios_tools.core import blas  # noqa: F401  (loads OpenBLAS before mlx binds its BLAS)

import mlx.core as mx

from rvc_ios_tools.voice.encoder import MultiHeadAttention, absolute_to_band, band_to_absolute

WINDOW = 10
LENGTHS = (1, 2, 9, 10, 11, 12, 21, 22, 57)


@pytest.mark.parametrize("length", LENGTHS)
def test_band_to_absolute_puts_offset_j_minus_i_on_each_diagonal(length):
    width = 2 * WINDOW + 1
    band = np.random.default_rng(length).standard_normal((2, 3, length, width)).astype(np.float32)
    expected = np.zeros((2, 3, length, length), dtype=np.float32)
    for i in range(length):
        for j in range(length):
            if abs(j - i) <= WINDOW:
                expected[..., i, j] = band[..., i, j - i + WINDOW]
    assert np.array_equal(np.array(band_to_absolute(mx.array(band), WINDOW)), expected)


@pytest.mark.parametrize("length", LENGTHS)
def test_absolute_to_band_reads_each_diagonal_back_and_zero_past_the_ends(length):
    x = np.random.default_rng(length + 100).standard_normal((2, 3, length, length)).astype(np.float32)
    expected = np.zeros((2, 3, length, 2 * WINDOW + 1), dtype=np.float32)
    for i in range(length):
        for r in range(2 * WINDOW + 1):
            j = i + r - WINDOW
            if 0 <= j < length:
                expected[..., i, r] = x[..., i, j]
    assert np.array_equal(np.array(absolute_to_band(mx.array(x), WINDOW)), expected)


def upstream_attention(q, k, v, emb_k, emb_v, mask, heads):
    """attentions.MultiHeadAttention.attention (heads_share=True, window 10) in float64 numpy, step for step:
    the table padded to 2T-1 rows, the (T, 2T-1) logits and weights shuffled by pad and reshape."""
    t, c = q.shape
    d = c // heads
    split = lambda a: a.reshape(t, heads, d).transpose(1, 0, 2)  # noqa: E731
    q, k, v = split(q) / np.sqrt(d), split(k), split(v)
    pad, start = max(t - (WINDOW + 1), 0), max((WINDOW + 1) - t, 0)

    def table(emb):
        padded = np.pad(emb[0], [(pad, pad), (0, 0)])
        return padded[start : start + 2 * t - 1]

    rel = q @ table(emb_k).T  # (H, T, 2T-1)
    rel = np.pad(rel, [(0, 0), (0, 0), (0, 1)]).reshape(heads, t * 2 * t)
    rel = np.pad(rel, [(0, 0), (0, t - 1)]).reshape(heads, t + 1, 2 * t - 1)[:, :t, t - 1 :]
    scores = q @ k.transpose(0, 2, 1) + rel
    scores = np.where(mask == 0, -1e4, scores)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = p @ v
    shuffled = np.pad(p, [(0, 0), (0, 0), (0, t - 1)]).reshape(heads, t * (2 * t - 1))
    shuffled = np.pad(shuffled, [(0, 0), (t, 0)]).reshape(heads, t, 2 * t)[:, :, 1:]
    out = out + shuffled @ table(emb_v)
    return out.transpose(1, 0, 2).reshape(t, c)


@pytest.mark.parametrize("length", (5, 11, 40))
def test_attention_matches_upstreams_shuffles(length):
    rng = np.random.default_rng(length)
    channels, heads = 8, 2
    attention = MultiHeadAttention(channels, channels, heads)
    emb_k, emb_v = (rng.standard_normal((1, 2 * WINDOW + 1, channels // heads)).astype(np.float32) for _ in range(2))
    attention.emb_rel_k, attention.emb_rel_v = mx.array(emb_k), mx.array(emb_v)
    q, k, v = (rng.standard_normal((length, channels)).astype(np.float32) for _ in range(3))
    valid = np.arange(length) < length - 2  # the last two frames padded
    mask = (valid[:, None] & valid[None, :]).astype(np.float32)
    ours = attention.attention(mx.array(q[None]), mx.array(k[None]), mx.array(v[None]), mx.array(mask[None, None]))
    expected = upstream_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                                  emb_k.astype(np.float64), emb_v.astype(np.float64), mask, heads)
    np.testing.assert_allclose(np.array(ours)[0], expected, rtol=1e-5, atol=1e-5)
