"""Reading the `.index` files RVC writes with `faiss.write_index`, without faiss.

RVC's `train_index` builds `faiss.index_factory(d, "IVF<n>,Flat")`: an IndexIVFFlat over an IndexFlatL2
quantizer, nprobe 1. `write_index` lays it out as below (little-endian; faiss `index_write.cpp`:
`write_index_header`, `write_ivf_header`, `write_direct_map`, `write_InvertedLists`):

    "IwFl"  d:i32  ntotal:i64  dummy:i64 (1<<20)  dummy:i64 (1<<20)  is_trained:u8  metric_type:i32
            (metric_arg:f32 only when metric_type > 1)  nlist:u64  nprobe:u64
    "IxF2"  the quantizer's header as above (ntotal = nlist), then u64 count = nlist*d (floats, not bytes)
            and the nlist x d float32 centroids
    direct map: type:u8 (0 = none) and a u64-counted int64 array (empty)
    "ilar"  nlist:u64  code_size:u64 (= 4*d)
            "full": u64 count (= nlist) and one u64 size per list, or
            "sprs": u64 count (= 2 * non-empty lists) and (list number, size) u64 pairs
            then per non-empty list: its n x d float32 vectors FIRST, then its n int64 ids

Every count is checked against the bytes left in the file before anything is allocated, so a damaged or
hostile file is one sentence (`CorruptIndexError`), never a crash or a huge allocation. Other index types
are refused by name (`UnsupportedIndexError`).
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np

from ..core.errors import CorruptFileError, RvcIosError

METRIC_L2 = 1
# `write_index_header` writes two unused int64 fields, both 1 << 20.
HEADER_DUMMY = 1 << 20
# Sanity bounds: faiss has none, but no RVC feature (256 or 768) or index comes near them, and a larger value
# in a damaged file would otherwise only be caught later, by the size checks.
MAX_DIMENSION = 1 << 16
DIRECT_MAP_NONE = 0

# What the other fourccs faiss writes at the start of an index are, so a refusal can say what the file is.
OTHER_INDEX_TYPES = {
    "IvFl": "a legacy IndexIVFFlat (ids in the IVF header; faiss before 1.5 wrote it, RVC never does)",
    "IwPQ": "an IndexIVFPQ (product-quantized codes, not the float vectors RVC stores)",
    "IvPQ": "a legacy IndexIVFPQ",
    "IwQR": "an IndexIVFPQR",
    "IwSQ": "an IndexIVFScalarQuantizer",
    "IwSq": "an IndexIVFScalarQuantizer",
    "IwSh": "an IndexIVFSpectralHash",
    "IwRQ": "an IndexIVFResidualQuantizer",
    "IwLS": "an IndexIVFLocalSearchQuantizer",
    "IwFd": "an IndexIVFFlatDedup",
    "IHNf": "an IndexHNSWFlat (a graph index)",
    "IHNp": "an IndexHNSWPQ (a graph index)",
    "IHNs": "an IndexHNSWSQ (a graph index)",
    "IHN2": "an IndexHNSW2Level (a graph index)",
    "IxF2": "a flat IndexFlatL2 with no inverted lists",
    "IxFI": "a flat IndexFlatIP with no inverted lists",
    "IxFl": "a flat IndexFlat with no inverted lists",
    "IxPq": "an IndexPQ",
    "IxSQ": "an IndexScalarQuantizer",
    "IxMp": "an IndexIDMap wrapper",
    "IxM2": "an IndexIDMap2 wrapper",
    "IxPT": "an IndexPreTransform (OPQ, PCA ...)",
    "IxRF": "an IndexRefine",
    "ILsh": "an IndexLSH",
}
OTHER_INVERTED_LISTS = {
    "il00": "no inverted lists at all",
    "iloi": "on-disk inverted lists (OnDiskInvertedLists), whose vectors live in another file",
    "ilbs": "block inverted lists",
}


class CorruptIndexError(CorruptFileError):
    """A `.index` file that is truncated, damaged, or inconsistent with itself."""


class UnsupportedIndexError(RvcIosError):
    """A faiss index of a type RVC does not write (IVF-PQ, HNSW, the legacy IvFl ...)."""


@dataclasses.dataclass(frozen=True)
class IvfFlatIndex:
    """An IndexIVFFlat as stored: the coarse centroids, and every list's vectors and ids in file order.

    `vectors[list_offsets[i]:list_offsets[i + 1]]` is list i, `ids` the insertion ids of those rows (a
    permutation of 0..ntotal-1, checked on reading).
    """

    d: int
    nlist: int
    nprobe: int
    ntotal: int
    metric: str
    centroids: np.ndarray  # (nlist, d) float32
    list_offsets: np.ndarray  # (nlist + 1,) int64
    vectors: np.ndarray  # (ntotal, d) float32, list order
    ids: np.ndarray  # (ntotal,) int64
    list_sizes_form: str  # "full" or "sprs", as the file stored them

    @property
    def list_sizes(self) -> np.ndarray:
        return np.diff(self.list_offsets)

    def vectors_by_id(self) -> np.ndarray:
        """faiss `reconstruct_n(0, ntotal)`, upstream's `big_npy`: row `id` is the vector added with that id."""
        out = np.empty_like(self.vectors)
        out[self.ids] = self.vectors
        return out


class _Cursor:
    """Reads fields from the open file, checking each size against the bytes left before reading it."""

    def __init__(self, handle, size: int, path: Path):
        self.handle = handle
        self.size = size
        self.path = path
        self.position = 0

    @property
    def remaining(self) -> int:
        return self.size - self.position

    def fail(self, problem: str) -> CorruptIndexError:
        return CorruptIndexError(
            f"{self.path} is not a readable faiss index: {problem} (at byte {self.position} of {self.size}). "
            "Use the added_*.index file RVC's train_index wrote, or build the index again."
        )

    def _check(self, size: int, what: str) -> None:
        if size < 0 or size > self.remaining:
            raise self.fail(f"{what} needs {size} bytes but only {self.remaining} are left (truncated?)")

    def take(self, size: int, what: str) -> bytes:
        self._check(size, what)
        data = self.handle.read(size)
        if len(data) != size:
            raise self.fail(f"{what} could not be read in full (the file changed while it was read?)")
        self.position += size
        return data

    def scalar(self, fmt: str, what: str) -> int | float:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def fourcc(self, what: str) -> str:
        return self.take(4, what).decode("latin-1")

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        """`count` little-endian items of `dtype`, allocated only once they are known to be in the file."""
        itemsize = np.dtype(dtype).itemsize
        if count < 0 or count * itemsize > self.remaining:
            raise self.fail(f"{what} claims {count} values ({count * itemsize} bytes) but only {self.remaining} bytes are left")
        return np.frombuffer(self.take(count * itemsize, what), dtype=np.dtype(dtype).newbyteorder("<"))

    def read_into(self, out: np.ndarray, what: str) -> None:
        """Fill a C-contiguous float32 or int64 `out` straight from the file (no intermediate copy)."""
        view = memoryview(out).cast("B")
        self._check(len(view), what)
        if self.handle.readinto(view) != len(view):
            raise self.fail(f"{what} could not be read in full (the file changed while it was read?)")
        self.position += len(view)


@dataclasses.dataclass(frozen=True)
class _Header:
    d: int
    ntotal: int
    is_trained: bool
    metric_type: int


def _read_header(cursor: _Cursor, what: str) -> _Header:
    d = cursor.scalar("i", f"{what} dimension")
    if not 1 <= d <= MAX_DIMENSION:
        raise cursor.fail(f"{what} has dimension {d}; a feature index has 1 to {MAX_DIMENSION} (RVC: 256 or 768)")
    ntotal = cursor.scalar("q", f"{what} vector count")
    if ntotal < 0:
        raise cursor.fail(f"{what} claims {ntotal} vectors")
    for _ in range(2):
        dummy = cursor.scalar("q", f"{what} header")
        if dummy != HEADER_DUMMY:
            raise cursor.fail(f"{what} header holds {dummy} where faiss writes {HEADER_DUMMY}")
    is_trained = cursor.scalar("B", f"{what} is_trained flag")
    if is_trained not in (0, 1):
        raise cursor.fail(f"{what} is_trained flag is {is_trained}, not 0 or 1")
    metric_type = cursor.scalar("i", f"{what} metric")
    if metric_type > 1:
        cursor.scalar("f", f"{what} metric argument")
    return _Header(d, ntotal, bool(is_trained), metric_type)


def _refuse_other_index(path: Path, fourcc: str, where: str) -> UnsupportedIndexError:
    known = OTHER_INDEX_TYPES.get(fourcc)
    what = known or f"an index of type {fourcc!r}"
    return UnsupportedIndexError(
        f"{path} holds {what}{where}; RVC's retrieval uses an IndexIVFFlat ('IwFl', the IVF<n>,Flat that "
        "train_index builds). Use that file, or build the index again with RVC."
    )


def read_faiss_index(path: Path) -> IvfFlatIndex:
    """Read and check an IndexIVFFlat written by `faiss.write_index`; see the module docstring for the layout."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(0)
            if size == 0:
                raise CorruptIndexError(f"{path} is empty; it is not a faiss index. Use the added_*.index file "
                                        "RVC's train_index wrote, or build the index again.")
            return _parse(_Cursor(handle, size, path))
    except IsADirectoryError:
        raise CorruptIndexError(f"{path} is a folder, not a faiss .index file; pass the added_*.index file in it.") from None
    except FileNotFoundError:
        raise CorruptIndexError(f"{path} does not exist; pass the .index file RVC wrote (added_IVF..._Flat_...).") from None


def _parse(cursor: _Cursor) -> IvfFlatIndex:
    path = cursor.path
    fourcc = cursor.fourcc("the index type")
    if fourcc != "IwFl":
        if fourcc in OTHER_INDEX_TYPES or fourcc.isprintable() and fourcc.isascii() and fourcc.strip():
            raise _refuse_other_index(path, fourcc, "")
        raise cursor.fail(f"it starts with bytes {fourcc.encode('latin-1').hex()}, not a faiss index type")
    header = _read_header(cursor, "the index")
    d = header.d
    if not header.is_trained:
        raise cursor.fail("the index is marked untrained, so it has no centroids to search")
    if header.metric_type != METRIC_L2:
        metric = "inner product" if header.metric_type == 0 else f"metric {header.metric_type}"
        raise UnsupportedIndexError(
            f"{path} searches by {metric}; RVC's indexes use L2 distance (METRIC_L2). Build the index again with RVC."
        )
    nlist = cursor.scalar("Q", "nlist")
    nprobe = cursor.scalar("Q", "nprobe")
    # Each list costs at least its d centroid floats, so nlist cannot exceed what the file could hold.
    if not 1 <= nlist <= cursor.remaining // (4 * d):
        raise cursor.fail(
            f"nlist is {nlist}, but the {cursor.remaining} bytes left have room for at most "
            f"{cursor.remaining // (4 * d)} centroids (truncated?)"
        )
    if not 1 <= nprobe <= 1 << 31:
        raise cursor.fail(f"nprobe is {nprobe}; faiss searches at least one list")

    quantizer = cursor.fourcc("the quantizer type")
    if quantizer != "IxF2":
        if quantizer in OTHER_INDEX_TYPES:
            raise _refuse_other_index(path, quantizer, " as its coarse quantizer")
        raise cursor.fail(f"the quantizer type is {quantizer!r}, not IxF2 (IndexFlatL2)")
    q = _read_header(cursor, "the quantizer")
    if (q.d, q.ntotal, q.is_trained, q.metric_type) != (d, nlist, True, METRIC_L2):
        raise cursor.fail(
            f"the quantizer (d {q.d}, {q.ntotal} centroids, metric {q.metric_type}) does not match the index "
            f"(d {d}, nlist {nlist}, L2)"
        )
    floats = cursor.scalar("Q", "the centroid count")
    if floats != nlist * d:
        raise cursor.fail(f"the quantizer stores {floats} floats, not nlist x d = {nlist * d}")
    centroids = cursor.array("f4", floats, "the centroids").reshape(nlist, d)

    map_type = cursor.scalar("B", "the direct map type")
    if map_type != DIRECT_MAP_NONE:
        raise cursor.fail(f"it has a direct map of type {map_type}; RVC's indexes have none (type 0)")
    map_count = cursor.scalar("Q", "the direct map size")
    if map_count != 0:
        raise cursor.fail(f"the (absent) direct map claims {map_count} entries")

    lists = cursor.fourcc("the inverted lists type")
    if lists != "ilar":
        if lists in OTHER_INVERTED_LISTS:
            raise UnsupportedIndexError(
                f"{path} has {OTHER_INVERTED_LISTS[lists]} ({lists!r}); RVC writes array inverted lists ('ilar') "
                "holding every vector in the file. Use the added_*.index file."
            )
        raise cursor.fail(f"the inverted lists type is {lists!r}, not 'ilar'")
    lists_nlist = cursor.scalar("Q", "the inverted lists' nlist")
    code_size = cursor.scalar("Q", "the code size")
    if lists_nlist != nlist:
        raise cursor.fail(f"the inverted lists have {lists_nlist} lists, the index {nlist}")
    if code_size != 4 * d:
        raise cursor.fail(f"the code size is {code_size} bytes, not 4 x d = {4 * d} (one float32 vector)")

    form = cursor.fourcc("the list sizes form")
    sizes = np.zeros(nlist, dtype=np.int64)
    if form == "full":
        count = cursor.scalar("Q", "the list sizes count")
        if count != nlist:
            raise cursor.fail(f"'full' list sizes count {count} lists, not nlist = {nlist}")
        stored = cursor.array("u8", count, "the list sizes")
        if np.any(stored > cursor.remaining):
            raise cursor.fail(f"a list claims {int(stored.max())} vectors, more than the file holds")
        sizes[:] = stored
    elif form == "sprs":
        count = cursor.scalar("Q", "the sparse list sizes count")
        if count % 2 or count // 2 > nlist:
            raise cursor.fail(f"'sprs' list sizes count {count} values; it must be two per non-empty list, at most {2 * nlist}")
        pairs = cursor.array("u8", count, "the sparse list sizes").reshape(-1, 2)
        numbers, counts = pairs[:, 0], pairs[:, 1]
        if np.any(numbers >= nlist):
            raise cursor.fail(f"'sprs' names list {int(numbers.max())}, but there are {nlist}")
        if len(np.unique(numbers)) != len(numbers):
            raise cursor.fail("'sprs' names a list twice")
        if np.any(counts > cursor.remaining):
            raise cursor.fail(f"a list claims {int(counts.max())} vectors, more than the file holds")
        sizes[numbers.astype(np.int64)] = counts.astype(np.int64)
    else:
        raise cursor.fail(f"the list sizes form is {form!r}, not 'full' or 'sprs'")

    total = int(sizes.sum())
    if total != header.ntotal:
        raise cursor.fail(f"the lists hold {total} vectors but the header says ntotal = {header.ntotal}")
    needed = total * (code_size + 8)
    if needed != cursor.remaining:
        relation = "more" if needed > cursor.remaining else "fewer"
        raise cursor.fail(
            f"the lists need {needed} bytes for {total} vectors and ids, {relation} than the {cursor.remaining} left"
        )

    vectors = np.empty((total, d), dtype=np.float32)
    ids = np.empty(total, dtype=np.int64)
    offsets = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    for list_no in np.flatnonzero(sizes):
        start, stop = offsets[list_no], offsets[list_no + 1]
        n = int(stop - start)
        # The vectors first, then the ids (write_InvertedLists); reading the ids first is a known port bug.
        cursor.read_into(vectors[start:stop], f"list {list_no}'s vectors")
        cursor.read_into(ids[start:stop], f"list {list_no}'s ids")

    if total and (ids.min() < 0 or ids.max() >= total):
        bad = int(ids[(ids < 0) | (ids >= total)][0])
        raise cursor.fail(f"a list holds id {bad}, outside 0..{total - 1}")
    if total and np.any(np.bincount(ids, minlength=total) != 1):
        raise cursor.fail("an id appears in more than one place, so the vectors cannot be put back in id order")
    if not np.isfinite(centroids).all():
        raise cursor.fail("a centroid holds NaN or Inf")
    if not np.isfinite(vectors).all():
        raise cursor.fail("a stored vector holds NaN or Inf")
    return IvfFlatIndex(
        d=d, nlist=int(nlist), nprobe=int(nprobe), ntotal=total, metric="l2",
        centroids=np.array(centroids, dtype=np.float32), list_offsets=offsets, vectors=vectors, ids=ids,
        list_sizes_form=form,
    )
