"""The voice as the three torch modules that are traced into Core ML, built from upstream's own submodules.

Upstream's `infer` is cut where Core ML needs it cut, and each piece returns the golden stages it computes:
- `EncoderFlow`: speaker, text_encoder, prior_sample, flow (relative attention converts at fixed lengths only, so
  this piece is converted once per frame bucket);
- `NsfSource`: SineGen and the source module (upstream's code, `% 1` and all), its random draws as inputs;
- `Decoder`: the HiFi-GAN/NSF decoder, the source as an input (converts with a flexible length).

Each forward calls upstream's modules in `infer`'s order; the intermediate stages are read with forward hooks and
by wrapping the flow's coupling layers, as `voice.upstream.run_upstream_voice` reads them. Weight norm is removed
first (upstream's `remove_weight_norm`), so the traced constants are the folded float32 weights the safetensors
export holds. torch and upstream's `rvc` are imported lazily.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ..voice.checkpoint import FLOW_COUNT, VoiceCheckpoint


def folded_upstream_model(checkpoint: VoiceCheckpoint):
    """Upstream's synthesizer for the voice, float32, eval mode, weight norm folded by upstream's own calls."""
    from ..voice.upstream import upstream_model

    model = upstream_model(checkpoint)
    model.dec.remove_weight_norm()
    model.flow.remove_weight_norm()
    return model




class _Captures:
    """Tensors read by hooks during one forward call, so the traced graph returns them as outputs."""

    def __init__(self):
        self.values: dict[str, Any] = {}

    def hook(self, name: str, pick=lambda output: output):
        def keep(module, args, output):
            # clone: upstream accumulates resblock outputs in place (`xs += ...`).
            self.values[name] = pick(output).clone()

        return keep


def encoder_flow_outputs(f0: bool) -> list[str]:
    return ["g", "enc_p.hidden", "m_p", "logs_p", "x_mask", "z_p",
            *(f"flow.flow_{k}" for k in reversed(range(FLOW_COUNT))), "z"]


def encoder_flow_inputs(f0: bool) -> list[str]:
    return ["phone", "phone_lengths", *(["pitch"] if f0 else []), "sid", "noise.z_p"]


def decoder_outputs(upsample_count: int) -> list[str]:
    return ["dec.conv_pre", *(f"dec.up_{i}" for i in range(upsample_count)), "audio"]


def decoder_inputs(f0: bool) -> list[str]:
    return ["z", "g", *(["dec.source"] if f0 else [])]


NSF_SOURCE_INPUTS = ["pitchf", "noise.nsf", "noise.nsf_phase"]
NSF_SOURCE_OUTPUTS = ["dec.source"]


@contextlib.contextmanager
def traceable_wavenet_gate():
    """Within the block, upstream's `commons.fused_add_tanh_sigmoid_multiply` is the same lines without
    `@torch.jit.script`: tracing the scripted function records an `intimplicit` op (its `IntTensor n_channels`)
    that coremltools 9.0 cannot convert."""
    import torch
    from rvc.lib.infer_pack import commons

    scripted = commons.fused_add_tanh_sigmoid_multiply

    def fused_add_tanh_sigmoid_multiply(input_a, input_b, n_channels):
        n_channels_int = int(n_channels[0])
        in_act = input_a + input_b
        t_act = torch.tanh(in_act[:, :n_channels_int, :])
        s_act = torch.sigmoid(in_act[:, n_channels_int:, :])
        acts = t_act * s_act
        return acts

    commons.fused_add_tanh_sigmoid_multiply = fused_add_tanh_sigmoid_multiply
    try:
        yield
    finally:
        commons.fused_add_tanh_sigmoid_multiply = scripted


def build_encoder_flow(model, f0: bool):
    import torch

    class EncoderFlow(torch.nn.Module):
        """emb_g, enc_p, the prior sample with its draw as an input, the flow in reverse (upstream `infer`)."""

        def __init__(self):
            super().__init__()
            self.emb_g, self.enc_p, self.flow = model.emb_g, model.enc_p, model.flow
            self.f0 = f0

        def forward(self, *args):
            if self.f0:
                phone, phone_lengths, pitch, sid, noise_z_p = args
            else:
                (phone, phone_lengths, sid, noise_z_p), pitch = args, None
            captures = _Captures()
            handle = self.enc_p.encoder.register_forward_hook(captures.hook("enc_p.hidden"))
            couplings = [self.flow.flows[2 * k] for k in range(len(self.flow.flows) // 2)]
            for k, layer in enumerate(couplings):
                layer.forward = _recording_coupling(layer.forward, captures.values, f"flow.flow_{k}")
            try:
                with traceable_wavenet_gate():
                    g = self.emb_g(sid).unsqueeze(-1)
                    m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths)
                    z_p = (m_p + torch.exp(logs_p) * noise_z_p * 0.66666) * x_mask
                    z = self.flow(z_p, x_mask, g=g, reverse=True)
            finally:
                handle.remove()
                for layer in couplings:
                    del layer.forward
            flows = [captures.values[f"flow.flow_{k}"] for k in reversed(range(FLOW_COUNT))]
            return (g, captures.values["enc_p.hidden"], m_p, logs_p, x_mask, z_p, *flows, z * x_mask)

    return EncoderFlow().eval()


def _recording_coupling(original, values: dict[str, Any], name: str):
    def forward(*args, **kwargs):
        x, logdet = original(*args, **kwargs)
        values[name] = x
        return x, logdet

    return forward


@contextlib.contextmanager
def draws_from_inputs(normal, uniform):
    """Within the block, upstream SineGen's `randn_like` and `rand` return the given (traced) input tensors, so
    the draws become inputs of the converted program instead of constants or Core ML random ops."""
    import torch

    original_randn_like, original_rand = torch.randn_like, torch.rand
    # SineGen zeroes the fundamental's initial phase in place (`rand_ini[:, 0] = 0`): give it a copy.
    torch.randn_like = lambda tensor, *args, **kwargs: normal
    torch.rand = lambda *args, **kwargs: uniform.clone()
    try:
        yield
    finally:
        torch.randn_like, torch.rand = original_randn_like, original_rand


def build_nsf_source(model):
    import torch

    class NsfSource(torch.nn.Module):
        """Upstream's `dec.m_source(f0, upp)`: SineGen, then l_linear and tanh; returns `dec.source` (B, T*upp, 1)."""

        def __init__(self):
            super().__init__()
            # Held as `dec.m_source`, so the traced consts keep upstream's names (dec_m_source_l_linear_weight).
            self.dec = torch.nn.Module()
            self.dec.m_source = model.dec.m_source
            self.upp = int(model.dec.upp)

        def forward(self, pitchf, noise_nsf, noise_nsf_phase):
            with draws_from_inputs(noise_nsf, noise_nsf_phase):
                source, _, _ = self.dec.m_source(pitchf, self.upp)
            return source

    return NsfSource().eval()


def build_decoder(model, f0: bool):
    import torch

    dec = model.dec

    class GivenSource(torch.nn.Module):
        """Stands in for `dec.m_source`, so upstream's GeneratorNSF.forward takes the source as an input."""

        def __init__(self):
            super().__init__()
            self.value = None

        def forward(self, f0, upp):
            return self.value, None, None

    class Decoder(torch.nn.Module):
        """Upstream's `dec(z * x_mask, nsff0, g=g)` with the source given; every upsample stage as an output."""

        def __init__(self):
            super().__init__()
            self.dec = dec
            self.f0 = f0

        def forward(self, z, g, *source):
            captures = _Captures()
            handles = [self.dec.conv_pre.register_forward_hook(captures.hook("conv_pre"))]
            if hasattr(self.dec, "cond"):
                handles.append(self.dec.cond.register_forward_hook(captures.hook("cond")))
            for index, block in enumerate(self.dec.resblocks):
                handles.append(block.register_forward_hook(captures.hook(f"resblock.{index}")))
            original_source = getattr(self.dec, "m_source", None)
            try:
                if self.f0:
                    given = GivenSource()
                    given.value = source[0]
                    self.dec.m_source = given
                    audio = self.dec(z, None, g=g)
                else:
                    audio = self.dec(z, g=g)
            finally:
                for handle in handles:
                    handle.remove()
                if original_source is not None:
                    self.dec.m_source = original_source
            values = captures.values
            conv_pre = values["conv_pre"] + values["cond"] if "cond" in values else values["conv_pre"]
            kernels = len(self.dec.resblocks) // self.dec.num_upsamples
            ups = []
            for i in range(self.dec.num_upsamples):
                # Upstream's `xs = r0(x); xs += r1(x); ...; x = xs / num_kernels`, in the same order.
                xs = values[f"resblock.{i * kernels}"]
                for j in range(1, kernels):
                    xs = xs + values[f"resblock.{i * kernels + j}"]
                ups.append(xs / kernels)
            return (conv_pre, *ups, audio)

    return Decoder().eval()


def example_inputs(names: list[str], tensors: dict[str, np.ndarray]):
    """Torch tensors of `names` from golden-named numpy arrays (the trace's example inputs)."""
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(tensors[name])) for name in names)
