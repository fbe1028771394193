"""`rvc-ios export --rmvpe`: load rmvpe.pt, convert it by `RMVPE_RULES`, write weights + manifest atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..core import manifest as manifest_io
from ..core.errors import RvcIosError
from ..core.export import StepReporter, write_weights_and_manifest
from ..core.files import sha256_file
from .convert import ARCHITECTURE, check_architecture, convert_rmvpe_state_dict, load_rmvpe_checkpoint


def rmvpe_manifest(*, architecture: Mapping[str, Any] = ARCHITECTURE, **common: Any) -> dict[str, Any]:
    from .reference import pipeline_config

    return manifest_io.manifest_document(
        kind="rmvpe",
        flavor="rmvpe-state-dict",
        sample_rate=pipeline_config()["mel"]["sample_rate"],
        # PyTorch's GRU row blocks: reset, update, new; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
        gru_gate_order="rzn",
        rmvpe={"architecture": check_architecture(architecture), **pipeline_config()},
        **common,
    )


def export_rmvpe(
    pt_path: Path, out_dir: Path, dtype: str = "float32", reporter: StepReporter | None = None
) -> tuple[Path, Path]:
    """Write `<out_dir>/<stem>.safetensors` and `<stem>.manifest.json` (together, atomically)."""
    reporter = reporter or StepReporter(enabled=False)
    pt_path = Path(pt_path)
    if dtype not in ("float32", "float16"):
        raise RvcIosError(f"--dtype must be float32 or float16, not {dtype!r}.")
    with reporter.step(f"loading {pt_path.name}"):
        state_dict = load_rmvpe_checkpoint(pt_path)
    with reporter.step("converting to channels-last"):
        converted, dropped, architecture = convert_rmvpe_state_dict(state_dict, dtype, pt_path.name)
    with reporter.step(f"checksumming {pt_path.name}"):
        source_sha = sha256_file(pt_path)

    def manifest_for(rows: list[dict], weights_file: str) -> dict:
        return rmvpe_manifest(
            model_name=pt_path.stem,
            source_file=pt_path.name,
            source_sha256=source_sha,
            dtype=dtype,
            weights_file=weights_file,
            tensors=[{**row, "layout": converted[row["key"]].layout} for row in rows],
            dropped=[{"key": d.source_key, "why": d.why} for d in dropped],
            architecture=architecture,
        )

    arrays = {key: t.array for key, t in converted.items()}
    specs = {key: (array.dtype, array.shape) for key, array in arrays.items()}

    def fill(put) -> None:
        for key, array in arrays.items():
            put(key, array)

    with reporter.step(f"writing {Path(out_dir) / pt_path.stem}.safetensors"):
        return write_weights_and_manifest(Path(out_dir), pt_path.stem, specs, fill, manifest_for)
