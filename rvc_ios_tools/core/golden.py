"""Golden sets: one reference run's inputs, noise and every intermediate tensor, with an index to check them by.

On disk (docs/formats.md): `golden.safetensors` (tensors in upstream's shapes, each layout also declared as
`layout.<name>` metadata) and `index.json` (schemas/golden.schema.json: the stage table, each tensor's
role, shape, dtype, layout and sha256, and where the run came from). Both are written atomically, and
nothing is written unless the whole set checks out.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from .errors import RvcIosError
from .files import atomic_output, sha256_tensor, write_safetensors
from .manifest import schema_problems
from .stages import Stage, StageTable, StageTableError, TensorSpec

FORMAT = "rvc-ios-golden"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
TENSOR_FILE = "golden.safetensors"
SCHEMA = "golden.schema.json"

class GoldenFormatError(RvcIosError):
    """A golden set that is missing, damaged, or disagrees with its own index."""


@dataclasses.dataclass(frozen=True)
class GoldenSet:
    index: dict[str, Any]
    stage_table: StageTable
    tensors: dict[str, np.ndarray]
    directory: Path | None = None

    @property
    def kind(self) -> str:
        return self.index["kind"]

    @property
    def model_name(self) -> str:
        return self.index["model_name"]

    def layout(self, name: str) -> str:
        return self.stage_table.tensor(name).layout


def stage_table_from_index(index: dict[str, Any]) -> StageTable:
    """The stage table an index records (schema-valid index assumed); StageTableError if it is no pipeline."""
    return StageTable(
        kind=index["kind"],
        stages=tuple(
            Stage(stage["name"], tuple(stage["inputs"]), tuple(stage["outputs"]), float(stage["min_snr_db"]),
                  int(stage.get("max_integer_difference", 0)))
            for stage in index["stages"]
        ),
        tensors=tuple(
            TensorSpec(tensor["name"], tensor["role"], tensor["layout"], tensor["stage"], tensor["dtype"])
            for tensor in index["tensors"]
        ),
    )


def tensor_entries(kind: str, model_name: str, tensors: dict[str, np.ndarray], table: StageTable) -> list[dict]:
    """The index's per-tensor entries, in stage-table order; GoldenFormatError unless `tensors` fit the table."""
    what = f"the {kind!r} golden set for {model_name!r}"
    if table.kind != kind:
        raise GoldenFormatError(f"Cannot write {what} with the {table.kind!r} stage table.")
    missing = [name for name in table.tensor_names if name not in tensors]
    unexpected = sorted(set(tensors) - set(table.tensor_names))
    if missing or unexpected:
        raise GoldenFormatError(
            f"Cannot write {what}: "
            + (f"the reference run did not record {', '.join(missing)}. " if missing else "")
            + (f"{', '.join(unexpected)} are not in the stage table. " if unexpected else "")
            + "Every tensor the stage table names, and no other, must be recorded."
        )
    entries = []
    for spec in table.tensors:
        array = tensors[spec.name]
        problem = _tensor_problem(spec, array)
        if problem:
            raise GoldenFormatError(f"Cannot write {what}: {problem}.")
        entries.append({
            "name": spec.name,
            "stage": spec.stage,
            "role": spec.role,
            "shape": [int(size) for size in array.shape],
            "dtype": str(array.dtype),
            "layout": spec.layout,
            "sha256": sha256_tensor(array),
        })
    return entries


def _json_round_trip(document: dict[str, Any]) -> Any:
    """What a reader will see: catches values JSON cannot hold (numpy scalars, NaN) before anything is written."""
    try:
        return json.loads(json.dumps(document, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise GoldenFormatError(f"The golden index holds a value JSON cannot store: {exc}.") from None


def _tensor_problem(spec: TensorSpec, array: Any) -> str | None:
    if not isinstance(array, np.ndarray):
        return f"`{spec.name}` is a {type(array).__name__}, not a numpy array"
    if str(array.dtype) != spec.dtype:
        return f"`{spec.name}` is {array.dtype}; the golden format stores it as {spec.dtype}, so cast it first"
    if array.ndim != len(spec.layout):
        return f"`{spec.name}` has shape {tuple(array.shape)} but layout {spec.layout} needs {len(spec.layout)} axes"
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return f"`{spec.name}` holds NaN or Inf; the reference run itself is broken"
    return None


def write_golden(
    out_dir: Path,
    kind: str,
    tensors: dict[str, np.ndarray],
    stage_table: StageTable,
    *,
    model_name: str,
    manifest_sha256: str,
    seed: int,
    tool_version: str,
    extra: dict[str, Any] | None = None,
) -> GoldenSet:
    """Write `golden.safetensors` and `index.json` into `out_dir`, both or neither, after checking both."""
    index = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model_name": model_name,
        "manifest_sha256": manifest_sha256,
        "seed": seed,
        "tool_version": tool_version,
        "stages": [
            {"name": s.name, "inputs": list(s.inputs), "outputs": list(s.outputs), "min_snr_db": s.min_snr_db,
             **({"max_integer_difference": s.max_integer_difference} if s.max_integer_difference else {})}
            for s in stage_table.stages
        ],
        "tensors": tensor_entries(kind, model_name, tensors, stage_table),
        "extra": dict(extra or {}),
    }
    problems = schema_problems(_json_round_trip(index), SCHEMA)
    if problems:
        raise GoldenFormatError(
            f"The golden index for {model_name!r} would not match {SCHEMA}: " + "; ".join(problems[:5]) + "."
        )
    out_dir = Path(out_dir)
    arrays = {name: np.ascontiguousarray(tensors[name]) for name in stage_table.tensor_names}
    metadata = {"format": FORMAT, "kind": kind, "model_name": model_name}
    metadata.update({f"layout.{spec.name}": spec.layout for spec in stage_table.tensors})
    # The tensors land before the index, so an index on disk never describes tensors that are not there yet.
    with atomic_output(out_dir / INDEX_FILE) as index_tmp, atomic_output(out_dir / TENSOR_FILE) as tensors_tmp:
        write_safetensors(tensors_tmp, arrays, metadata)
        index_tmp.write_text(json.dumps(index, indent=2) + "\n")
    return GoldenSet(index=index, stage_table=stage_table, tensors=arrays, directory=out_dir)


def read_golden(directory: Path) -> GoldenSet:
    """Read and check a golden set: schema, stage graph, and every tensor's shape, dtype and sha256."""
    directory = Path(directory)
    regenerate = "Generate it again with `rvc-ios golden generate`."
    index_path, tensor_path = directory / INDEX_FILE, directory / TENSOR_FILE
    for path in (index_path, tensor_path):
        if not path.is_file():
            raise GoldenFormatError(
                f"{path} does not exist; a golden set is a folder with {INDEX_FILE} and {TENSOR_FILE}."
            )
    try:
        index = json.loads(index_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser's recursion limit, which no golden index is.
        raise GoldenFormatError(f"{index_path} is not readable JSON ({exc}). {regenerate}") from None
    problems = schema_problems(index, SCHEMA)
    if problems:
        raise GoldenFormatError(
            f"{index_path} does not match {SCHEMA}: " + "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "") + f". {regenerate}"
        )
    try:
        stage_table = stage_table_from_index(index)
    except StageTableError as exc:
        raise GoldenFormatError(f"{index_path}: {exc} {regenerate}") from None

    tensors: dict[str, np.ndarray] = {}
    try:
        with safetensors.safe_open(str(tensor_path), framework="numpy") as handle:
            stored = set(handle.keys())
            listed = [entry["name"] for entry in index["tensors"]]
            absent = [name for name in listed if name not in stored]
            unlisted = sorted(stored - set(listed))
            if absent or unlisted:
                raise GoldenFormatError(
                    f"{tensor_path} does not hold what {INDEX_FILE} lists: "
                    + (f"missing {', '.join(absent)}; " if absent else "")
                    + (f"not in the index: {', '.join(unlisted)}; " if unlisted else "")
                    + regenerate
                )
            for name in listed:
                tensors[name] = handle.get_tensor(name)
    except GoldenFormatError:
        raise
    except Exception as exc:  # safetensors reports damage as several exception types
        raise GoldenFormatError(f"{tensor_path} is damaged or truncated ({exc}). {regenerate}") from None

    for entry in index["tensors"]:
        array = tensors[entry["name"]]
        found = {"shape": list(array.shape), "dtype": str(array.dtype)}
        for field in ("shape", "dtype"):
            if found[field] != entry[field]:
                raise GoldenFormatError(
                    f"{tensor_path}: `{entry['name']}` has {field} {found[field]}, but {INDEX_FILE} says "
                    f"{entry[field]}. {regenerate}"
                )
        if len(entry["layout"]) != array.ndim:
            raise GoldenFormatError(
                f"{index_path}: `{entry['name']}` has layout {entry['layout']} for a {array.ndim}-axis tensor. "
                + regenerate
            )
        if sha256_tensor(array) != entry["sha256"]:
            raise GoldenFormatError(
                f"{tensor_path}: the bytes of `{entry['name']}` do not match the sha256 in {INDEX_FILE}; "
                f"the file was changed or damaged after it was written. {regenerate}"
            )
    return GoldenSet(index=index, stage_table=stage_table, tensors=tensors, directory=directory)
