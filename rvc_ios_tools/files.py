"""Atomic writes and checksums shared by every writer in the package."""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    A crash or error inside the block leaves neither a partial file nor a stale temporary behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def sha256_file(path: Path) -> str:
    """The file's sha256, hashed from a read-only memory map in one call: hashlib releases the GIL for the
    whole file, so this runs on a thread beside Python work without waiting for the GIL chunk by chunk."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                digest.update(mapped)
    return digest.hexdigest()


def sha256_tensor(array: np.ndarray) -> str:
    """Checksum of a tensor's bytes exactly as safetensors stores them (C order, little-endian)."""
    contiguous = np.ascontiguousarray(array)
    if contiguous.dtype.byteorder == ">":
        contiguous = contiguous.astype(contiguous.dtype.newbyteorder("<"))
    # The buffer itself, not a `tobytes()` copy; hashlib releases the GIL while it reads it.
    return hashlib.sha256(contiguous.reshape(-1).view(np.uint8)).hexdigest()


# numpy dtype -> the safetensors header's dtype tag.
SAFETENSORS_DTYPES = {
    np.dtype(np.float64): "F64",
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64",
    np.dtype(np.int32): "I32",
    np.dtype(np.int16): "I16",
    np.dtype(np.int8): "I8",
    np.dtype(np.uint8): "U8",
    np.dtype(np.bool_): "BOOL",
}


# Buffers per os.pwritev call (Linux's IOV_MAX).
IOV_MAX = 1024


def write_safetensors(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write `arrays` as a safetensors file, deterministically and without copying the payload.

    Tensors are stored in key order and the metadata sorted, so the same tensors always give the same bytes
    (the `safetensors` library keeps metadata in a hash map, whose order varies from run to run). Each
    tensor is written straight from its array's buffer (`os.pwritev` releases the GIL, so this can run on a
    thread beside other work). The caller writes to a temporary path (`atomic_output`) so a failure leaves
    nothing behind; the result reads back with any safetensors reader.
    """
    keys = sorted(arrays)
    buffers: dict[str, np.ndarray] = {}
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {name: str(metadata[name]) for name in sorted(metadata)}
    offset = 0
    for key in keys:
        array = np.ascontiguousarray(arrays[key])
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        tag = SAFETENSORS_DTYPES.get(array.dtype)
        if tag is None:
            raise TypeError(f"tensor `{key}` has dtype {array.dtype}, which safetensors cannot store")
        buffers[key] = array.reshape(-1).view(np.uint8)
        header[key] = {"dtype": tag, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the data section starts 8-byte aligned
    position = 8 + len(encoded)
    views = [memoryview(buffers[key]) for key in keys if buffers[key].size]
    with open(path, "wb") as handle:
        handle.write(len(encoded).to_bytes(8, "little") + encoded)
        handle.flush()
        # Gathered writes: few system calls, so a thread writing here seldom needs the GIL back.
        while views:
            batch = views[:IOV_MAX]
            written = os.pwritev(handle.fileno(), batch, position)
            position += written
            while batch and written >= len(batch[0]):
                written -= len(batch.pop(0))
                views.pop(0)
            if written:
                views[0] = views[0][written:]
