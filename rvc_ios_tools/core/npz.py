"""Reading the .npz files users hand in (`golden generate --inputs`), every array's size checked before it is
allocated.

`np.load` allocates each member at the shape its .npy header claims and only then reads the data, so a
400-byte file claiming (1, 4, 80 000 000) floats costs a gigabyte before it fails. Here each claim is checked
against the member's size in the zip directory, and that size against what deflate can expand its
compressed bytes to, before anything of the claimed size exists.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from .errors import CorruptFileError

# Deflate's largest expansion: about 1032 output bytes per input byte (zlib's technical notes); a member
# claiming more than that of its compressed size is lying about one of them.
MAX_DEFLATE_RATIO = 1032
NPY_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz (np.savez or np.savez_compressed), by name without `.npy`; CorruptFileError for
    anything damaged, foreign (object arrays, another zip) or claiming more than the file can hold."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                name = member.filename[:-len(".npy")] if member.filename.endswith(".npy") else member.filename
                arrays[name] = _read_member(archive, member, path)
    except CorruptFileError:
        raise
    except Exception as exc:  # zipfile and numpy's header parser report damage as a dozen types
        raise CorruptFileError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}).") from None
    return arrays


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path) -> np.ndarray:
    def damaged(problem: str) -> CorruptFileError:
        return CorruptFileError(f"{path}: `{member.filename}` {problem}; write the file again with np.savez.")

    stored = member.compress_type == zipfile.ZIP_STORED
    if member.file_size > (member.compress_size if stored else MAX_DEFLATE_RATIO * member.compress_size + 64):
        raise damaged(f"claims {member.file_size} bytes from {member.compress_size} stored")
    with archive.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        if version not in NPY_READERS:
            raise damaged(f"is .npy version {version}, not 1.0 or 2.0")
        shape, fortran_order, dtype = NPY_READERS[version](handle)
        if dtype.hasobject:
            raise damaged("holds Python objects, which are never read (they unpickle code)")
        if any(size < 0 for size in shape):
            raise damaged(f"has the negative shape {shape}")
        size = math.prod(shape) * dtype.itemsize
        if size > member.file_size - handle.tell():
            raise damaged(f"claims shape {shape} of {dtype} ({size} bytes) in a {member.file_size}-byte member")
        data = bytearray(size)
        if handle.readinto(data) != size:
            raise damaged("is shorter than its header says")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
