"""Reading PyTorch pickles without ever running their code."""

from __future__ import annotations

import _compat_pickle
import dataclasses
import io
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import CorruptFileError, RvcIosError, UnsafeCheckpointError


# torch.save's zip format (PyTorch >= 1.6) starts like every zip file; anything else is the legacy format.
ZIP_MAGIC = b"PK\x03\x04"
# The legacy format's first pickles: torch's magic number, protocol version and system info; the fourth is the
# checkpoint itself, whose persistent ids claim the storages that follow it.
LEGACY_HEADER_PICKLES = 3
# Globals torch's weights-only unpickler allows whose call allocates whatever size its argument names
# (`bytearray(n)`, `torch.FloatTensor(n)` ...): a few bytes of pickle could ask for gigabytes. torch.save never
# writes them for a state dict (tensors pickle as `torch._utils._rebuild_tensor_v2` over a stored storage).
SIZED_CONSTRUCTORS = re.compile(r"builtins\.bytearray|torch(\.cuda)?\.(\w*Tensor)")
# Checkpoints nest a few levels (fairseq's cfg is the deepest, about 5); deeper is hostile, and would make
# every recursive walk over the payload (ours, repr) overflow the stack.
MAX_NESTING = 64


def load_pickle_safely(path: Path, stand_ins: Sequence[tuple[type, str]] = ()) -> Any:
    """`torch.load` restricted to tensors and plain containers: a pickle never runs code here.

    `stand_ins` pairs an inert class of ours with the global name a file pickles (e.g. fairseq's
    `fairseq.data.dictionary.Dictionary`): that one name then unpickles as an instance of our class, its
    state copied into `__dict__`, and nothing of the original is imported or run. Every other global is
    still refused.

    Nothing a hostile file claims is allocated before it is checked against the file: torch checks a zip
    checkpoint's storages against its records, but would inflate a compressed record, allocate a legacy
    (pre-1.6) checkpoint's storages at whatever sizes its pickle names, and call the allowed constructors that
    allocate by argument (`scan_zip_checkpoint`, `scan_legacy_checkpoint`). Afterwards every tensor must lie
    within its own storage (`check_payload`), so none is a zero-stride view that claims terabytes over a few
    bytes.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{path} does not exist or is not a file; check the path.")
    try:
        with open(path, "rb") as handle:
            is_zip = handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC
        if is_zip:
            scan_zip_checkpoint(path)
            source: Any = path
        else:
            data = path.read_bytes()
            scan_legacy_checkpoint(data, path.name)
            # From memory, no read of torch's can ask for more than the file holds.
            source = io.BytesIO(data)
        with torch.serialization.safe_globals(list(stand_ins)):
            payload = torch.load(source, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines()]
        forbidden = next((line for line in lines if "GLOBAL" in line or "Unsupported global" in line), None)
        if forbidden is None:
            raise damaged_checkpoint(path.name, lines[-1] if lines else "bad pickle") from None
        raise UnsafeCheckpointError(
            f"Refused to load {path.name}: its pickle asks for code or objects outside plain tensors and "
            f"containers ({forbidden}). Nothing in it was run. Only load voice files from sources you trust; "
            "a genuine RVC voice never needs this."
        ) from None
    except RvcIosError:
        raise
    except OSError as exc:
        raise CorruptFileError(f"{path} cannot be read ({exc.strerror or exc}).") from None
    except Exception as exc:
        # Only torch's own reader runs in here (and our inert stand-ins), so whatever it raises (RuntimeError
        # from its zip reader, AssertionError, struct.error, UnicodeDecodeError ... from the legacy one) is
        # about the file, not a bug of ours.
        raise damaged_checkpoint(path.name, exc) from None
    check_payload(payload, path.name)
    return payload


def damaged_checkpoint(source_name: str, problem: Any) -> CorruptFileError:
    if isinstance(problem, BaseException):
        detail = str(problem).splitlines()[0][:200] if str(problem) else "no detail"
        problem = f"{type(problem).__name__}: {detail}"
    return CorruptFileError(
        f"{source_name} is not a readable PyTorch checkpoint ({problem}). It may be truncated or damaged: "
        "download or copy it again."
    )


def scan_zip_checkpoint(path: Path) -> None:
    """Before torch reads a zip checkpoint: its records stored within the file (`read_zip_pickle`) and no
    global in data.pkl that allocates by argument (`SIZED_CONSTRUCTORS`). torch itself checks each storage
    against its record."""
    _scan_pickles(io.BytesIO(read_zip_pickle(path)), 1, path.name)


def read_zip_pickle(path: Path) -> bytes:
    """The data.pkl of a torch zip checkpoint, once every record is known to be stored uncompressed (as
    torch.save writes them) and to fit in the file, so that nothing read from the archive can be larger than
    the file: torch's zip reader allocates a record at the size the directory claims before reading it."""
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
            compressed = next((r.filename for r in records if r.compress_type != zipfile.ZIP_STORED), None)
            if compressed is not None:
                raise damaged_checkpoint(path.name, f"its record {compressed} is compressed; torch.save stores "
                                                    "every record as is")
            oversized = next((r for r in records if r.file_size != r.compress_size
                              or r.header_offset + r.compress_size > size), None)
            if oversized is not None:
                raise damaged_checkpoint(path.name, f"its record {oversized.filename} claims {oversized.file_size} "
                                                    f"bytes in a {size}-byte file")
            pickles = [r for r in records if r.filename.endswith("/data.pkl") or r.filename == "data.pkl"]
            if not pickles:
                raise damaged_checkpoint(path.name, "a zip file without the data.pkl of torch.save")
            return archive.read(pickles[0])
    except RvcIosError:
        raise
    except Exception as exc:  # zipfile reports a damaged archive as any of a dozen types (UnicodeDecodeError ...)
        raise damaged_checkpoint(path.name, exc) from None


def scan_legacy_checkpoint(data: bytes, source_name: str) -> None:
    """Before torch reads a legacy checkpoint: the storages its pickle claims fit in the bytes after it (torch
    allocates them at the claimed sizes first), and no global that allocates by argument."""
    stream = io.BytesIO(data)
    claims = _scan_pickles(stream, LEGACY_HEADER_PICKLES + 1, source_name)
    claimed, left = sum(claims.values()), len(data) - stream.tell()
    if claimed > left:
        raise CorruptFileError(
            f"{source_name} claims {claimed} bytes of tensor data but holds only {left} after its pickle: it is "
            "truncated or damaged. Download or copy it again."
        )


def _scan_pickles(stream: io.BytesIO, count: int, source_name: str) -> dict[Any, int]:
    """Unpickle `count` pickles from `stream` with every global inert; the storages they claim, by key."""
    claims: dict[Any, int] = {}
    called: set[str] = set()
    try:
        for _ in range(count):
            scanner = _InertUnpickler(stream)
            scanner.load()
            claims.update(scanner.claims)
            called |= scanner.called
    except Exception as exc:  # the scan builds nothing but inert objects; any failure is the file's
        raise damaged_checkpoint(source_name, exc) from None
    sized = sorted(name for name in called if SIZED_CONSTRUCTORS.fullmatch(name))
    if sized:
        raise UnsafeCheckpointError(
            f"Refused to load {source_name}: its pickle calls {', '.join(sized)}, which a saved state dict never "
            "does and which allocates whatever size the file names. Nothing in it was run; only load files from "
            "sources you trust."
        )
    return claims


class _InertGlobal:
    """What every global of a scanned pickle becomes: accepts any construction or state and does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> "_InertGlobal":
        return _InertGlobal()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


# The bytes per element of the storage classes a legacy checkpoint names (`torch.FloatStorage` ...); a class not
# listed counts one byte per element, which torch then refuses by name.
LEGACY_STORAGE_ITEM_SIZES = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
    "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
    "ComplexDoubleStorage": 16, "ComplexFloatStorage": 8,
}


@dataclasses.dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def item_size(self) -> int:
        return LEGACY_STORAGE_ITEM_SIZES.get(self.name, 1)


def _load_bounded_bytearray8(self: "_InertUnpickler") -> None:
    # pickle's own BYTEARRAY8 allocates the claimed length before reading it.
    (length,) = struct.unpack("<Q", self.read(8))
    data = self.read(length)
    if len(data) != length:
        raise pickle.UnpicklingError(f"BYTEARRAY8 claims {length} bytes, the pickle holds {len(data)}")
    self.append(bytearray(data))


class _InertUnpickler(pickle._Unpickler):
    """Unpickles with every global inert, recording the globals the pickle calls (`called`) and the storages that
    persistent ids claim (`("storage", storage type, key, location, element count, ...)`, as `claims[key] =
    bytes`).

    The pure-Python unpickler, as torch's weights-only one is: its memo is a dict, where the C unpickler's is an
    array that a `LONG_BINPUT` of a huge index would grow to gigabytes."""

    dispatch = {**pickle._Unpickler.dispatch, pickle.BYTEARRAY8[0]: _load_bounded_bytearray8}

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.claims: dict[Any, int] = {}
        self.called: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names, as torch's unpickler reads them (protocol 2 pickles `bytearray` as `__builtin__`'s).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        called, qualified = self.called, f"{module}.{name}"

        class CalledGlobal(_InertGlobal):
            # REDUCE calls the global, NEWOBJ its __new__: either way it was asked to construct something.
            def __new__(cls, *args: Any, **kwargs: Any) -> "CalledGlobal":
                called.add(qualified)
                return object.__new__(cls)

        return CalledGlobal

    def persistent_load(self, saved_id: Any) -> Any:
        if isinstance(saved_id, tuple) and len(saved_id) >= 5 and saved_id[0] in ("storage", b"storage"):
            storage_type, key, numel = saved_id[1], saved_id[2], saved_id[4]
            if not isinstance(numel, int) or numel < 0:
                raise ValueError(f"a storage claims {numel!r} elements")
            item_size = storage_type.item_size if isinstance(storage_type, _StorageType) else 1
            self.claims[key if isinstance(key, (str, bytes, int)) else repr(key)] = numel * item_size
        return _InertGlobal()


def check_payload(payload: Any, source_name: str) -> None:
    """Every tensor in a loaded checkpoint is a plain CPU tensor within its own storage, and nothing nests
    deeper than MAX_NESTING; CorruptFileError naming the first that is not."""
    import torch

    pending: list[tuple[Any, str, int]] = [(payload, "the checkpoint", 0)]
    while pending:
        value, where, depth = pending.pop()
        if depth > MAX_NESTING:
            raise damaged_checkpoint(source_name, f"it nests containers more than {MAX_NESTING} deep")
        if isinstance(value, torch.Tensor):
            problem = _tensor_problem(value)
            if problem:
                raise damaged_checkpoint(source_name, f"{where} is {problem}")
        elif isinstance(value, dict):
            pending.extend((item, f"`{key}`", depth + 1) for key, item in value.items())
            pending.extend((key, where, depth + 1) for key in value)
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending.extend((item, where, depth + 1) for item in value)
        elif hasattr(value, "__dict__") and not isinstance(value, type):  # a stand-in's copied state
            pending.append((vars(value), where, depth + 1))


def _tensor_problem(tensor: Any) -> str | None:
    import torch

    if tensor.layout != torch.strided or tensor.device.type != "cpu" or tensor.is_quantized or tensor.is_nested:
        return f"a {tensor.layout} {tensor.device.type} tensor, not a plain stored one"
    stored = tensor.untyped_storage().nbytes()
    needed = tensor.numel() * tensor.element_size()
    if needed > stored:
        return (f"a tensor of shape {tuple(tensor.shape)} ({needed} bytes) over a storage of {stored} bytes "
                "(a view that repeats its data)")
    return None


PLAIN_SCALARS = (str, int, float, bool, type(None))


def non_plain_item(value: Any, where: str) -> str | None:
    """Where in `value` (a config read from a pickle) the first item that is not plain data (a number, string,
    bool, None, or a list, tuple or str-keyed dict of those) sits, and what it is; None when all of it is.
    Upstream configs are plain; a tensor or stand-in in one would reach arithmetic and comparisons meant for
    numbers (`int()` of a 2-element tensor, the truth of one) with errors of its own kinds."""
    pending = [(value, where)]
    while pending:
        item, place = pending.pop()
        if isinstance(item, PLAIN_SCALARS):
            continue
        if isinstance(item, (list, tuple)):
            pending.extend((child, f"{place}[{n}]") for n, child in enumerate(item))
        elif isinstance(item, dict) and all(isinstance(key, str) for key in item):
            pending.extend((child, f"{place}.{key}") for key, child in item.items())
        else:
            return f"{place} is a {type(item).__name__}"
    return None


def state_dict_to_numpy(state_dict: Mapping[str, Any], source_name: str) -> dict[str, np.ndarray]:
    """A loaded state dict's torch tensors (bfloat16 as float32) or numpy arrays -> numpy arrays; anything
    else in it is a CorruptFileError naming the key."""
    import torch

    arrays: dict[str, np.ndarray] = {}
    for key, value in state_dict.items():
        if isinstance(value, np.ndarray):
            arrays[str(key)] = value
        elif isinstance(value, torch.Tensor):
            tensor = value.detach().cpu()
            arrays[str(key)] = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
        else:
            raise CorruptFileError(f"{source_name}: `{key}` is a {type(value).__name__}, not a tensor.")
    return arrays
