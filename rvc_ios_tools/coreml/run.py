"""Run a network's Core ML packages on a golden set's inputs and write a candidate for `rvc-ios golden diff`.

One path for both platforms: the manifest says which package and function computes which golden tensor; the
host stages (the NSF source, RMVPE's mel and decoding) run on the MLX reference, as an app's host code would;
only the call that evaluates one Core ML function differs: `interpreter_evaluator` (numpy over the MIL program,
Linux and anywhere) or `coreml_evaluator` (Core ML predictions, macOS only).
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..core.errors import RvcIosError
from ..core.files import atomic_output, write_safetensors

# (package path, function name, inputs by Core ML name) -> outputs by Core ML name
Evaluator = Callable[[Path, str, dict[str, np.ndarray]], dict[str, np.ndarray]]


class CoreMLRunError(RvcIosError):
    """A golden set or argument `coreml run` cannot use with these packages."""


def interpreter_evaluator() -> Evaluator:
    """Evaluate with `interpreter.run_program` (numpy), each package's program loaded once."""
    from .interpreter import load_program, run_program

    @functools.lru_cache(maxsize=None)
    def program(path: Path, function: str):
        return load_program(path, function)

    def evaluate(path: Path, function: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        loaded = program(Path(path), function)
        name = function if function in loaded.functions else "main"
        return run_program(loaded, inputs, name)

    return evaluate


def coreml_evaluator(compute_units: str = "CPU_ONLY") -> Evaluator:
    """Evaluate with Core ML's own predictions (macOS only: the Linux coremltools wheel cannot predict)."""
    if platform.system() != "Darwin":
        raise CoreMLRunError(
            "Core ML predictions need macOS (coremltools ships no Core ML runtime for Linux); on Linux run "
            "`rvc-ios coreml run --interpreter`, which evaluates the same programs with numpy."
        )
    from .toolchain import import_coremltools

    ct = import_coremltools()

    @functools.lru_cache(maxsize=None)
    def model(path: Path, function: str):
        return ct.models.MLModel(str(path), function_name=function,
                                 compute_units=getattr(ct.ComputeUnit, compute_units))

    def evaluate(path: Path, function: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = model(Path(path), function).predict(inputs)
        return {name: np.asarray(value, dtype=np.float32) for name, value in outputs.items()}

    return evaluate


def _call(evaluate: Evaluator, assets: Path, package: Mapping[str, Any], function: Mapping[str, Any],
          tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One function on golden-named tensors; its outputs under their golden names."""
    feed = {}
    for row in function["inputs"]:
        dtype = np.int32 if row["dtype"] == "int32" else np.float32
        feed[row["name"]] = np.ascontiguousarray(np.asarray(tensors[row["golden"]]).astype(dtype))
    outputs = evaluate(Path(assets) / package["file"], function["name"], feed)
    return {row["golden"]: np.asarray(outputs[row["name"]], dtype=np.float32) for row in function["outputs"]}


def _package(manifest: Mapping[str, Any], role: str) -> Mapping[str, Any] | None:
    return next((p for p in manifest["coreml"]["packages"] if p["role"] == role), None)


# The time axis of each golden tensor the encoder_flow function pads to its bucket.
_FRAME_AXES = {"phone": 1, "pitch": 1, "noise.z_p": 2}


def bucket_function(package: Mapping[str, Any], frames: int) -> Mapping[str, Any]:
    fitting = [f for f in package["functions"] if f["frames"] >= frames]
    if not fitting:
        largest = max(f["frames"] for f in package["functions"])
        raise CoreMLRunError(
            f"{frames} frames do not fit the largest frame bucket ({largest}); export again with "
            f"`--frames` including a bucket of at least {frames}, or split the audio."
        )
    return min(fitting, key=lambda f: f["frames"])


def run_voice_packages(
    assets: Path, manifest: Mapping[str, Any], inputs: Mapping[str, np.ndarray], evaluate: Evaluator,
    *, source: str = "host",
) -> dict[str, np.ndarray]:
    """Every golden tensor the voice's packages compute, chained, from a golden set's inputs and noise.

    The text encoder and flow run in the smallest bucket that holds the frames: inputs are zero-padded at the
    end (`phone_lengths` masks the padding, as upstream's encoder does) and outputs trimmed back. `source`:
    `host` computes `dec.source` with the MLX reference (the contract's host stage), `coreml` with the
    nsf_source package.
    """
    from ..core.manifest import load_exported

    voice, weights = load_exported(Path(assets), manifest["model_name"])
    frames = int(np.asarray(inputs["phone"]).shape[1])
    tensors: dict[str, np.ndarray] = dict(inputs)
    package = _package(manifest, "encoder_flow")
    function = bucket_function(package, frames)
    padded = dict(tensors)
    for name, axis in _FRAME_AXES.items():
        if name in padded:
            pad = [(0, 0)] * np.ndim(padded[name])
            pad[axis] = (0, function["frames"] - frames)
            padded[name] = np.pad(np.asarray(padded[name]), pad)
    out = {}
    for name, value in _call(evaluate, assets, package, function, padded).items():
        out[name] = value[..., :frames] if name != "g" else value
    tensors.update(out)
    computed = dict(out)
    if voice["f0"]:
        if source == "coreml":
            computed.update(_call(evaluate, assets, _package(manifest, "nsf_source"),
                                  _package(manifest, "nsf_source")["functions"][0], tensors))
            tensors.update(computed)
        elif source == "host":
            tensors.update(_host_nsf_source(voice, weights, tensors))
        else:
            raise CoreMLRunError(f"--source must be host or coreml, not {source!r}.")
    decoder = _package(manifest, "decoder")
    computed.update(_call(evaluate, assets, decoder, decoder["functions"][0], tensors))
    return computed


def _host_nsf_source(voice: Mapping[str, Any], weights: Mapping[str, np.ndarray],
                     tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """dec.source as the host computes it: the MLX reference's SineGen (float64 phase accumulation, as torch),
    from the voice's safetensors export that `export --coreml` writes beside the packages."""
    from ..voice.reference import build_model, run_stage

    return run_stage(build_model(voice, weights), voice, "nsf_source", tensors)


def run_rmvpe_packages(
    assets: Path, manifest: Mapping[str, Any], audio: np.ndarray, evaluate: Evaluator, *, pad_mode: str,
    threshold: float,
) -> dict[str, np.ndarray]:
    """RMVPE's golden tensors from the Core ML network, with the mel, padding and decoding on the host."""
    from ..rmvpe.reference import log_mel, pad_frames, salience_to_f0

    mel = log_mel(np.asarray(audio, np.float32))
    padded = np.array(pad_frames(mel, pad_mode))
    package = _package(manifest, "rmvpe")
    out = _call(evaluate, assets, package, package["functions"][0], {"padded_mel": padded})
    out["salience"] = out["salience"][:, : mel.shape[-1]]
    out["f0"] = salience_to_f0(out["salience"], threshold).astype(np.float32)
    return out


def write_candidate(path: Path, tensors: Mapping[str, np.ndarray], stage_table, producer: str) -> Path:
    """The tensors as a `golden diff` candidate: golden names, each tensor's layout declared."""
    layouts = {spec.name: spec.layout for spec in stage_table.tensors}
    metadata = {"producer": producer, "mode": "chained",
                **{f"layout.{name}": layouts[name] for name in tensors if name in layouts}}
    with atomic_output(Path(path)) as tmp:
        write_safetensors(tmp, {name: np.ascontiguousarray(v, dtype=np.float32) for name, v in tensors.items()},
                          metadata)
    return Path(path)


def run_golden_set(golden_dir: Path, assets: Path, model_name: str, output: Path, *, predict: bool,
                   source: str = "host") -> Path:
    """`rvc-ios coreml run`: the golden set's inputs through the packages; the candidate written to `output`.

    `predict`: Core ML predictions (macOS); otherwise the numpy interpreter. Everything else is the same code.
    """
    from ..core.golden import read_golden
    from .manifest import manifest_path, read_coreml_manifest

    golden = read_golden(Path(golden_dir))
    network = golden.kind
    if network not in ("voice", "rmvpe", "hubert"):
        raise CoreMLRunError(f"{golden_dir} is a {network} golden set; Core ML packages exist for voice, rmvpe "
                             "and hubert.")
    manifest = read_coreml_manifest(manifest_path(Path(assets), model_name, network))
    evaluate = coreml_evaluator() if predict else interpreter_evaluator()
    inputs = {spec.name: golden.tensors[spec.name] for spec in golden.stage_table.tensors if spec.stage is None}
    if network == "voice":
        tensors = run_voice_packages(Path(assets), manifest, inputs, evaluate, source=source)
    elif network == "hubert":
        package = _package(manifest, "content_encoder")
        tensors = _call(evaluate, assets, package, package["functions"][0], inputs)
        last = max((name for name in tensors if name.startswith("layer_")), key=lambda n: int(n.split("_")[1]))
        tensors["v2"] = tensors[last]  # a host stage: see manifest.HOST_STAGES
    else:
        extra = golden.index.get("extra", {})
        tensors = run_rmvpe_packages(Path(assets), manifest, inputs["audio"], evaluate,
                                     pad_mode=extra.get("pad_mode", "reflect"), threshold=extra.get("threshold", 0.03))
    how = "Core ML predictions" if predict else "the numpy MIL interpreter (checks the conversion, not Apple's runtime)"
    producer = f"rvc-ios coreml run, {model_name} ({network}), {how}, source {source}"
    return write_candidate(Path(output), tensors, golden.stage_table, producer)
