"""Upstream PyTorch as the ground truth: run it with our noise and capture every golden intermediate.

Upstream's `infer` draws its randomness from `torch.randn_like` (the prior sample, then the NSF noise) and
`torch.rand` (SineGen's initial phase); `injected_noise` replaces those calls for the duration of one run
with the recorded draws, in call order, so upstream and the MLX reference see the same numbers. The
intermediates are captured with forward hooks and by wrapping the flow's coupling layers (upstream calls
their `.forward` directly, which bypasses hooks). Nothing of upstream is copied or modified.

torch and the upstream `rvc` package are imported lazily: the rest of the package runs without them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Mapping

import numpy as np

from .checkpoint import VoiceCheckpoint, voice_from_payload


@dataclasses.dataclass(frozen=True)
class StageFigure:
    """How closely the MLX reference matches upstream on one tensor."""

    name: str
    snr_db: float
    pearson_r: float
    max_abs_error: float

    def __iter__(self) -> Iterator[Any]:  # unpacks as (name, snr, r, maxabs)
        return iter((self.name, self.snr_db, self.pearson_r, self.max_abs_error))


def upstream_model(checkpoint: VoiceCheckpoint):
    """Upstream's synthesizer class for this voice, float32, eval mode, with the voice's (fp16) weights.

    Weight norm stays attached, so upstream folds it itself at run time from the stored gain/direction.
    Applio's parametrization names are mapped to the `weight_g`/`weight_v` names the class registers.
    """
    import torch

    from .demo import upstream_class

    cls = upstream_class(checkpoint.version, checkpoint.f0)
    model = cls(*checkpoint.config.to_list(), is_half=False)
    model.eval()
    state = {}
    for key, array in checkpoint.state_dict.items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        state[key] = torch.from_numpy(np.array(array, dtype=np.float32))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith("enc_q.")]
    if missing or unexpected:
        raise ValueError(f"upstream model does not fit the voice: missing {missing}, unexpected {unexpected}")
    return model


@contextlib.contextmanager
def injected_noise(noise: Mapping[str, np.ndarray]):
    """Within the block, torch.randn_like / torch.rand return the recorded draws, in upstream's call order."""
    import torch

    normals = [noise[name] for name in ("noise.z_p", "noise.nsf") if name in noise]
    uniforms = [noise[name] for name in ("noise.nsf_phase",) if name in noise]
    original_randn_like, original_rand = torch.randn_like, torch.rand

    def take(queue: list[np.ndarray], shape: tuple[int, ...], what: str):
        if not queue:
            raise RuntimeError(f"upstream drew an unexpected {what} of shape {shape}")
        array = queue.pop(0)
        if tuple(array.shape) != tuple(shape):
            raise RuntimeError(f"upstream drew a {what} of shape {tuple(shape)}, the recorded one is {array.shape}")
        return torch.from_numpy(np.array(array, dtype=np.float32))

    def randn_like(tensor, *args, **kwargs):
        return take(normals, tuple(tensor.shape), "normal draw").to(tensor.dtype)

    def rand(*size, **kwargs):
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
        return take(uniforms, tuple(int(s) for s in shape), "uniform draw")

    torch.randn_like, torch.rand = randn_like, rand
    try:
        yield
        if normals or uniforms:
            raise RuntimeError(f"upstream drew fewer random tensors than recorded ({len(normals) + len(uniforms)} left)")
    finally:
        torch.randn_like, torch.rand = original_randn_like, original_rand


def run_upstream_voice(model, f0: bool, inputs: Mapping[str, np.ndarray], noise: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Upstream `infer` with our noise; every golden tensor (docs/formats.md) in upstream's layout."""
    import torch

    captured: dict[str, Any] = {}
    handles = []

    def keep(name: str, pick=lambda out: out):
        def hook(module, args, output):
            # clone: upstream accumulates resblock outputs in place (`xs += ...`).
            captured[name] = pick(output).detach().clone()

        return hook

    dec = model.dec
    handles.append(model.enc_p.encoder.register_forward_hook(keep("enc_p.hidden")))
    handles.append(model.emb_g.register_forward_hook(keep("g", lambda out: out.unsqueeze(-1))))
    handles.append(dec.conv_pre.register_forward_hook(keep("dec.conv_pre.conv")))
    if hasattr(dec, "cond"):
        handles.append(dec.cond.register_forward_hook(keep("dec.conv_pre.cond")))
    if f0:
        handles.append(dec.m_source.register_forward_hook(keep("dec.source", lambda out: out[0])))
    for index, block in enumerate(dec.resblocks):
        handles.append(block.register_forward_hook(keep(f"dec.resblock.{index}")))
    handles.append(dec.conv_post.register_forward_hook(keep("dec.conv_post")))

    couplings = [model.flow.flows[2 * k] for k in range(len(model.flow.flows) // 2)]
    for k, layer in enumerate(couplings):
        original = layer.forward

        def recording_forward(*args, _original=original, _k=k, **kwargs):
            x, logdet = _original(*args, **kwargs)
            captured[f"flow.flow_{_k}"] = x.detach().clone()
            return x, logdet

        layer.forward = recording_forward

    t = {name: torch.from_numpy(np.asarray(value)) for name, value in inputs.items()}
    try:
        with torch.no_grad(), injected_noise(noise):
            if f0:
                audio, x_mask, (z, z_p, m_p, logs_p) = model.infer(
                    t["phone"], t["phone_lengths"].long(), t["pitch"].long(), t["pitchf"], t["sid"].long()
                )
            else:
                audio, x_mask, (z, z_p, m_p, logs_p) = model.infer(t["phone"], t["phone_lengths"].long(), t["sid"].long())
    finally:
        for handle in handles:
            handle.remove()
        for layer in couplings:
            del layer.forward

    out = {
        "g": captured["g"],
        "enc_p.hidden": captured["enc_p.hidden"],
        "m_p": m_p,
        "logs_p": logs_p,
        "x_mask": x_mask,
        "z_p": z_p,
        **{name: captured[name] for name in captured if name.startswith("flow.flow_")},
        "z": z * x_mask,
        "audio": audio,
    }
    if f0:
        out["dec.source"] = captured["dec.source"]
    conv_pre = captured["dec.conv_pre.conv"]
    out["dec.conv_pre"] = conv_pre + captured["dec.conv_pre.cond"] if "dec.conv_pre.cond" in captured else conv_pre
    kernels = len(dec.resblocks) // dec.num_upsamples
    for i in range(dec.num_upsamples):
        # Upstream's `xs = r0(x); xs += r1(x); ...; x = xs / num_kernels`, in the same order.
        xs = captured[f"dec.resblock.{i * kernels}"].clone()
        for j in range(1, kernels):
            xs += captured[f"dec.resblock.{i * kernels + j}"]
        out[f"dec.up_{i}"] = xs / kernels
    return {name: value.detach().cpu().numpy().astype(np.float32) for name, value in out.items()}


def demo_checkpoint(preset_name: str, seed: int) -> VoiceCheckpoint:
    """A demo voice as it would be read back from disk (fp16 weights), without touching the disk."""
    from pathlib import Path

    from .demo import build_upstream_voice, preset, voice_payload

    spec = preset(preset_name)
    payload = voice_payload(build_upstream_voice(preset_name, seed), spec, "rvc-webui", preset_name)
    return voice_from_payload(payload, Path(f"{preset_name}.pth"))


def compare_runs(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> list[StageFigure]:
    from .diff import pearson_r, snr_db

    figures = []
    for name, ref in reference.items():
        ref64 = np.asarray(ref, dtype=np.float64)
        cand64 = np.asarray(candidate[name], dtype=np.float64)
        if ref64.shape != cand64.shape:
            raise ValueError(f"{name}: reference shape {ref64.shape}, candidate shape {cand64.shape}")
        figures.append(
            StageFigure(name, snr_db(ref64, cand64), pearson_r(ref64, cand64), float(np.max(np.abs(ref64 - cand64))))
        )
    return figures


def parity_figures(preset: str, seconds: float, seed: int) -> list[StageFigure]:
    """MLX reference vs upstream PyTorch on a demo voice, chained run: one figure per golden tensor.

    Both sides load the same fp16 voice into float32; inputs and noise are drawn from `seed`.
    """
    from .convert import convert_voice
    from .golden import synthesize_voice_inputs
    from .inference import draw_noise, run_voice, voice_spec

    checkpoint = demo_checkpoint(preset, seed)
    inputs = synthesize_voice_inputs(checkpoint, seed, seconds)
    noise = draw_noise(checkpoint, inputs, seed)
    reference = run_upstream_voice(upstream_model(checkpoint), checkpoint.f0, inputs, noise)
    candidate = run_voice(convert_voice(checkpoint), checkpoint, inputs, noise)
    order = [spec.name for spec in voice_spec(checkpoint).stage_table().tensors if spec.name in reference]
    return compare_runs({name: reference[name] for name in order}, candidate)


# --- RMVPE ---------------------------------------------------------------------------------------------------


def upstream_rmvpe_e2e(architecture: Mapping[str, Any]):
    """Upstream's `E2E` at `architecture`'s sizes, built from upstream's own classes.

    Upstream hard-codes `E2E(4, 1, (2, 2))` in `RMVPE.__init__` and `BiGRU(3 * 128, 256, ...)` in
    `E2E.__init__`; the tiny demo preset shrinks both, so a GRU head of the preset's width is swapped in.
    """
    import torch.nn as nn
    from rvc.lib import rmvpe as upstream

    a = architecture
    model = upstream.E2E(a["n_blocks"], a["n_gru"], tuple(a["kernel_size"]), a["en_de_layers"], a["inter_layers"],
                         a["in_channels"], a["en_out_channels"])
    if a["gru_hidden_size"] != 256:
        hidden = a["gru_hidden_size"]
        model.fc = nn.Sequential(
            upstream.BiGRU(3 * a["n_mels"], hidden, a["n_gru"]),
            nn.Linear(2 * hidden, a["n_class"]),
            nn.Dropout(0.25),
            nn.Sigmoid(),
        )
    return model


def load_upstream_rmvpe(checkpoint, architecture: Mapping[str, Any] | None = None):
    """Upstream `RMVPE(checkpoint)` (its loader, mel extractor, padding and decoding) for `architecture`."""
    from unittest import mock

    from rvc.lib import rmvpe as upstream

    from .rmvpe_convert import ARCHITECTURE

    if architecture is None or dict(architecture) == ARCHITECTURE:
        return upstream.RMVPE(str(checkpoint), is_half=False, device="cpu")
    network = upstream_rmvpe_e2e(architecture)  # built before upstream's class name is replaced
    with mock.patch.object(upstream, "E2E", lambda *args: network):
        return upstream.RMVPE(str(checkpoint), is_half=False, device="cpu")


def run_upstream_rmvpe(upstream, audio: np.ndarray, pad_mode: str) -> dict[str, np.ndarray]:
    """Upstream's modules called one by one, in `E2E.forward`'s order, with `mel2hidden`'s padding mode."""
    import torch
    import torch.nn.functional as F

    from .rmvpe_inference import FRAME_MULTIPLE, THRESHOLD

    e2e = upstream.model
    with torch.no_grad():
        mel = upstream.mel_extractor(torch.from_numpy(np.asarray(audio, np.float32))[None], center=True)
        n_frames = mel.shape[-1]
        padded = F.pad(mel, (0, -n_frames % FRAME_MULTIPLE), mode=pad_mode)
        x, skips = e2e.unet.encoder(padded.transpose(-1, -2).unsqueeze(1))
        out = {"mel": mel, "padded_mel": padded, "unet.encoder": x}
        out.update({f"unet.encoder.skip_{i}": skip for i, skip in enumerate(skips)})
        out["unet.intermediate"] = x = e2e.unet.intermediate(x)
        out["unet.decoder"] = x = e2e.unet.decoder(x, skips)
        out["cnn"] = x = e2e.cnn(x)
        gru, linear, dropout, sigmoid = e2e.fc
        out["fc.gru"] = x = gru(x.transpose(1, 2).flatten(-2))
        out["salience"] = sigmoid(dropout(linear(x)))[:, :n_frames]
    tensors = {name: tensor.numpy() for name, tensor in out.items()}
    tensors["f0"] = upstream.decode(tensors["salience"][0], thred=THRESHOLD)[None]
    return tensors


def rmvpe_parity_figures(preset: str, samples: int, model_seed: int, audio_seed: int, pad_mode: str = "reflect"):
    """MLX RMVPE vs upstream on a demo rmvpe.pt: (figures per tensor except f0, f0 agreement)."""
    import tempfile
    from pathlib import Path

    from .rmvpe_convert import export_rmvpe
    from .rmvpe_demo import DEMO_ARCHITECTURES, demo_audio, write_demo_rmvpe
    from .rmvpe_inference import f0_agreement, load_rmvpe, rmvpe_golden_tensors

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = write_demo_rmvpe(Path(tmp) / "rmvpe.pt", seed=model_seed, preset=preset)
        upstream = load_upstream_rmvpe(checkpoint, DEMO_ARCHITECTURES[preset])
        weights_path, _ = export_rmvpe(checkpoint, Path(tmp) / "export")
        ours = load_rmvpe(weights_path)
    audio = demo_audio(samples, seed=audio_seed)
    reference = run_upstream_rmvpe(upstream, audio, pad_mode)
    candidate = rmvpe_golden_tensors(ours, audio, pad_mode=pad_mode)
    figures = compare_runs({k: v for k, v in reference.items() if k != "f0"}, candidate)
    return figures, f0_agreement(reference["f0"], candidate["f0"], reference["salience"])
