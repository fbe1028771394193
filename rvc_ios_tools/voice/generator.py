"""RVC's decoder `dec`: HiFi-GAN (`Generator`, no-f0 voices) and NSF-HiFiGAN (`GeneratorNSF`, f0 voices).

Channels-last: latents (B, T, C), audio (B, T*upp, 1). Every random draw of upstream's `SineGen` is an input
here (`noise` for `torch.randn_like`, `phase` for `torch.rand`), so a run is a pure function of its inputs.
"""

from __future__ import annotations

import math

from ..core import blas  # noqa: F401

import mlx.core as mx
import mlx.nn as nn

from ..core.layers import Conv1d, ConvTranspose1d

# Upstream modules.LRELU_SLOPE, used inside the upsampling stages and resblocks.
LRELU_SLOPE = 0.1
# Upstream calls F.leaky_relu(x) before conv_post with PyTorch's default slope.
POST_LRELU_SLOPE = 0.01


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs, each pre-activated with leaky ReLU and added back to x."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3, 5)):
        super().__init__()
        self.n_pairs = len(dilation)
        for m, d in enumerate(dilation):
            setattr(self, f"c1_{m}", Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size, d), dilation=d))
            setattr(self, f"c2_{m}", Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size, 1)))

    def __call__(self, x: mx.array) -> mx.array:
        for m in range(self.n_pairs):
            xt = getattr(self, f"c1_{m}")(x, input_slope=LRELU_SLOPE)
            x = getattr(self, f"c2_{m}")(xt, input_slope=LRELU_SLOPE, residual=x)
        return x


class ResBlock2(nn.Module):
    """Two dilated convs, each pre-activated with leaky ReLU and added back to x."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: tuple[int, ...] = (1, 3)):
        super().__init__()
        self.n_convs = len(dilation)
        for m, d in enumerate(dilation):
            setattr(self, f"c_{m}", Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size, d), dilation=d))

    def __call__(self, x: mx.array) -> mx.array:
        for m in range(self.n_convs):
            x = getattr(self, f"c_{m}")(x, input_slope=LRELU_SLOPE, residual=x)
        return x


def cumsum_like_torch(x: mx.array, axis: int) -> mx.array:
    """float32 cumulative sum as PyTorch's CPU kernel computes it: accumulated in float64, each output rounded.

    A float32 running sum drifts from it by ~1e-5 over 10 s of samples, which the sine phase turns into
    audible error; the float64 accumulator reproduces upstream bit for bit.
    """
    return mx.cumsum(x.astype(mx.float64), axis=axis).astype(mx.float32)


def linear_upsample_align_corners(x: mx.array, length: int) -> mx.array:
    """(B, T, C) -> (B, length, C) like F.interpolate(mode="linear", align_corners=True) on (B, C, T).

    Reproduces PyTorch's CPU kernel to the bit: source position i * float32((T-1)/(length-1)) in float32,
    weights w0 = 1 - lambda, w1 = lambda, and the result fma(x0, w0, x1 * w1) (its vectorised path fuses the
    last multiply-add). The bit matters: SineGen treats any decrease of the upsampled phase as a wrap, and
    a plain x0*w0 + x1*w1 wobbles by an ulp between equal neighbours (unvoiced stretches), adding spurious
    whole cycles that push the phase to magnitudes where float32 loses it.
    """
    frames = x.shape[1]
    scale = mx.array(frames - 1, dtype=mx.float32) / mx.array(max(length - 1, 1), dtype=mx.float32)
    position = mx.arange(length, dtype=mx.float32) * scale
    lower = mx.minimum(mx.floor(position).astype(mx.int32), frames - 1)
    upper = mx.minimum(lower + 1, frames - 1)
    w1 = mx.clip(position - lower.astype(mx.float32), 0.0, 1.0)[None, :, None]
    w0 = 1.0 - w1
    x0, x1 = x[:, lower], x[:, upper]
    # fma emulated in float64: the float32 product x0*w0 is exact there, then one rounding to float32
    # (a double rounding that can differ from a true fma only at exact float32 ties, ~2^-29 of cases).
    fused = x0.astype(mx.float64) * w0.astype(mx.float64) + (x1 * w1).astype(mx.float64)
    return fused.astype(mx.float32)


class SineGen(nn.Module):
    """Sine excitation from frame-rate f0 (upstream `SineGen`), with its random draws passed in.

    The phase is accumulated per frame, upsampled linearly to find where it wraps past 1, then re-accumulated
    per sample from the nearest-upsampled increments with -1 at each wrap, as upstream does.
    """

    def __init__(self, sampling_rate: int, harmonic_num: int = 0, sine_amp: float = 0.1, noise_std: float = 0.003):
        super().__init__()
        self.sampling_rate = sampling_rate
        self.harmonic_num = harmonic_num
        self.sine_amp = sine_amp
        self.noise_std = noise_std

    def __call__(self, f0: mx.array, upp: int, noise: mx.array, phase: mx.array) -> mx.array:
        """f0 (B, T) Hz; noise (B, T*upp, dim) standard normal; phase (B, dim) in [0, 1), column 0 zero.

        Returns (B, T*upp, dim) sine waves with uv-dependent noise added.
        """
        f0 = f0[..., None]
        harmonics = mx.arange(1, self.harmonic_num + 2, dtype=mx.float32)
        f0_buf = f0 * harmonics if self.harmonic_num else f0
        rad_values = (f0_buf / self.sampling_rate) % 1
        rad_values = mx.concatenate([rad_values[:, :1] + phase[:, None, :], rad_values[:, 1:]], axis=1)
        tmp_over_one = cumsum_like_torch(rad_values, axis=1) * upp
        tmp_over_one = linear_upsample_align_corners(tmp_over_one, f0.shape[1] * upp)
        rad_values = mx.repeat(rad_values, upp, axis=1)  # nearest upsampling
        tmp_over_one = tmp_over_one % 1
        wrapped = (tmp_over_one[:, 1:] - tmp_over_one[:, :-1]) < 0
        cumsum_shift = mx.concatenate(
            [mx.zeros_like(rad_values[:, :1]), wrapped.astype(mx.float32) * -1.0], axis=1
        )
        sine_waves = mx.sin(cumsum_like_torch(rad_values + cumsum_shift, axis=1) * 2 * math.pi)
        sine_waves = sine_waves * self.sine_amp
        uv = mx.repeat((f0 > 0).astype(mx.float32), upp, axis=1)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        return sine_waves * uv + noise_amp * noise


class SourceModuleHnNSF(nn.Module):
    """Harmonic-plus-noise source: sine excitation merged to one channel by `l_linear`, then tanh."""

    def __init__(self, sampling_rate: int, harmonic_num: int = 0):
        super().__init__()
        self.l_sin_gen = SineGen(sampling_rate, harmonic_num)
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def __call__(self, f0: mx.array, upp: int, noise: mx.array, phase: mx.array) -> mx.array:
        return mx.tanh(self.l_linear(self.l_sin_gen(f0, upp, noise, phase)))


class Generator(nn.Module):
    """HiFi-GAN: conv_pre (+ speaker cond), then per stage leaky ReLU, transposed conv, mean of resblocks."""

    def __init__(
        self,
        initial_channel: int,
        resblock: str,
        resblock_kernel_sizes: list[int],
        resblock_dilation_sizes: list[list[int]],
        upsample_rates: list[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: list[int],
        gin_channels: int = 0,
    ):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.upp = math.prod(upsample_rates)
        self._upsample_rates = tuple(upsample_rates)
        self._upsample_initial_channel = upsample_initial_channel
        self.conv_pre = Conv1d(initial_channel, upsample_initial_channel, 7, padding=3)
        block = ResBlock1 if resblock == "1" else ResBlock2
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in, c_out = upsample_initial_channel // (2**i), upsample_initial_channel // (2 ** (i + 1))
            setattr(self, f"up_{i}", ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2))
            for j, (rk, d) in enumerate(zip(resblock_kernel_sizes, resblock_dilation_sizes)):
                setattr(self, f"resblock_{i * self.num_kernels + j}", block(c_out, rk, tuple(d)))
        self.conv_post = Conv1d(c_out, 1, 7, padding=3, bias=False)
        if gin_channels:
            self.cond = Conv1d(gin_channels, upsample_initial_channel, 1)

    def pre(self, x: mx.array, g: mx.array | None) -> mx.array:
        x = self.conv_pre(x)
        return x if g is None else x + self.cond(g)

    def upsample_stage(self, i: int, x: mx.array, source: mx.array | None = None) -> mx.array:
        """One upsampling stage, evaluated piece by piece. Left as one lazy graph, the decoder kept every
        resblock's activations of every stage alive until the end: on a 39 s segment at 40 kHz 8.5 GB and
        about 20% more time than the 1.9 GB this way. The arithmetic, and so every result, is the same."""
        x = nn.leaky_relu(x, LRELU_SLOPE)
        x = getattr(self, f"up_{i}")(x)
        if source is not None:
            x = x + getattr(self, f"noise_conv_{i}")(source)
        mx.eval(x)
        xs = getattr(self, f"resblock_{i * self.num_kernels}")(x)
        mx.eval(xs)
        for j in range(1, self.num_kernels):
            xs = xs + getattr(self, f"resblock_{i * self.num_kernels + j}")(x)
            mx.eval(xs)
        xs = xs / self.num_kernels
        mx.eval(xs)
        return xs

    def post(self, x: mx.array) -> mx.array:
        return mx.tanh(self.conv_post(x, input_slope=POST_LRELU_SLOPE))

    def __call__(self, x: mx.array, g: mx.array | None = None) -> mx.array:
        """x (B, T, inter), g (B, 1, gin) -> audio (B, T*upp, 1)."""
        x = self.pre(x, g)
        for i in range(self.num_upsamples):
            x = self.upsample_stage(i, x)
        return self.post(x)


class GeneratorNSF(Generator):
    """HiFi-GAN plus a sine source (NSF), injected into every stage through `noise_conv_i`.

    Takes Generator's arguments in the same order, then the sample rate `sr` the sine is generated at.
    """

    def __init__(self, *generator_args, sr: int):
        super().__init__(*generator_args)
        upsample_rates, upsample_initial_channel = self._upsample_rates, self._upsample_initial_channel
        self.m_source = SourceModuleHnNSF(sr, harmonic_num=0)
        for i in range(len(upsample_rates)):
            c_out = upsample_initial_channel // (2 ** (i + 1))
            if i + 1 < len(upsample_rates):
                # Brings the sample-rate source down to stage i's rate.
                stride = math.prod(upsample_rates[i + 1 :])
                conv = Conv1d(1, c_out, 2 * stride, stride=stride, padding=stride // 2)
            else:
                conv = Conv1d(1, c_out, 1)
            setattr(self, f"noise_conv_{i}", conv)

    def source(self, f0: mx.array, noise: mx.array, phase: mx.array) -> mx.array:
        """f0 (B, T) Hz -> harmonic source (B, T*upp, 1)."""
        return self.m_source(f0, self.upp, noise, phase)

    def __call__(
        self, x: mx.array, f0: mx.array, g: mx.array | None, noise: mx.array, phase: mx.array
    ) -> mx.array:
        """x (B, T, inter), f0 (B, T), g (B, 1, gin), noise (B, T*upp, 1), phase (B, 1) -> (B, T*upp, 1)."""
        har_source = self.source(f0, noise, phase)
        x = self.pre(x, g)
        for i in range(self.num_upsamples):
            x = self.upsample_stage(i, x, har_source)
        return self.post(x)
