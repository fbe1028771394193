"""RVC's inference synthesizer (upstream `SynthesizerTrnMs256NSFsid`, `...768NSFsid` and their `_nono`
variants): speaker embedding, text encoder, prior sample, reverse flow, decoder.

The module tree equals the exported key names of docs/formats.md, so `core.layers.load_weights_strictly` maps the
converted safetensors 1:1 and refuses anything else.
"""

from __future__ import annotations

from typing import Any

from ..core import blas  # noqa: F401

import mlx.core as mx
import mlx.nn as nn

from .encoder import TextEncoder
from .flow import ResidualCouplingBlock
from .generator import Generator, GeneratorNSF

# Upstream TextEncoder256 (v1) and TextEncoder768 (v2).
FEATURE_DIMS = {"v1": 256, "v2": 768}
# Upstream infer(): z_p = (m_p + exp(logs_p) * randn * 0.66666) * x_mask.
PRIOR_NOISE_SCALE = 0.66666


class Synthesizer(nn.Module):
    """`config` has upstream's hyperparameter names (e.g. `checkpoint.VoiceConfig`); `version` "v1"/"v2"."""

    def __init__(self, config: Any, version: str, f0: bool):
        super().__init__()
        c = config
        self.f0 = f0
        self.version = version
        self.inter_channels = c.inter_channels
        self.enc_p = TextEncoder(
            FEATURE_DIMS[version],
            c.inter_channels,
            c.hidden_channels,
            c.filter_channels,
            c.n_heads,
            c.n_layers,
            c.kernel_size,
            f0=f0,
        )
        decoder_args = (
            c.inter_channels,
            str(c.resblock),
            list(c.resblock_kernel_sizes),
            [list(d) for d in c.resblock_dilation_sizes],
            list(c.upsample_rates),
            c.upsample_initial_channel,
            list(c.upsample_kernel_sizes),
            c.gin_channels,
        )
        self.dec = GeneratorNSF(*decoder_args, sr=c.sample_rate) if f0 else Generator(*decoder_args)
        self.flow = ResidualCouplingBlock(c.inter_channels, c.hidden_channels, gin_channels=c.gin_channels)
        self.emb_g = nn.Embedding(c.spk_embed_dim, c.gin_channels)

    def speaker(self, sid: mx.array) -> mx.array:
        """(B,) speaker ids -> g (B, 1, gin)."""
        return self.emb_g(sid)[:, None, :]

    @staticmethod
    def prior_sample(m_p: mx.array, logs_p: mx.array, x_mask: mx.array, noise: mx.array) -> mx.array:
        return (m_p + mx.exp(logs_p) * noise * PRIOR_NOISE_SCALE) * x_mask

    def infer(
        self,
        phone: mx.array,
        phone_lengths: mx.array,
        pitch: mx.array | None,
        pitchf: mx.array | None,
        sid: mx.array,
        noise_z_p: mx.array,
        noise_nsf: mx.array | None = None,
        noise_nsf_phase: mx.array | None = None,
    ) -> mx.array:
        """Channels-last inputs (noise_z_p is (B, T, inter)) -> audio (B, T*upp, 1)."""
        g = self.speaker(sid)
        _, m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.f0 else None, phone_lengths)
        z_p = self.prior_sample(m_p, logs_p, x_mask, noise_z_p)
        z = self.flow(z_p, x_mask, g)
        if self.f0:
            return self.dec(z * x_mask, pitchf, g, noise_nsf, noise_nsf_phase)
        return self.dec(z * x_mask, g)
