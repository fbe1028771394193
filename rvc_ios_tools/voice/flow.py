"""RVC's normalizing flow `flow`: upstream `ResidualCouplingBlock` of mean-only `ResidualCouplingLayer`s.

Only the reverse direction exists here: inference maps a prior sample z_p to the decoder's latent z.
Upstream interleaves the coupling layers with weightless `Flip` modules (`flows.0, flows.2, ...` are
couplings, odd indices flips); the exported keys number the couplings `flow_0 .. flow_3`.
"""

from __future__ import annotations

from ..core import blas  # noqa: F401

import mlx.core as mx
import mlx.nn as nn

from ..core.layers import Conv1d

# Upstream SynthesizerTrn* builds ResidualCouplingBlock(inter, hidden, 5, 1, 3): these are not in the config.
FLOW_COUNT = 4
FLOW_KERNEL = 5
FLOW_DILATION_RATE = 1
FLOW_WN_LAYERS = 3


class WN(nn.Module):
    """WaveNet-style stack: gated tanh*sigmoid units with residual and skip outputs, speaker-conditioned.

    One `cond_layer` projects g to 2*hidden channels for every layer at once; layer i reads its slice.
    The last `res_skip_layer` outputs skip channels only (hidden, not 2*hidden).
    """

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        if gin_channels:
            self.cond_layer = Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            setattr(
                self,
                f"in_layer_{i}",
                Conv1d(hidden_channels, 2 * hidden_channels, kernel_size, padding=padding, dilation=dilation),
            )
            res_skip_channels = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            setattr(self, f"res_skip_layer_{i}", Conv1d(hidden_channels, res_skip_channels, 1))

    def __call__(self, x: mx.array, x_mask: mx.array, g: mx.array | None) -> mx.array:
        """x (B, T, hidden), x_mask (B, T, 1), g (B, 1, gin) or None -> (B, T, hidden)."""
        h = self.hidden_channels
        output = mx.zeros_like(x)
        if g is not None:
            g = self.cond_layer(g)
        for i in range(self.n_layers):
            x_in = getattr(self, f"in_layer_{i}")(x)
            in_act = x_in if g is None else x_in + g[..., i * 2 * h : (i + 1) * 2 * h]
            acts = mx.tanh(in_act[..., :h]) * mx.sigmoid(in_act[..., h:])
            res_skip_acts = getattr(self, f"res_skip_layer_{i}")(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip_acts[..., :h]) * x_mask
                output = output + res_skip_acts[..., h:]
            else:
                output = output + res_skip_acts
        return output * x_mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half of the channels is shifted by a function of the first."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int,
    ):
        super().__init__()
        self.half_channels = channels // 2
        self.pre = Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = Conv1d(hidden_channels, self.half_channels, 1)

    def reverse(self, x: mx.array, x_mask: mx.array, g: mx.array | None) -> mx.array:
        x0, x1 = x[..., : self.half_channels], x[..., self.half_channels :]
        h = self.pre(x0) * x_mask
        h = self.enc(h, x_mask, g)
        m = self.post(h) * x_mask
        # Upstream multiplies by exp(-logs) with logs = 0 for mean-only layers: exactly 1.
        x1 = (x1 - m) * x_mask
        return mx.concatenate([x0, x1], axis=-1)


class ResidualCouplingBlock(nn.Module):
    """Four coupling layers; run in reverse, each is preceded by a channel flip."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int = FLOW_KERNEL,
        dilation_rate: int = FLOW_DILATION_RATE,
        n_layers: int = FLOW_WN_LAYERS,
        n_flows: int = FLOW_COUNT,
        gin_channels: int = 0,
    ):
        super().__init__()
        self.n_flows = n_flows
        for k in range(n_flows):
            setattr(
                self,
                f"flow_{k}",
                ResidualCouplingLayer(channels, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels),
            )

    def reverse_step(self, k: int, x: mx.array, x_mask: mx.array, g: mx.array | None) -> mx.array:
        """Upstream's reversed list visits Flip (flows[2k+1]) and then the coupling flows[2k]."""
        x = x[..., ::-1]
        return getattr(self, f"flow_{k}").reverse(x, x_mask, g)

    def __call__(self, x: mx.array, x_mask: mx.array, g: mx.array | None) -> mx.array:
        """Reverse flow (inference): x (B, T, inter) -> (B, T, inter)."""
        for k in reversed(range(self.n_flows)):
            x = self.reverse_step(k, x, x_mask, g)
        return x
