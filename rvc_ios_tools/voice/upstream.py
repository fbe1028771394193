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
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.errors import RvcIosError
from ..core.figures import StageFigure, compare_runs
from ..core.files import atomic_output, write_safetensors
from .checkpoint import VoiceCheckpoint, voice_from_payload


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


class RecordedNoise(dict):
    """Upstream's own draws of one run, by golden name, filled in by `recorded_noise` as upstream makes them."""


@contextlib.contextmanager
def recorded_noise():
    """Within the block, torch.randn_like / torch.rand draw from torch's own generator as usual, and every draw
    is kept under its golden name, in upstream's call order: randn_like(m_p) is `noise.z_p`, SineGen's
    randn_like `noise.nsf`, its rand `noise.nsf_phase`.

    The phase tensor is kept by reference, so it is read after upstream zeroes its first column in place
    (`rand_ini[:, 0] = 0`): what is recorded is the phase upstream used.
    """
    import torch

    recorded = RecordedNoise()
    drawn: dict[str, list] = {"normal": [], "uniform": []}
    original_randn_like, original_rand = torch.randn_like, torch.rand

    def randn_like(*args, **kwargs):
        value = original_randn_like(*args, **kwargs)
        drawn["normal"].append(value)
        return value

    def rand(*args, **kwargs):
        value = original_rand(*args, **kwargs)
        drawn["uniform"].append(value)
        return value

    torch.randn_like, torch.rand = randn_like, rand
    try:
        yield recorded
    finally:
        torch.randn_like, torch.rand = original_randn_like, original_rand
    names = {"normal": ["noise.z_p", "noise.nsf"], "uniform": ["noise.nsf_phase"]}
    for kind, values in drawn.items():
        if len(values) > len(names[kind]):
            raise RuntimeError(f"upstream made {len(values)} {kind} draws; expected at most {len(names[kind])}")
        for name, value in zip(names[kind], values):
            recorded[name] = value.detach().cpu().numpy().astype(np.float32)


def capture_upstream_run(
    checkpoint: VoiceCheckpoint, inputs: Mapping[str, np.ndarray], torch_seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Upstream `infer` on `inputs` with torch's own random draws (from `torch.manual_seed(torch_seed)`).

    Returns (the draws by golden name, every golden tensor of the run in upstream's layout).
    """
    import torch

    torch.manual_seed(torch_seed)
    with recorded_noise() as noise:
        tensors = run_upstream_voice(upstream_model(checkpoint), checkpoint.f0, inputs, None)
    return dict(noise), tensors


def run_upstream_voice(
    model, f0: bool, inputs: Mapping[str, np.ndarray], noise: Mapping[str, np.ndarray] | None
) -> dict[str, np.ndarray]:
    """Upstream `infer` with our noise (None: upstream draws its own); every golden tensor (docs/formats.md)
    in upstream's layout."""
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
        with torch.no_grad(), (injected_noise(noise) if noise is not None else contextlib.nullcontext()):
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
    from .demo import build_upstream_voice, preset, voice_payload

    spec = preset(preset_name)
    payload = voice_payload(build_upstream_voice(preset_name, seed), spec, "rvc-webui", preset_name)
    return voice_from_payload(payload, Path(f"{preset_name}.pth"))


def parity_figures(preset: str, seconds: float, seed: int) -> list[StageFigure]:
    """MLX reference vs upstream PyTorch on a demo voice, chained run: one figure per golden tensor.

    Both sides load the same fp16 voice into float32; inputs and noise are drawn from `seed`.
    """
    from .convert import convert_voice
    from .inputs import synthesize_voice_inputs
    from .reference import draw_noise, run_voice, voice_spec

    checkpoint = demo_checkpoint(preset, seed)
    inputs = synthesize_voice_inputs(checkpoint, seed, seconds)
    noise = draw_noise(checkpoint, inputs, seed)
    reference = run_upstream_voice(upstream_model(checkpoint), checkpoint.f0, inputs, noise)
    candidate = run_voice(convert_voice(checkpoint), checkpoint, inputs, noise)
    order = [spec.name for spec in voice_spec(checkpoint).stage_table().tensors if spec.name in reference]
    return compare_runs({name: reference[name] for name in order}, candidate)


# --- capturing an upstream run for `golden generate --inputs` -------------------------------------------------

CAPTURE_INPUTS_FILE = "inputs.safetensors"
CAPTURE_CANDIDATE_FILE = "upstream.safetensors"


class UpstreamUnavailableError(RvcIosError):
    """The test-only upstream code (`rvc==0.3.5`) is not installed."""


def require_upstream() -> None:
    try:
        import rvc.lib.infer_pack.models  # noqa: F401
    except ImportError as exc:
        raise UpstreamUnavailableError(
            f"Upstream RVC is not installed ({exc}); install it with `pip install --no-deps rvc==0.3.5` "
            "(the README's set-up does), then run this again."
        ) from None


def write_upstream_capture(
    voice_path: Path, out_dir: Path, *, inputs_file: Path | None, seed: int, seconds: float, torch_seed: int
) -> tuple[Path, Path]:
    """Run upstream on the voice with its own draws; write the inputs file `golden generate --inputs` takes
    (inputs and draws) and upstream's every stage as a candidate for `golden diff`. Both land or neither."""
    from .checkpoint import load_voice
    from .inputs import read_inputs_file, synthesize_voice_inputs
    from .stages import voice_stage_table

    require_upstream()
    checkpoint = load_voice(voice_path)
    if inputs_file is not None:
        inputs = read_inputs_file(inputs_file, checkpoint)
        inputs = {name: array for name, array in inputs.items() if not name.startswith("noise.")}
    else:
        inputs = synthesize_voice_inputs(checkpoint, seed, seconds)
    noise, tensors = capture_upstream_run(checkpoint, inputs, torch_seed)
    table = voice_stage_table(checkpoint)
    produced = {spec.name: spec.layout for spec in table.tensors if spec.stage is not None}
    candidate_metadata = {
        "producer": f"upstream PyTorch (rvc 0.3.5), {voice_path.name}, torch.manual_seed({torch_seed})",
        "mode": "chained",
        **{f"layout.{name}": layout for name, layout in produced.items()},
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs_path, candidate_path = out_dir / CAPTURE_INPUTS_FILE, out_dir / CAPTURE_CANDIDATE_FILE
    with atomic_output(candidate_path) as tmp_candidate, atomic_output(inputs_path) as tmp_inputs:
        write_safetensors(tmp_inputs, {**inputs, **noise}, {"producer": candidate_metadata["producer"]})
        write_safetensors(tmp_candidate, {name: tensors[name] for name in produced}, candidate_metadata)
    return inputs_path, candidate_path
