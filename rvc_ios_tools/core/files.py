"""Atomic writes and checksums shared by every writer in the package."""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import xxhash


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    A crash or error inside the block leaves neither a partial file nor a stale temporary behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # named for the output, not for the temporary name it was refused
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
        except OSError as exc:
            if exc.filename is not None or exc.errno is None:
                raise
            # A failed write (ENOSPC, EIO ...) names no file; name the output it was for.
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        # mkstemp creates 0600 files; give the result the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def staged_outputs(folder: Path) -> Iterator[Path]:
    """Yield a temporary folder inside `folder` for a command that writes several files there; each is renamed
    into `folder` only if the whole block succeeds, so a failure part-way leaves none of them behind (and
    anything already in `folder` as it was)."""
    folder = Path(folder)
    created = [path for path in (folder, *folder.parents) if not path.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=folder))
    try:
        yield staging
        for path in sorted(staging.iterdir()):
            os.replace(path, folder / path.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for path in created:  # the folders made for the outputs go too
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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


def stored_bytes(array: np.ndarray) -> np.ndarray:
    """A tensor's bytes exactly as safetensors stores them (C order, little-endian), as a flat uint8 array
    over the tensor's own buffer when it is already laid out so (no copy)."""
    contiguous = np.ascontiguousarray(array)
    if contiguous.dtype.byteorder == ">":
        contiguous = contiguous.astype(contiguous.dtype.newbyteorder("<"))
    return contiguous.reshape(-1).view(np.uint8)


def sha256_tensor(array: np.ndarray) -> str:
    """sha256 of a tensor's bytes as stored (golden sets); hashlib releases the GIL while it reads them."""
    return hashlib.sha256(stored_bytes(array)).hexdigest()


def xxh64_tensor(array: np.ndarray) -> str:
    """XXH64 (seed 0) of a tensor's bytes as stored, as 16 hex digits: the per-tensor checksum of weights
    manifests. A corruption check, not a signature (the source file's sha256 identifies the voice); at about
    10 GB/s it costs a sixth of sha256, which was a third of an export's time beyond its floor."""
    return xxhash.xxh64_hexdigest(stored_bytes(array))


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


class SafetensorsWriter:
    """A safetensors file written in two steps: the header, from every tensor's dtype and shape, then each
    tensor's bytes at its offset, in any order and from any thread (`os.pwrite` releases the GIL).

    Deterministic: tensors are stored in key order and the metadata sorted, so the same tensors always give
    the same bytes (the `safetensors` library keeps metadata in a hash map, whose order varies from run to
    run). Bytes are written straight from each array's buffer, without a copy. `close()` (or leaving the
    `with` block without an error) checks that every declared tensor was written. The caller writes to a
    temporary path (`atomic_output`) so a failure leaves nothing behind; the file reads back with any
    safetensors reader.
    """

    def __init__(
        self,
        path: Path,
        specs: dict[str, tuple[np.dtype, tuple[int, ...]]],
        metadata: dict[str, str] | None = None,
    ):
        header: dict[str, object] = {}
        if metadata:
            header["__metadata__"] = {name: str(metadata[name]) for name in sorted(metadata)}
        self._specs: dict[str, tuple[np.dtype, tuple[int, ...], int]] = {}
        offset = 0
        for key in sorted(specs):
            dtype, shape = np.dtype(specs[key][0]).newbyteorder("<"), tuple(int(n) for n in specs[key][1])
            tag = SAFETENSORS_DTYPES.get(dtype)
            if tag is None:
                raise TypeError(f"tensor `{key}` has dtype {dtype}, which safetensors cannot store")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            header[key] = {"dtype": tag, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            self._specs[key] = (dtype, shape, offset)
            offset += nbytes
        encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
        encoded += b" " * (-len(encoded) % 8)  # the data section starts 8-byte aligned
        self._data_start = 8 + len(encoded)
        self._pending = set(self._specs)
        self._handle = open(path, "wb")
        self._handle.write(len(encoded).to_bytes(8, "little") + encoded)
        self._handle.flush()

    def _checked(self, key: str, array: np.ndarray) -> np.ndarray:
        """The array's little-endian C-order bytes, after checking it matches its declaration."""
        if key not in self._specs:
            raise KeyError(f"`{key}` is not one of the tensors this file was declared with")
        dtype, shape, _ = self._specs[key]
        if np.dtype(array.dtype).newbyteorder("<") != dtype or tuple(array.shape) != shape:
            raise ValueError(f"`{key}`: declared {dtype} {shape}, given {array.dtype} {tuple(array.shape)}")
        return stored_bytes(array)

    def write(self, key: str, array: np.ndarray) -> None:
        """One tensor at its offset; safe to call from several threads at once."""
        self._pwrite_all([memoryview(self._checked(key, array))], self._data_start + self._specs[key][2])
        self._pending.discard(key)

    def write_all(self, arrays: dict[str, np.ndarray]) -> None:
        """Every declared tensor at once, with gathered writes (few system calls, so seldom a GIL hand-over)."""
        if set(arrays) != set(self._specs):
            for key, array in arrays.items():
                self.write(key, array)
            return
        keys = sorted(self._specs)  # offset order
        self._pwrite_all([memoryview(self._checked(key, arrays[key])) for key in keys], self._data_start)
        self._pending.clear()

    def _pwrite_all(self, views: list[memoryview], position: int) -> None:
        views = [view for view in views if len(view)]
        fd = self._handle.fileno()
        while views:
            batch = views[:IOV_MAX]
            written = os.pwritev(fd, batch, position)
            position += written
            while batch and written >= len(batch[0]):
                written -= len(batch.pop(0))
                views.pop(0)
            if written:
                views[0] = views[0][written:]

    def close(self) -> None:
        self._handle.close()
        if self._pending:
            missing = ", ".join(sorted(self._pending)[:5])
            raise ValueError(f"{len(self._pending)} declared tensor(s) never written: {missing}")

    def __enter__(self) -> "SafetensorsWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self._handle.close()


# Buffers per os.pwritev call (Linux's IOV_MAX).
IOV_MAX = 1024


def write_safetensors(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write `arrays` as a deterministic safetensors file in one go (see `SafetensorsWriter`)."""
    specs = {key: (np.asarray(array).dtype, np.shape(array)) for key, array in arrays.items()}
    with SafetensorsWriter(path, specs, metadata) as writer:
        writer.write_all(arrays)
