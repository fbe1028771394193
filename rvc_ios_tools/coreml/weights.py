"""Every weight read back out of the .mlpackages and compared with the safetensors export.

`weight.bin` is read here byte by byte (layout: `../shared/reference/coreml.md` §1.3): a 64-byte header, then per
blob a 64-byte record (`u32 0xDEADBEEF, u32 dtype, u64 size, u64 data offset`) and its data. A const in the
model spec points at its record (`blobFileValue.offset`); small consts are inline in the spec. The consts are
named by the traced module path (`dec_ups_0_weight` for upstream's `dec.ups.0.weight`), in PyTorch's layout;
the rule table (`VOICE_RULES`, `RMVPE_RULES`) says which exported key and channels-last layout each becomes,
so each is compared with the export after the same transform.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..core.errors import RvcIosError

BLOB_SENTINEL = 0xDEADBEEF
# Weight dtypes by record code (others, such as 14, hold integer consts: gather indices, shapes).
BLOB_DTYPES = {1: np.float16, 2: np.float32, 3: np.uint8, 4: np.int8}
FLOAT16_CODE = 10  # MIL.proto DataType.FLOAT16


class WeightFileError(RvcIosError):
    """A package whose weight.bin does not have the layout Core ML writes."""


def read_blob(raw: bytes, record_offset: int) -> np.ndarray | None:
    """The data of the blob whose 64-byte record starts at `record_offset` (the spec's `blobFileValue.offset`);
    None for an integer blob."""
    sentinel, dtype, size, data_offset = struct.unpack_from("<IIQQ", raw, record_offset)
    if sentinel != BLOB_SENTINEL:
        raise WeightFileError(f"no blob record at offset {record_offset} (found {sentinel:#x}, not 0xDEADBEEF)")
    if dtype not in BLOB_DTYPES:
        return None
    return np.frombuffer(raw, BLOB_DTYPES[dtype], count=size // np.dtype(BLOB_DTYPES[dtype]).itemsize,
                         offset=data_offset)


def package_consts(package_path: Path) -> dict[str, np.ndarray]:
    """Every float const of every function of a package, by name, in its stored dtype and shape.

    Blob consts are read from weight.bin with `read_blob`; inline ones from the spec. A const shared by the
    functions of a multifunction package is one blob, read once.
    """
    from .toolchain import import_coremltools

    ct = import_coremltools()
    package_path = Path(package_path)
    spec = ct.models.MLModel(str(package_path), skip_model_load=True).get_spec()
    weight_file = package_path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    raw = weight_file.read_bytes() if weight_file.is_file() else b""
    if raw:
        count, version = struct.unpack_from("<II", raw, 0)
        if version != 2:
            raise WeightFileError(f"{weight_file}: storage version {version}, not 2")
    consts: dict[str, np.ndarray] = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in _operations(block):
                if op.type != "const":
                    continue
                value = op.attributes["val"]
                dims = [int(d.constant.size) for d in value.type.tensorType.dimensions]
                kind = value.WhichOneof("value")
                if kind == "blobFileValue":
                    array = read_blob(raw, value.blobFileValue.offset)
                elif kind == "immediateValue" and value.immediateValue.tensor.WhichOneof("value") == "floats":
                    array = np.asarray(value.immediateValue.tensor.floats.values, np.float32)
                elif (kind == "immediateValue" and value.immediateValue.tensor.WhichOneof("value") == "bytes"
                      and value.type.tensorType.dataType == FLOAT16_CODE):
                    # Small fp16 consts are stored inline as raw half-precision bytes.
                    array = np.frombuffer(value.immediateValue.tensor.bytes.values, np.float16)
                else:
                    continue  # ints, bools, strings: shapes and axes, not weights
                if array is None or array.dtype.kind != "f" or array.size != int(np.prod(dims)):
                    continue
                consts[op.outputs[0].name] = array.reshape(dims)
    return consts


def _operations(block) -> Iterable[Any]:
    """A block's operations, those inside its loops' and conditions' blocks too (RMVPE's GRU weights are there)."""
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _operations(inner)


_STORED_SUFFIX = re.compile(r"(_to_fp16|_to_fp32)$")


@dataclasses.dataclass(frozen=True)
class WeightComparison:
    export_key: str
    const_name: str
    max_abs_error: float
    exact: bool


@dataclasses.dataclass(frozen=True)
class WeightReport:
    compared: tuple[WeightComparison, ...]
    unmatched_exports: tuple[str, ...]   # exported tensors no package holds under their module path


def compare_package_weights(package_paths: Iterable[Path], plan_items: Iterable[Any],
                            exported: Mapping[str, np.ndarray],
                            traced_key: Callable[[str], str] = lambda source_key: source_key) -> WeightReport:
    """Each export tensor (`plan_items`: the rule table's PlannedTensor rows) against the package const named
    for its module path, after the rule's layout transform; exact in float32, within one float16 rounding else.
    `traced_key`: a source key as the traced module path names it, when the traced model names it otherwise
    (the content encoder: a fairseq key as transformers' module path under the traced wrapper)."""
    items = {item.source_key: item for item in plan_items}
    consts: dict[str, np.ndarray] = {}
    for path in package_paths:
        for name, array in package_consts(path).items():
            consts.setdefault(_STORED_SUFFIX.sub("", name), array)
    compared, unmatched = [], []
    for item in items.values():
        name = _const_name(traced_key(item.source_key))
        if name not in consts:
            found = _padded_table(np.asarray(exported[item.key], np.float32), consts)
            if found is not None:
                compared.append(WeightComparison(item.key, found, 0.0, True))
                continue
            fused = _fused_conv_batchnorm(item, items, exported, consts)
            if fused is not None:
                compared.append(fused)
                continue
            gates = _gate_blocks(np.asarray(exported[item.key], np.float32), consts)
            if gates is not None:
                compared.append(WeightComparison(item.key, ",".join(gates), 0.0, True))
                continue
            reshaped = _reshaped_vector(np.asarray(exported[item.key], np.float32), consts)
            if reshaped is not None:
                compared.append(WeightComparison(item.key, reshaped, 0.0, True))
            else:
                unmatched.append(item.key)
            continue
        stored = consts[name]
        converted = item.layout.transform(np.asarray(stored, np.float32).reshape(_upstream_shape(item, stored)))
        reference = np.asarray(exported[item.key], np.float32)
        error = float(np.max(np.abs(converted - reference))) if reference.size else 0.0
        compared.append(WeightComparison(item.key, name, error, bool(np.array_equal(converted, reference))))
    return WeightReport(tuple(compared), tuple(unmatched))


def _padded_table(table: np.ndarray, consts: Mapping[str, np.ndarray]) -> str | None:
    """The const holding a relative-position table (1, 2w+1, k) as a bucket's attention uses it: at a fixed length
    coremltools folds upstream's pad (to 2T-1 positions) and transpose into one const, whose central 2w+1
    positions must be the exported table exactly. None when no const holds it."""
    if table.ndim != 3 or table.shape[0] != 1:
        return None
    positions, channels = table.shape[1:]
    for name, array in consts.items():
        array = np.asarray(array, np.float32)
        if array.ndim != 4:
            continue
        for candidate in (array[0, 0], array[0, 0].T):
            if candidate.shape[1] != channels or candidate.shape[0] < positions or candidate.shape[0] % 2 == 0:
                continue
            start = (candidate.shape[0] - positions) // 2
            if np.array_equal(candidate[start:start + positions], table[0]):
                return name
    return None


def _fused_conv_batchnorm(item: Any, items: Mapping[str, Any], exported: Mapping[str, np.ndarray],
                          consts: Mapping[str, np.ndarray], eps: float = 1e-5) -> WeightComparison | None:
    """A bias-free conv followed by a BatchNorm (upstream `Sequential(conv, bn, ...)`: `P.N.weight`, `P.N+1.*`)
    that coremltools' `fuse_conv_batchnorm` folded into one conv: the package's const must be the exported weight
    times gamma / sqrt(var + eps) per output channel (axis 0 in every channels-last conv layout), to float32
    rounding. Each BatchNorm tensor counts as checked with it."""
    head, _, leaf = item.source_key.rpartition(".")
    prefix, _, index = head.rpartition(".")
    bn = f"{prefix}.{int(index) + 1}" if index.isdigit() else None
    if leaf not in ("weight", "running_mean", "running_var", "bias"):
        return None
    if bn is None or f"{bn}.running_var" not in items:
        # The BatchNorm's own tensors: checked with the conv they fold into.
        conv = f"{prefix}.{int(index) - 1}.weight" if index.isdigit() and int(index) > 0 else None
        if conv is not None and f"{head}.running_var" in items and conv in items:
            result = _fused_conv_batchnorm(items[conv], items, exported, consts, eps)
            return None if result is None else dataclasses.replace(result, export_key=item.key)
        return None
    if leaf != "weight":
        return None
    gamma, var = (np.asarray(exported[items[f"{bn}.{name}"].key], np.float64) for name in ("weight", "running_var"))
    scale = gamma / np.sqrt(var + eps)
    weight = np.asarray(exported[item.key], np.float64)
    expected = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    best: WeightComparison | None = None
    for name, array in consts.items():
        if np.size(array) != expected.size:
            continue
        try:
            candidate = item.layout.transform(np.asarray(array, np.float64).reshape(np.shape(array)))
        except ValueError:
            continue
        if candidate.shape != expected.shape:
            continue
        error = float(np.max(np.abs(candidate - expected)))
        if best is None or error < best.max_abs_error:
            best = WeightComparison(item.key, name, error, False)
    limit = 4 * np.finfo(np.float32).eps * float(np.max(np.abs(expected)) or 1.0)
    return best if best is not None and best.max_abs_error <= limit else None


def _gate_blocks(array: np.ndarray, consts: Mapping[str, np.ndarray]) -> list[str] | None:
    """A GRU tensor (3H rows: r, z, n, PyTorch's order) that coremltools' torch frontend split into one `linear`
    per gate inside its `while_loop`: the names of the consts that hold its three row blocks exactly, or None."""
    if array.ndim not in (1, 2) or array.shape[0] % 3:
        return None
    rows = array.shape[0] // 3
    names = []
    for gate in range(3):
        block = array[gate * rows:(gate + 1) * rows]
        name = next((n for n, c in consts.items() if np.shape(c) == block.shape
                     and np.array_equal(np.asarray(c, np.float32), block)), None)
        if name is None:
            return None
        names.append(name)
    return names


def _reshaped_vector(vector: np.ndarray, consts: Mapping[str, np.ndarray]) -> str | None:
    """A per-channel vector coremltools renamed and reshaped for broadcasting (the content encoder's GroupNorm
    gamma and beta, decomposed into reductions and a (1, C, 1) multiply-add): a const holding exactly its values."""
    if vector.ndim != 1 or vector.size < 2:
        return None
    return next((name for name, c in consts.items() if np.size(c) == vector.size and np.ndim(c) > 1
                 and np.array_equal(np.asarray(c, np.float32).reshape(-1), vector)), None)


def _const_name(source_key: str) -> str:
    """The traced const's name for an upstream parameter: its module path with dots as underscores; a weight-norm
    pair (`weight_g`/`weight_v`, or Applio's parametrizations) is the folded `weight` after remove_weight_norm."""
    key = re.sub(r"\.parametrizations\.weight\.original[01]$", ".weight", source_key)
    key = re.sub(r"\.weight_[gv]$", ".weight", key)
    return key.replace(".", "_")


def _upstream_shape(item: Any, stored: np.ndarray) -> tuple[int, ...]:
    """The const's PyTorch shape: the planned (channels-last) shape mapped back through the layout transform."""
    probe = np.arange(np.prod(stored.shape)).reshape(stored.shape)
    if item.layout.transform(probe).shape == tuple(item.shape):
        return stored.shape
    raise WeightFileError(f"{item.key}: the package's const has shape {stored.shape}, which the rule's layout does "
                          f"not turn into the export's {tuple(item.shape)}")
