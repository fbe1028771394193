"""Upstream's own pipeline (`rvc.modules.vc.pipeline.Pipeline`, rvc 0.3.5) as the ground truth, driven without
fairseq, its random draws recorded per segment.

- The content encoder is transformers' `HubertModel` behind the two things upstream calls on fairseq's model,
  `extract_features(source, padding_mask, output_layer)` and `final_proj` (reference §9.2).
- RMVPE is upstream's `rvc.lib.rmvpe.RMVPE`, handed to the pipeline as its cached `model_rmvpe`.
- `torchcrepe`, `parselmouth` and `pyworld` are imported by upstream's module but never used with RMVPE; when
  they are not installed, empty stand-ins take their place while it imports (torchcrepe would need torchaudio,
  whose builds do not match torch 2.13 and break transformers).
- Every `net_g.infer` call (one per segment) is recorded with its arguments, its output and its draws, which
  become `segment.K.noise.z_p`, `segment.K.noise.nsf` and `segment.K.noise.nsf_phase`.

torch, transformers, faiss and the upstream `rvc` package are test-only and imported lazily.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ..core.errors import RvcIosError

UNUSED_UPSTREAM_IMPORTS = ("parselmouth", "pyworld", "torchcrepe")
# Upstream's CPU configuration (`Config.device_config` with is_half False).
CPU_CONFIG = {"x_pad": 1, "x_query": 6, "x_center": 38, "x_max": 41, "is_half": False, "device": "cpu"}


class UpstreamPipelineUnavailableError(RvcIosError):
    """The test-only upstream pipeline cannot be imported here."""


def import_upstream_pipeline():
    """`rvc.modules.vc.pipeline`, with stand-ins for the f0 extractors it imports but RMVPE runs never use."""
    added = [name for name in UNUSED_UPSTREAM_IMPORTS if importlib.util.find_spec(name) is None]
    for name in added:
        sys.modules[name] = types.ModuleType(name)
    try:
        return importlib.import_module("rvc.modules.vc.pipeline")
    except ImportError as exc:
        raise UpstreamPipelineUnavailableError(
            f"Upstream's pipeline cannot be imported ({exc}); install the test extra and "
            "`pip install --no-deps rvc==0.3.5` (the README's set-up does both)."
        ) from None
    finally:
        for name in added:
            sys.modules.pop(name, None)


class TransformersContentEncoder:
    """What upstream's pipeline calls on fairseq's model, around transformers' `HubertModel`. Upstream asks for
    layer 9 (v1) or 12 (v2); an encoder of another depth maps those onto its own (`v1_layer`, the last)."""

    def __init__(self, model: Any, architecture: Mapping[str, Any]):
        self.model, self.final_proj = model, getattr(model, "final_proj", None)
        self.layers = {9: architecture["v1_layer"], 12: architecture["num_layers"]}

    def extract_features(self, source, padding_mask=None, output_layer=12):
        hidden = self.model(source, output_hidden_states=True).hidden_states
        return (hidden[self.layers[output_layer]],)


@contextlib.contextmanager
def recording(net_g) -> Iterator[list[dict]]:
    """Within the block, each `net_g.infer` call is recorded: `args` (clones), `audio` (its output) and
    `draws`, every torch.randn_like / torch.rand value it made, in order, as (kind, tensor)."""
    import torch

    calls: list[dict] = []
    original_infer = net_g.infer
    original_randn_like, original_rand = torch.randn_like, torch.rand

    def drawing(kind, function):
        def wrapped(*args, **kwargs):
            value = function(*args, **kwargs)
            if calls:
                calls[-1]["draws"].append((kind, value))
            return value
        return wrapped

    def infer(*args):
        calls.append({"args": [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args], "draws": []})
        out = original_infer(*args)
        calls[-1]["audio"] = out[0][0, 0].detach().numpy().copy()
        return out

    net_g.infer = infer
    torch.randn_like, torch.rand = drawing("normal", original_randn_like), drawing("uniform", original_rand)
    try:
        yield calls
    finally:
        net_g.infer = original_infer
        torch.randn_like, torch.rand = original_randn_like, original_rand


class DemoParitySetup:
    """The demo assets (`pipeline.demo`) of one voice preset, exported for ours (`networks`) and loaded as upstream
    loads them (`net_g`, `encoder`, `rmvpe`, `index_path`): both sides of a parity run on the same files."""

    def __init__(self, root: Path, preset: str, size: str, with_index: bool):
        import safetensors.numpy

        from ..hubert.upstream import load_upstream_hubert
        from ..rmvpe.convert import DEMO_ARCHITECTURES
        from ..rmvpe.upstream import load_upstream_rmvpe
        from ..voice.checkpoint import load_voice
        from ..voice.upstream import upstream_model
        from .convert import load_networks
        from .demo import write_demo_assets

        self.assets = write_demo_assets(root, preset, size, with_index=with_index)
        self.checkpoint = load_voice(self.assets.voice)
        self.version, self.f0, self.rate = self.checkpoint.version, self.checkpoint.f0, self.checkpoint.sample_rate
        state = safetensors.numpy.load_file(str(self.assets.hubert / "model.safetensors"))
        architecture = self.assets.hubert_architecture
        self.encoder = TransformersContentEncoder(load_upstream_hubert(state, architecture), architecture)
        self.rmvpe = load_upstream_rmvpe(self.assets.rmvpe, DEMO_ARCHITECTURES[size])
        self.index_path = self.assets.index
        self.networks = load_networks(self.assets.exports, "voice", "hubert", "rmvpe", "index" if with_index else None)
        self.net_g = upstream_model(self.checkpoint)


def recorded_noise(calls: list[dict]) -> dict[str, np.ndarray]:
    """The draws by golden name: per segment randn_like(m_p), then SineGen's rand (kept by reference, so read
    after upstream zeroed its first column in place) and its randn_like."""
    noise = {}
    for k, call in enumerate(calls):
        normals = [value for kind, value in call["draws"] if kind == "normal"]
        uniforms = [value for kind, value in call["draws"] if kind == "uniform"]
        for name, value in zip(("noise.z_p", "noise.nsf"), normals):
            noise[f"segment.{k}.{name}"] = value.numpy().astype(np.float32)
        for value in uniforms:
            noise[f"segment.{k}.noise.nsf_phase"] = value.numpy().astype(np.float32)
    return noise


def vc_single_normalisation(audio: np.ndarray) -> np.ndarray:
    """What upstream's `VC.vc_single` (rvc/modules/vc/modules.py, which imports fairseq, so it is not called here)
    does before `Pipeline.pipeline`: `audio_max = np.abs(audio).max() / 0.95; if audio_max > 1: audio /= audio_max`."""
    audio = np.array(audio, dtype=np.float32)
    audio_max = np.abs(audio).max() / 0.95
    if audio_max > 1:
        audio /= audio_max
    return audio


def run_upstream_pipeline(
    net_g, encoder: TransformersContentEncoder, rmvpe, *, target_rate: int, version: str, f0: bool,
    audio: np.ndarray, index_path: Path | None, options: Any, torch_seed: int = 0,
) -> dict[str, Any]:
    """Upstream `VC.vc_single`'s normalisation, then `Pipeline.pipeline`, on 16 kHz float audio with `options`
    (a `convert.ConvertOptions`).

    Returns `output` (int16), `float_output` (change_rms's result, before int16; None when it did not run),
    `calls` (see `recording`), `noise` (the draws by golden name) and `times` (upstream's own split: `f0`,
    `npy` = content features and retrieval, `infer` = the synthesizer).
    """
    import torch

    module = import_upstream_pipeline()
    pipeline = module.Pipeline(target_rate, types.SimpleNamespace(**CPU_CONFIG))
    if rmvpe is not None:
        pipeline.model_rmvpe = rmvpe
    mixed: list[np.ndarray] = []
    original_change_rms = module.change_rms

    def change_rms(*args):
        mixed.append(original_change_rms(*args).copy())
        return mixed[-1]

    module.change_rms = change_rms
    times = {"npy": 0.0, "f0": 0.0, "infer": 0.0}
    torch.manual_seed(torch_seed)
    try:
        with recording(net_g) as calls, torch.no_grad():
            output = pipeline.pipeline(
                encoder, net_g, options.sid, vc_single_normalisation(audio), "input.wav",
                times, options.pitch, "rmvpe", str(index_path) if index_path else "",
                options.index_rate, int(f0), 3, target_rate, options.resample_sr, options.rms_mix_rate, version,
                options.protect, None,
            )
    finally:
        module.change_rms = original_change_rms
    return {"output": output, "float_output": mixed[0] if mixed else None, "calls": calls,
            "noise": recorded_noise(calls), "times": times}


def synthesizer_call_inputs(call: Mapping[str, Any], f0: bool) -> dict[str, np.ndarray]:
    """One recorded `net_g.infer(phone, phone_lengths, [pitch, pitchf,] sid)` call's arguments by golden name, in
    upstream's dtypes (phone and pitchf float32, the rest int64)."""
    names = ("phone", "phone_lengths", "pitch", "pitchf", "sid") if f0 else ("phone", "phone_lengths", "sid")
    return dict(zip(names, (arg.numpy() for arg in call["args"])))


def replay_synthesizer_calls(networks: Any, run: Mapping[str, Any], filtered: np.ndarray, options: Any) -> dict[str, Any]:
    """Teacher-forced: our synthesizer (`networks`, a `convert.Networks`) on each of upstream's recorded calls, i.e.
    its exact features after retrieval, x2 and protect, its pitch, pitchf and draws; then the pipeline's tail as
    `convert` runs it on `filtered` (the high-passed input). Returns `segment.K.audio` and the tail's stages.

    This holds the synthesizer apart from everything before it: on long voiced segments the NSF source integrates
    pitchf, so RMVPE's float32 rounding (any two implementations' f0 differ by an ulp or two) alone moves the
    audio well below what the synthesizer itself reaches (scripts/pipeline_precision_probe.py)."""
    from ..voice.reference import synthesize
    from .convert import finish_conversion

    stages: dict[str, Any] = {}
    for k, call in enumerate(run["calls"]):
        prefix = f"segment.{k}."
        draws = {name[len(prefix):]: value for name, value in run["noise"].items() if name.startswith(prefix)}
        stages[prefix + "audio"] = synthesize(networks.synthesizer, synthesizer_call_inputs(call, networks.f0), draws)[0, 0]
    segment_audio = [stages[f"segment.{k}.audio"] for k in range(len(run["calls"]))]
    return {**stages, **finish_conversion(segment_audio, filtered, networks.target_rate, options)}


def candidate_tensors(run: Mapping[str, Any], f0: bool) -> dict[str, np.ndarray]:
    """Upstream's run under the pipeline golden set's names, as a candidate for `rvc-ios golden diff`."""
    tensors: dict[str, np.ndarray] = {"output": np.asarray(run["output"], dtype=np.int16)}
    if run["float_output"] is not None:
        tensors["rms_mixed"] = np.asarray(run["float_output"], dtype=np.float32)
    for k, call in enumerate(run["calls"]):
        inputs = synthesizer_call_inputs(call, f0)
        prefix = f"segment.{k}."
        tensors[prefix + "phone"] = inputs["phone"].astype(np.float32)
        tensors[prefix + "phone_lengths"] = inputs["phone_lengths"].astype(np.int32)
        if f0:
            tensors[prefix + "pitch"] = inputs["pitch"].astype(np.int32)
            tensors[prefix + "pitchf"] = inputs["pitchf"].astype(np.float32)
        tensors[prefix + "audio"] = call["audio"].astype(np.float32)
    return tensors


CAPTURE_NOISE_FILE = "noise.safetensors"
CAPTURE_CANDIDATE_FILE = "upstream.safetensors"


def write_pipeline_capture(voice: Path, hubert: Path, rmvpe: Path | None, index: Path | None, audio: np.ndarray,
                           options: Any, out_dir: Path, torch_seed: int = 0) -> tuple[Path, Path]:
    """Run upstream's pipeline on the user's own files and audio; write the per-segment draws (for
    `rvc-ios convert --noise`) and upstream's stages as a candidate for `rvc-ios golden diff`. Both or neither."""
    from ..core.files import atomic_output, write_safetensors
    from ..hubert.convert import load_hubert
    from ..hubert.upstream import load_upstream_hubert
    from ..rmvpe.convert import load_rmvpe_checkpoint, select_architecture
    from ..rmvpe.upstream import load_upstream_rmvpe
    from ..voice.checkpoint import load_voice
    from ..voice.upstream import require_upstream, upstream_model
    from .stages import pipeline_stage_table

    require_upstream()
    checkpoint = load_voice(voice)
    encoder_checkpoint = load_hubert(hubert)
    if encoder_checkpoint.flavor != "huggingface":
        raise RvcIosError(f"{hubert} is a fairseq checkpoint; upstream runs here without fairseq, through transformers, "
                          "so pass the content encoder as a Hugging Face folder (config.json + model.safetensors).")
    encoder = TransformersContentEncoder(load_upstream_hubert(encoder_checkpoint.state_dict, encoder_checkpoint.architecture),
                                         encoder_checkpoint.architecture)
    pitch_model = None
    if checkpoint.f0:
        if rmvpe is None or not Path(rmvpe).is_file():
            raise RvcIosError(f"{voice.name} uses pitch: pass --rmvpe PATH to rmvpe.pt (looked for {rmvpe}).")
        pitch_model = load_upstream_rmvpe(rmvpe, select_architecture(load_rmvpe_checkpoint(rmvpe)))
    run = run_upstream_pipeline(upstream_model(checkpoint), encoder, pitch_model, target_rate=checkpoint.sample_rate,
                                version=checkpoint.version, f0=checkpoint.f0, audio=audio, index_path=index,
                                options=options, torch_seed=torch_seed)
    tensors = candidate_tensors(run, checkpoint.f0)
    table = pipeline_stage_table({"segments": len(run["calls"]), "f0": checkpoint.f0,
                                  "index": index is not None and options.index_rate != 0})
    layouts = {spec.name: spec.layout for spec in table.tensors if spec.name in tensors}
    metadata = {"producer": f"upstream Pipeline.pipeline (rvc 0.3.5), torch.manual_seed({torch_seed})", "mode": "chained",
                **{f"layout.{name}": layout for name, layout in layouts.items()}}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    noise_path, candidate_path = out_dir / CAPTURE_NOISE_FILE, out_dir / CAPTURE_CANDIDATE_FILE
    with atomic_output(candidate_path) as tmp_candidate, atomic_output(noise_path) as tmp_noise:
        write_safetensors(tmp_noise, run["noise"], {"producer": metadata["producer"]})
        write_safetensors(tmp_candidate, tensors, metadata)
    return noise_path, candidate_path
