"""`rvc-ios export --hubert PATH`: load a content encoder (fairseq file or Hugging Face folder), convert it by
`HUBERT_RULES`, write weights + manifest atomically (`kind: "hubert"`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..core import manifest as manifest_io
from ..core.errors import RvcIosError
from ..core.export import StepReporter, write_weights_and_manifest
from ..core.files import sha256_file
from .convert import SAMPLE_RATE, HubertCheckpoint, check_architecture, convert_hubert_state_dict, load_hubert

DEFAULT_MODEL_NAME = "hubert_base"


def hubert_manifest(*, architecture: Mapping[str, Any], **common: Any) -> dict[str, Any]:
    from .reference import pipeline_config

    architecture = check_architecture(architecture)
    return manifest_io.manifest_document(
        kind="hubert",
        sample_rate=SAMPLE_RATE,
        hubert={"architecture": architecture, **pipeline_config(architecture)},
        **common,
    )


def default_model_name(source: Path) -> str:
    """The export's name: a fairseq file's stem, a Hugging Face folder's name."""
    source = Path(source)
    if source.is_dir():
        return source.resolve().name or DEFAULT_MODEL_NAME
    if source.name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        return source.resolve().parent.name or DEFAULT_MODEL_NAME
    return source.stem


def export_hubert(
    source: Path, out_dir: Path, dtype: str = "float32", reporter: StepReporter | None = None,
    model_name: str | None = None,
) -> tuple[Path, Path]:
    """Write `<out_dir>/<name>.safetensors` and `<name>.manifest.json` (together, atomically)."""
    reporter = reporter or StepReporter(enabled=False)
    source = Path(source)
    if dtype not in ("float32", "float16"):
        raise RvcIosError(f"--dtype must be float32 or float16, not {dtype!r}.")
    name = model_name or default_model_name(source)
    with reporter.step(f"loading {source.name}"):
        checkpoint: HubertCheckpoint = load_hubert(source)
    with reporter.step("converting to channels-last (weight norm folded over each kernel tap)"):
        converted, dropped = convert_hubert_state_dict(checkpoint.state_dict, checkpoint.architecture, dtype,
                                                       str(checkpoint.weights_file))
    with reporter.step(f"checksumming {checkpoint.weights_file.name}"):
        source_sha = sha256_file(checkpoint.weights_file)
    dropped_rows = [{"key": d.source_key, "why": d.why} for d in dropped]
    dropped_rows += [{"key": entry, "why": "fairseq training state (not weights)"} for entry in checkpoint.dropped_entries]

    def manifest_for(rows: list[dict], weights_file: str) -> dict:
        return hubert_manifest(
            model_name=name,
            source_file=checkpoint.weights_file.name,
            source_sha256=source_sha,
            flavor=checkpoint.flavor,
            dtype=dtype,
            weights_file=weights_file,
            tensors=[{**row, "layout": converted[row["key"]].layout} for row in rows],
            dropped=dropped_rows,
            architecture=checkpoint.architecture,
        )

    arrays = {key: t.array for key, t in converted.items()}
    specs = {key: (array.dtype, array.shape) for key, array in arrays.items()}

    def fill(put) -> None:
        for key, array in arrays.items():
            put(key, array)

    with reporter.step(f"writing {Path(out_dir) / name}.safetensors"):
        return write_weights_and_manifest(Path(out_dir), name, specs, fill, manifest_for)
