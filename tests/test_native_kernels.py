"""The native GELU, GroupNorm over time and attention kernels (`native_kernels`) against PyTorch in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rvc_ios_tools.core import blas, native_conv, native_kernels

import mlx.core as mx

pytestmark = pytest.mark.skipif(not native_conv.available(), reason=str(native_conv.unavailable_reason()))


def snr_db(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.asarray(expected, np.float64)
    error = np.asarray(actual, np.float64) - expected
    return float(10 * np.log10((expected**2).sum() / max((error**2).sum(), 1e-300)))


def test_gelu_is_exact_gelu_to_float32_rounding():
    x = np.concatenate([np.linspace(-12, 12, 200_001), np.random.default_rng(0).standard_normal(100_000) * 3])
    expected = F.gelu(torch.from_numpy(x)).numpy()  # erf form, float64
    actual = np.array(native_kernels.gelu(mx.array(x.astype(np.float32))))
    assert np.abs(actual - expected).max() <= 2e-6 * max(1.0, np.abs(x).max()) and snr_db(expected, actual) > 130


def test_gelu_reads_strided_views():
    x = np.random.default_rng(1).standard_normal((40, 30)).astype(np.float32)
    transposed = mx.array(np.ascontiguousarray(x.T)).T
    np.testing.assert_array_equal(np.array(native_kernels.gelu(transposed)), np.array(native_kernels.gelu(mx.array(x))))


def test_gelu_leaves_an_input_held_elsewhere_unchanged():
    x = mx.array(np.random.default_rng(2).standard_normal(1 << 18).astype(np.float32))
    mx.eval(x)
    before = np.array(x)
    mx.eval(native_kernels.gelu(x))
    np.testing.assert_array_equal(np.array(x), before)


def group_norm_expected(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """fairseq's Fp32GroupNorm(C, C) on (B, C, T), in float64, back to (B, T, C)."""
    channels = x.shape[2]
    y = F.group_norm(torch.from_numpy(x.astype(np.float64)).transpose(1, 2), channels,
                     torch.from_numpy(weight.astype(np.float64)), torch.from_numpy(bias.astype(np.float64)), eps)
    return y.transpose(1, 2).numpy()


@pytest.mark.parametrize("batch, frames, channels", [(1, 2, 8), (2, 999, 16), (1, 20000, 64)])
def test_group_norm_normalises_each_channel_over_time(batch, frames, channels):
    rng = np.random.default_rng(frames)
    x = (rng.standard_normal((batch, frames, channels)) * 3 + rng.standard_normal(channels)).astype(np.float32)
    weight, bias = (rng.standard_normal(channels).astype(np.float32) for _ in range(2))
    actual = native_kernels.group_norm_over_time(mx.array(x), mx.array(weight), mx.array(bias), 1e-5)
    # x * s + t in float32, as PyTorch applies it, where x * s and t may nearly cancel: 120 dB, not 140.
    assert snr_db(group_norm_expected(x, weight, bias, 1e-5), np.array(actual)) > 120


def test_group_norm_leaves_an_input_held_elsewhere_unchanged():
    x = mx.array(np.random.default_rng(3).standard_normal((1, 500, 8)).astype(np.float32))
    mx.eval(x)
    before = np.array(x)
    mx.eval(native_kernels.group_norm_over_time(x, mx.ones((8,)), mx.zeros((8,)), 1e-5))
    np.testing.assert_array_equal(np.array(x), before)


def attention_expected(q, k, v, heads):
    """softmax(q k^T) v per head in float64, (B, T, H) in and out."""
    batch, frames, hidden = q.shape

    def split(t):
        return torch.from_numpy(t.astype(np.float64)).reshape(batch, frames, heads, hidden // heads).transpose(1, 2)

    out = torch.softmax(split(q) @ split(k).transpose(-1, -2), dim=-1) @ split(v)
    return out.transpose(1, 2).reshape(batch, frames, hidden).numpy()


@pytest.mark.parametrize("query_block", [1, 7, 128, 4096])
@pytest.mark.parametrize("batch, frames, hidden, heads", [(1, 1, 8, 2), (2, 301, 48, 4), (1, 1200, 96, 12)])
def test_attention_is_softmax_of_scores_times_values_per_head(query_block, batch, frames, hidden, heads):
    rng = np.random.default_rng(frames + query_block)
    q, k, v = (rng.standard_normal((batch, frames, hidden)).astype(np.float32) for _ in range(3))
    q *= 2  # peaked rows, as a trained model's
    actual = native_kernels.attention(mx.array(q), mx.array(k), mx.array(v), heads, query_block)
    assert snr_db(attention_expected(q, k, v, heads), np.array(actual)) > 120


def test_attention_reads_strided_views():
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((1, 50, 16)).astype(np.float32) for _ in range(3))
    strided = [mx.array(np.ascontiguousarray(t.transpose(0, 2, 1))).transpose(0, 2, 1) for t in (q, k, v)]
    np.testing.assert_array_equal(np.array(native_kernels.attention(*strided, 4)),
                                  np.array(native_kernels.attention(mx.array(q), mx.array(k), mx.array(v), 4)))


def test_same_results_on_one_thread_and_openblas_threads_restored():
    rng = np.random.default_rng(5)
    x = mx.array(rng.standard_normal((1, 3000, 64)).astype(np.float32))
    q, k, v = (mx.array(rng.standard_normal((1, 500, 64)).astype(np.float32)) for _ in range(3))

    def run():
        return (np.array(native_kernels.gelu(x)), np.array(native_kernels.attention(q, k, v, 4, 64)),
                np.array(native_kernels.group_norm_over_time(x, mx.ones((64,)), mx.zeros((64,)), 1e-5)))

    threads = blas.num_threads()
    try:
        blas.set_num_threads(1)
        single = run()
        blas.set_num_threads(2)
        double = run()
        assert blas.num_threads() == 2
    finally:
        blas.set_num_threads(threads)
    np.testing.assert_array_equal(single[0], double[0])
    np.testing.assert_array_equal(single[1], double[1])
    np.testing.assert_allclose(single[2], double[2], rtol=0, atol=1e-6)  # moments summed in another order


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: native_kernels.gelu(mx.zeros((4,), mx.float16)), "gelu: x must be float32"),
        (lambda: native_kernels.group_norm_over_time(mx.zeros((1, 4, 3)), mx.ones((2,)), mx.zeros((3,)), 1e-5),
         "weight and bias must be (3,)"),
        (lambda: native_kernels.group_norm_over_time(mx.zeros((4, 3)), mx.ones((3,)), mx.zeros((3,)), 1e-5),
         "x must be (batch, frames, channels)"),
        (lambda: native_kernels.attention(mx.zeros((1, 4, 6)), mx.zeros((1, 4, 6)), mx.zeros((1, 4, 6)), 4),
         "heads must divide the hidden size 6"),
        (lambda: native_kernels.attention(mx.zeros((1, 4, 8)), mx.zeros((1, 5, 8)), mx.zeros((1, 4, 8)), 2),
         "q, k and v must have one shape"),
        (lambda: native_kernels.attention(mx.zeros((1, 4, 8)), mx.zeros((1, 4, 8)), mx.zeros((1, 4, 8)), 2, 0),
         "query_block must be at least 1"),
    ],
)
def test_rejects_bad_inputs_with_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
