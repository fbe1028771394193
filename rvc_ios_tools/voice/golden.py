"""`rvc-ios golden generate` for a voice: run the MLX reference on exported weights and write a golden set."""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..core.files import sha256_file
from ..core.golden import GoldenSet, write_golden
from ..core.manifest import load_exported
from .inputs import NOISE_NAMES, read_inputs_file, synthesize_voice_inputs


def generate_voice_golden(
    assets_dir: Path,
    model_name: str,
    out_dir: Path,
    *,
    inputs_file: Path | None = None,
    seed: int = 0,
    seconds: float = 2.0,
) -> GoldenSet:
    """Inputs from `inputs_file` or synthesised from `seed`; each random draw from `inputs_file` when it holds
    one, else from `seed` (the index's `extra.noise_sources` says which)."""
    from .reference import build_model, draw_noise, run_voice, voice_spec  # imports mlx

    manifest, weights = load_exported(assets_dir, model_name, kind="voice")
    spec = voice_spec(manifest)
    if inputs_file is not None:
        inputs = read_inputs_file(inputs_file, manifest)
    else:
        inputs = synthesize_voice_inputs(manifest, seed, seconds)
    given = {name: inputs.pop(name) for name in NOISE_NAMES if name in inputs}
    noise = {**draw_noise(spec, inputs, seed), **given}
    noise_sources = {name: ("inputs file" if name in given else f"seed {seed}") for name in sorted(noise)}
    model = build_model(spec, weights)
    outputs = run_voice(model, spec, inputs, noise)
    tensors = {**inputs, **noise, **outputs}
    return write_golden(
        out_dir,
        "voice",
        tensors,
        spec.stage_table(),
        model_name=model_name,
        manifest_sha256=sha256_file(Path(assets_dir) / f"{model_name}.manifest.json"),
        seed=seed,
        tool_version=__version__,
        extra={
            "inputs": str(inputs_file) if inputs_file else f"synthesized from seed {seed}, {seconds} s",
            "noise_sources": noise_sources,
            "sample_rate": manifest["sample_rate"],
            "rvc_version": manifest["rvc_version"],
            "f0": manifest["f0"],
        },
    )
