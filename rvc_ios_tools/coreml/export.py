"""`rvc-ios export --coreml`: a network's .mlpackages plus the kind-`coreml` manifest, beside the safetensors export.

The safetensors export is written too: the host stages (the NSF source) read their few weights from it, and the
weights read back from the packages are checked against it (`weights.compare_package_weights`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..core.export import StepReporter
from ..core.files import sha256_file
from . import convert
from .manifest import coreml_manifest, manifest_path, write_coreml_manifest


def export_coreml_voice(
    source: Path, out_dir: Path, model_name: str, *, frames: Sequence[int] = convert.DEFAULT_FRAME_BUCKETS,
    precision: str = "float32", compression: str = "none", dtype: str = "float32",
    reporter: StepReporter | None = None, keep_noop_elimination: bool = False,
) -> Path:
    """The voice's packages and `<model_name>.voice.coreml.json`; returns the manifest's path."""
    from ..voice.checkpoint import load_voice
    from ..voice.export import export_voice
    from ..voice.stages import voice_stage_table

    reporter = reporter or StepReporter(enabled=False)
    export_voice(Path(source), Path(out_dir), model_name, dtype, reporter)
    checkpoint = load_voice(Path(source))
    with reporter.step(f"converting {model_name} to Core ML ({precision}, compression {compression})"):
        packages = convert.convert_voice(
            checkpoint, Path(out_dir), model_name, frames=tuple(frames), precision=precision,
            compression=compression, keep_noop_elimination=keep_noop_elimination,
        )
    document = coreml_manifest(
        network="voice", model_name=model_name, source_file=Path(source).name, source_sha256=sha256_file(source),
        flavor=checkpoint.flavor, packages=packages, stage_table=voice_stage_table(checkpoint),
        extra={"sample_rate": checkpoint.config.sample_rate, "upsample_factor": checkpoint.config.upsample_factor,
               "f0": checkpoint.f0},
    )
    return write_coreml_manifest(manifest_path(out_dir, model_name, "voice"), document)


def export_coreml_rmvpe(
    pt_path: Path, out_dir: Path, *, precision: str = "float32", compression: str = "none",
    dtype: str = "float32", reporter: StepReporter | None = None,
) -> Path:
    """RMVPE's package and `<stem>.rmvpe.coreml.json` (named after the file, as `export --rmvpe` names it)."""
    from ..rmvpe.export import export_rmvpe
    from ..rmvpe.stages import rmvpe_stage_table

    reporter = reporter or StepReporter(enabled=False)
    pt_path = Path(pt_path)
    export_rmvpe(pt_path, Path(out_dir), dtype, reporter)
    with reporter.step(f"converting {pt_path.name} to Core ML ({precision}, compression {compression})"):
        package, architecture = convert.convert_rmvpe(pt_path, Path(out_dir), pt_path.stem, precision=precision,
                                                      compression=compression)
    document = coreml_manifest(
        network="rmvpe", model_name=pt_path.stem, source_file=pt_path.name, source_sha256=sha256_file(pt_path),
        flavor="rmvpe-state-dict", packages=[package], stage_table=rmvpe_stage_table(architecture),
    )
    return write_coreml_manifest(manifest_path(out_dir, pt_path.stem, "rmvpe"), document)



def export_coreml_hubert(
    source: Path, out_dir: Path, *, precision: str = "float32", compression: str = "none", dtype: str = "float32",
    reporter: StepReporter | None = None,
) -> Path:
    """The content encoder's package and `<name>.hubert.coreml.json` (named as `export --hubert` names it)."""
    from ..hubert.convert import load_hubert
    from ..hubert.export import default_model_name, export_hubert
    from ..hubert.stages import hubert_stage_table

    reporter = reporter or StepReporter(enabled=False)
    source = Path(source)
    export_hubert(source, Path(out_dir), dtype, reporter)
    checkpoint = load_hubert(source)
    model_name = default_model_name(source)
    with reporter.step(f"converting {source.name} to Core ML ({precision}, compression {compression})"):
        package = convert.convert_content_encoder(checkpoint, Path(out_dir), model_name, precision=precision,
                                                  compression=compression)
    document = coreml_manifest(
        network="hubert", model_name=model_name, source_file=source.name,
        source_sha256=sha256_file(checkpoint.weights_file), flavor=checkpoint.flavor, packages=[package],
        stage_table=hubert_stage_table(checkpoint.architecture),
    )
    return write_coreml_manifest(manifest_path(out_dir, model_name, "hubert"), document)


def export_coreml(source: Path | None, model_name: str | None, rmvpe: Path | None, out_dir: Path, *, dtype: str,
                  precision: str, frames: str, compression: str, reporter: StepReporter,
                  hubert: Path | None = None) -> list[str]:
    """`export --coreml` for the CLI: the voice, RMVPE and/or the content encoder; one line per manifest."""
    from ..core.errors import RvcIosError

    if source is None and rmvpe is None and hubert is None:
        raise RvcIosError("Nothing to export to Core ML: give --model-name NAME (a voice), --rmvpe PATH and/or "
                          "--hubert PATH.")
    try:
        buckets = tuple(int(item) for item in str(frames).split(",") if item.strip())
    except ValueError:
        raise convert.CoreMLExportError(f"--frames must be comma-separated frame counts, not {frames!r}.") from None
    if precision not in convert.PRECISIONS:
        raise convert.CoreMLExportError(
            f"--compute-precision must be one of {', '.join(convert.PRECISIONS)}, not {precision!r}.")
    if compression not in convert.COMPRESSIONS:
        raise convert.CoreMLExportError(f"--compress must be one of {', '.join(convert.COMPRESSIONS)}, not {compression!r}.")
    lines = []
    if source is not None:
        path = export_coreml_voice(source, out_dir, model_name, frames=buckets, precision=precision,
                                   compression=compression, dtype=dtype, reporter=reporter)
        lines.append(f"wrote the voice's Core ML packages and {path}")
    if rmvpe is not None:
        path = export_coreml_rmvpe(rmvpe, out_dir, precision=precision, compression=compression, dtype=dtype,
                                   reporter=reporter)
        lines.append(f"wrote RMVPE's Core ML package and {path}")
    if hubert is not None:
        path = export_coreml_hubert(hubert, out_dir, precision=precision, compression=compression, dtype=dtype,
                                    reporter=reporter)
        lines.append(f"wrote the content encoder's Core ML package and {path}")
    return lines
