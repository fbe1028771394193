"""RMVPE pitch network (upstream `rvc.lib.rmvpe.E2E(4, 1, (2, 2))`) in MLX.

The sizes are arguments, as upstream's `E2E.__init__` takes them, plus the BiGRU's width (256 in upstream,
smaller only in the demo presets that keep test fixtures small); `E2E.from_architecture` builds one from a
manifest's `rmvpe.architecture` block.

Class names, argument names and the order of operations follow upstream so the two files can be read side
by side. Tensors are channels-last (MLX) and mel-major: upstream's NCHW image `(B, C, T, 128)` is
`(B, 128, T, C)` here. Weights keep upstream's axes (`(O, kT, kMel, I)`, H = time and W = mel bins as
upstream); only the activations put the mel axis first, so that each 3x3 convolution is three long 1-D
convolutions along time (`Conv2d3x3`), the shape the native kernel is fast at. `rmvpe.reference` turns every
recorded stage back into upstream's NCHW. Upstream's numbered `nn.Sequential`/`nn.ModuleList`
children get names (`conv1`, `bn1`, `layer_0` ...); `convert.RMVPE_RULES` maps one to the other.
"""

from __future__ import annotations

from ..core import blas  # noqa: F401  (loads OpenBLAS before mlx binds its BLAS)

import mlx.core as mx
import mlx.nn as nn

from ..core import native_conv
from ..core.layers import use_native_conv

# Upstream's BatchNorm2d(momentum=0.01) keeps PyTorch's default eps.
BATCH_NORM_EPS = 1e-5
N_MELS = 128
N_CLASS = 360


def batch_norm(channels: int) -> nn.BatchNorm:
    return nn.BatchNorm(channels, eps=BATCH_NORM_EPS, momentum=0.01)


class _TapWeights:
    """Per-tap weight slices of a `Conv2d3x3`, made once per weight array (a plain object, so MLX does not
    count them as parameters; the native kernel keeps its transformed weights per array, so the same arrays
    must come back every call)."""

    def __init__(self):
        self.source: mx.array | None = None
        self.taps: list[mx.array] = []


class Conv2d3x3(nn.Module):
    """PyTorch `Conv2d(in, out, 3, padding=1)` on mel-major activations `(B, mel, T, in)` -> `(B, mel, T, out)`.

    The weight is upstream's `(out, kT, kMel, in)` (as `nn.Conv2d` stores it, so weights load the same). With
    the native kernel: three 1-D convolutions along time (one per mel tap, the mel bins as the batch), summed
    through the kernel's fused residual; 2-3x MLX's `conv2d` on RMVPE's shapes. Otherwise MLX's `conv2d` with
    the kernel's two spatial axes swapped to match the activations.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.weight = mx.zeros((out_channels, 3, 3, in_channels))
        if bias:
            self.bias = mx.zeros((out_channels,))
        self._tap_weights = _TapWeights()

    def taps(self) -> list[mx.array]:
        """`weight[:, :, k, :]` (out, kT, in) for each mel tap k, contiguous, made once per weight array."""
        cache = self._tap_weights
        if cache.source is not self.weight:
            cache.taps = [mx.contiguous(self.weight[:, :, k, :]) for k in range(3)]
            mx.eval(cache.taps)
            cache.source = self.weight
        return cache.taps

    def __call__(self, x: mx.array) -> mx.array:
        bias = self.bias if "bias" in self else None
        if not use_native_conv():
            y = mx.conv2d(x, self.weight.transpose(0, 2, 1, 3), padding=1)
            return y if bias is None else y + bias
        batch, mels, frames, channels = x.shape
        padded = mx.pad(x, [(0, 0), (1, 1), (0, 0), (0, 0)])
        y = None
        for k, tap in enumerate(self.taps()):
            rows = padded[:, k : k + mels].reshape(batch * mels, frames, channels)
            y = native_conv.conv1d(rows, tap, bias if k == 0 else None, padding=(1, 1), residual=y)
        return y.reshape(batch, mels, frames, -1)


class ConvBlockRes(nn.Module):
    """Two 3x3 conv + BatchNorm + ReLU, plus the input (through a 1x1 conv with bias, no BatchNorm, when the
    channel count changes)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = Conv2d3x3(in_channels, out_channels, bias=False)
        self.bn1 = batch_norm(out_channels)
        self.conv2 = Conv2d3x3(out_channels, out_channels, bias=False)
        self.bn2 = batch_norm(out_channels)
        self.has_shortcut = in_channels != out_channels
        if self.has_shortcut:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def __call__(self, x: mx.array) -> mx.array:
        y = nn.relu(self.bn1(self.conv1(x)))
        y = nn.relu(self.bn2(self.conv2(y)))
        return y + (self.shortcut(x) if self.has_shortcut else x)


class ResEncoderBlock(nn.Module):
    """`n_blocks` ConvBlockRes; with a kernel size, also returns the average-pooled result."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, n_blocks: int = 1):
        super().__init__()
        self.n_blocks = n_blocks
        for i in range(n_blocks):
            setattr(self, f"conv_{i}", ConvBlockRes(in_channels if i == 0 else out_channels, out_channels))
        self.kernel_size = kernel_size
        if kernel_size is not None:
            # Given as (T, mel) like upstream's; the activations are mel-major.
            pool = tuple(reversed(tuple(kernel_size)))
            self.pool = nn.AvgPool2d(kernel_size=pool, stride=pool)

    def __call__(self, x: mx.array):
        for i in range(self.n_blocks):
            x = getattr(self, f"conv_{i}")(x)
        if self.kernel_size is not None:
            return x, self.pool(x)
        return x


class Encoder(nn.Module):
    """Input BatchNorm, then `n_encoders` blocks that double the channels and halve time and mel bins.
    Returns the last pooled tensor and each block's pre-pool output (the U-Net skips)."""

    def __init__(self, in_channels, in_size, n_encoders, kernel_size, n_blocks, out_channels=16):
        super().__init__()
        self.n_encoders = n_encoders
        self.bn = batch_norm(in_channels)
        for i in range(n_encoders):
            setattr(self, f"layer_{i}", ResEncoderBlock(in_channels, out_channels, kernel_size, n_blocks))
            in_channels = out_channels
            out_channels *= 2
            in_size //= 2
        self.out_size = in_size
        self.out_channel = out_channels

    def __call__(self, x: mx.array):
        concat_tensors = []
        x = self.bn(x)
        for i in range(self.n_encoders):
            t, x = getattr(self, f"layer_{i}")(x)
            concat_tensors.append(t)
        return x, concat_tensors


class Intermediate(nn.Module):
    def __init__(self, in_channels, out_channels, n_inters, n_blocks):
        super().__init__()
        self.n_inters = n_inters
        for i in range(n_inters):
            setattr(self, f"layer_{i}", ResEncoderBlock(in_channels if i == 0 else out_channels, out_channels, None, n_blocks))

    def __call__(self, x: mx.array) -> mx.array:
        for i in range(self.n_inters):
            x = getattr(self, f"layer_{i}")(x)
        return x


def _transpose_taps(phase: int, stride: int, padding: int, kernel: int) -> list[tuple[int, int]]:
    """For output positions `stride * m + phase` of a transposed convolution: the (tap, input shift) pairs
    with y[stride*m + phase] += x[m + shift] * w[tap], from o = stride*i - padding + tap."""
    return [(tap, (phase + padding - tap) // stride) for tap in range(kernel) if (phase + padding - tap) % stride == 0]


class SubpixelConvTranspose2d(nn.Module):
    """`nn.ConvTranspose2d` (PyTorch semantics, weight `(out, kT, kMel, in)` as the converter lays it out, stride
    given as (T, mel)) on mel-major activations, for the decoder's case: output_padding = stride - 1, so the
    output is exactly `stride` times the input.

    Each output phase (position modulo the stride) is an ordinary small convolution of the input: one matmul
    per kernel tap on the input grid, then the phases are interleaved. MLX's CPU `conv_transpose2d` instead
    convolves a zero-dilated input, 4x the work on a slower path: replacing it took the decoder from 6.5 s to
    2.2 s on 30 s of audio. Same sums, other rounding order (parity with upstream is unchanged, >120 dB).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride, padding: int, output_padding):
        super().__init__()
        self.stride = tuple(stride)
        if tuple(output_padding) != tuple(s - 1 for s in self.stride) or padding >= kernel_size:
            raise ValueError(
                f"SubpixelConvTranspose2d needs output_padding = stride - 1 (stride {self.stride}, "
                f"output_padding {tuple(output_padding)}) and padding < kernel size"
            )
        self.padding = padding
        self.weight = mx.zeros((out_channels, kernel_size, kernel_size, in_channels))

    def __call__(self, x: mx.array) -> mx.array:
        """Mel-major (B, mel, T, in) -> (B, mel * stride_mel, T * stride_T, out)."""
        batch, height, width, _ = x.shape
        kernel = self.weight.shape[1]
        # The weight's axes are (out, kT, kMel, in); the activations' are (mel, T): swap the kernel's taps.
        weight = self.weight.transpose(0, 2, 1, 3)
        (stride_w, stride_h), pad = self.stride, self.padding
        # Shifts lie in [-(kernel - 1 - pad) / stride, pad / stride]: pad the input by the kernel on each side.
        margin = kernel
        padded = mx.pad(x, [(0, 0), (margin, margin), (margin, margin), (0, 0)])
        rows = []
        for phase_h in range(stride_h):
            columns = []
            for phase_w in range(stride_w):
                total = None
                for tap_h, shift_h in _transpose_taps(phase_h, stride_h, pad, kernel):
                    for tap_w, shift_w in _transpose_taps(phase_w, stride_w, pad, kernel):
                        window = padded[:, margin + shift_h : margin + shift_h + height,
                                        margin + shift_w : margin + shift_w + width, :]
                        term = window @ weight[:, tap_h, tap_w, :].T
                        total = term if total is None else total + term
                columns.append(total)
            rows.append(mx.stack(columns, axis=3))  # (B, H, W, stride_w, out)
        interleaved = mx.stack(rows, axis=2)  # (B, H, stride_h, W, stride_w, out)
        return interleaved.reshape(batch, height * stride_h, width * stride_w, -1)


class ResDecoderBlock(nn.Module):
    """Transposed 3x3 conv (doubling time and mel bins) + BatchNorm + ReLU, concatenation with the skip
    (upsampled tensor first, as upstream's `torch.cat((x, concat_tensor), dim=1)`), then ConvBlockRes."""

    def __init__(self, in_channels, out_channels, stride, n_blocks=1):
        super().__init__()
        output_padding = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.n_blocks = n_blocks
        self.conv1 = SubpixelConvTranspose2d(
            in_channels, out_channels, 3, stride=stride, padding=1, output_padding=output_padding
        )
        self.bn1 = batch_norm(out_channels)
        for i in range(n_blocks):
            setattr(self, f"conv2_{i}", ConvBlockRes(out_channels * 2 if i == 0 else out_channels, out_channels))

    def __call__(self, x: mx.array, concat_tensor: mx.array) -> mx.array:
        x = nn.relu(self.bn1(self.conv1(x)))
        x = mx.concatenate([x, concat_tensor], axis=-1)
        for i in range(self.n_blocks):
            x = getattr(self, f"conv2_{i}")(x)
        return x


class Decoder(nn.Module):
    def __init__(self, in_channels, n_decoders, stride, n_blocks):
        super().__init__()
        self.n_decoders = n_decoders
        for i in range(n_decoders):
            out_channels = in_channels // 2
            setattr(self, f"layer_{i}", ResDecoderBlock(in_channels, out_channels, stride, n_blocks))
            in_channels = out_channels

    def __call__(self, x: mx.array, concat_tensors: list[mx.array]) -> mx.array:
        for i in range(self.n_decoders):
            x = getattr(self, f"layer_{i}")(x, concat_tensors[-1 - i])
        return x


class DeepUnet(nn.Module):
    def __init__(self, kernel_size, n_blocks, en_de_layers=5, inter_layers=4, in_channels=1, en_out_channels=16):
        super().__init__()
        self.encoder = Encoder(in_channels, N_MELS, en_de_layers, kernel_size, n_blocks, en_out_channels)
        self.intermediate = Intermediate(
            self.encoder.out_channel // 2, self.encoder.out_channel, inter_layers, n_blocks
        )
        self.decoder = Decoder(self.encoder.out_channel, en_de_layers, kernel_size, n_blocks)

    def __call__(self, x: mx.array) -> mx.array:
        x, concat_tensors = self.encoder(x)
        x = self.intermediate(x)
        return self.decoder(x, concat_tensors)


class GRU(nn.Module):
    """One direction of one layer of `torch.nn.GRU`, PyTorch's formula and gate order (r, z, n):

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))     <- b_hn is inside the reset gate
        h = (1 - z) * n + z * h

    `reverse` runs the sequence back to front (PyTorch's `_reverse` weights); outputs keep input order.
    """

    def __init__(self, input_size: int, hidden_size: int, reverse: bool = False):
        super().__init__()
        self.hidden_size = hidden_size
        self.is_reverse = reverse
        self.weight_ih = mx.zeros((3 * hidden_size, input_size))
        self.weight_hh = mx.zeros((3 * hidden_size, hidden_size))
        self.bias_ih = mx.zeros((3 * hidden_size,))
        self.bias_hh = mx.zeros((3 * hidden_size,))

    def step(self, input_gates: mx.array, h: mx.array) -> mx.array:
        """One time step from the precomputed `W_i x + b_i` (B, 3H) and the previous hidden state (B, H)."""
        hidden_gates = h @ self.weight_hh.T + self.bias_hh
        x_r, x_z, x_n = mx.split(input_gates, 3, axis=-1)
        h_r, h_z, h_n = mx.split(hidden_gates, 3, axis=-1)
        r = mx.sigmoid(x_r + h_r)
        z = mx.sigmoid(x_z + h_z)
        n = mx.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h

    def __call__(self, x: mx.array) -> mx.array:
        """(B, T, input_size) -> (B, T, hidden_size), starting from h = 0 as upstream.

        With the native kernel the frames are stepped in C++ (`native_conv.gru_recurrence`, the same formula);
        otherwise, or with `RVC_IOS_NATIVE_CONV=0`, by `step` frame by frame.
        """
        input_gates = x @ self.weight_ih.T + self.bias_ih
        if use_native_conv():
            return native_conv.gru_recurrence(input_gates, self.weight_hh, self.bias_hh, reverse=self.is_reverse)
        h = mx.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        steps = range(x.shape[1] - 1, -1, -1) if self.is_reverse else range(x.shape[1])
        outputs = [None] * x.shape[1]
        for t in steps:
            h = self.step(input_gates[:, t], h)
            outputs[t] = h
        return mx.stack(outputs, axis=1)


class BiGRU(nn.Module):
    """Upstream's BiGRU: one bidirectional batch-first GRU layer; forward and reverse outputs concatenated."""

    def __init__(self, input_features: int, hidden_features: int):
        super().__init__()
        self.forward = GRU(input_features, hidden_features)
        self.reverse = GRU(input_features, hidden_features, reverse=True)

    def __call__(self, x: mx.array) -> mx.array:
        return mx.concatenate([self.forward(x), self.reverse(x)], axis=-1)


class SalienceHead(nn.Module):
    """Upstream `E2E.fc`: BiGRU(3*128 -> 2x256), Linear(512 -> 360), Dropout (identity at inference), Sigmoid."""

    def __init__(self, gru_hidden_size: int = 256):
        super().__init__()
        self.gru = BiGRU(3 * N_MELS, gru_hidden_size)
        self.linear = nn.Linear(2 * gru_hidden_size, N_CLASS)

    def __call__(self, x: mx.array) -> mx.array:
        return mx.sigmoid(self.linear(self.gru(x)))


class E2E(nn.Module):
    """Log-mel (B, 128, T) -> pitch salience (B, T, 360); T must be a multiple of 2^en_de_layers (32 for
    rmvpe.pt's five poolings)."""

    def __init__(self, n_blocks=4, n_gru=1, kernel_size=(2, 2), en_de_layers=5, inter_layers=4, in_channels=1,
                 en_out_channels=16, gru_hidden_size=256):
        super().__init__()
        if n_gru != 1:
            # rmvpe.pt is E2E(4, 1, (2, 2)); upstream's GRU-less branch does not even construct.
            raise ValueError(f"only the one-layer BiGRU head of rmvpe.pt is implemented, not n_gru={n_gru}")
        self.unet = DeepUnet(kernel_size, n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels)
        self.cnn = Conv2d3x3(en_out_channels, 3)
        self.fc = SalienceHead(gru_hidden_size)

    @classmethod
    def from_architecture(cls, architecture) -> "E2E":
        """The network a manifest's `rmvpe.architecture` block describes (`convert.ARCHITECTURE`'s fields)."""
        a = architecture
        return cls(a["n_blocks"], a["n_gru"], tuple(a["kernel_size"]), a["en_de_layers"], a["inter_layers"],
                   a["in_channels"], a["en_out_channels"], a["gru_hidden_size"])

    @staticmethod
    def mel_to_image(mel: mx.array) -> mx.array:
        """(B, 128, T) -> mel-major (B, 128, T, 1): upstream's `mel.transpose(-1, -2).unsqueeze(1)` image, in
        this module's layout (no copy)."""
        return mel[..., None]

    @staticmethod
    def flatten_cnn(x: mx.array) -> mx.array:
        """Mel-major (B, 128, T, 3) -> (B, T, 384) channel-major, as upstream's `.transpose(1, 2).flatten(-2)` on
        NCHW: feature index = channel * 128 + mel bin."""
        return x.transpose(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1)

    def __call__(self, mel: mx.array) -> mx.array:
        x = self.cnn(self.unet(self.mel_to_image(mel)))
        return self.fc(self.flatten_cnn(x))
