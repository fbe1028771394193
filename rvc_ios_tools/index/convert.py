"""The exported index's tensors: one table read by the converter, the manifest writer, the loader and the tests.

An IndexIVFFlat becomes four tensors (layout letters: L list, C channels, N stored vectors):
the coarse centroids, every list's vectors one list after another (the file's order), their faiss ids, and
where each list starts. A port searches exactly as faiss does from these alone; the vectors in id order
(upstream's `big_npy`) are `vectors[position of id]`, a permutation the loader builds from `ids`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.errors import ManifestError
from .faiss_file import IvfFlatIndex
from .reference import SearchIndex

DTYPES = ("float32", "float16")


@dataclasses.dataclass(frozen=True)
class IndexTensor:
    key: str
    layout: str
    shape: str  # in terms of the manifest's index fields
    what: str


# key -> how it is stored. Only `index.vectors` takes the export's dtype; the centroids stay float32 (they are
# 1/39 of the data and decide which list is scanned) and ids and offsets are int64 as faiss stores them.
INDEX_TENSORS = (
    IndexTensor("index.centroids", "LC", "nlist x d", "the coarse quantizer's centroids (IndexFlatL2), float32"),
    IndexTensor("index.vectors", "NC", "ntotal x d", "every list's vectors, list 0 first, each in its file order"),
    IndexTensor("index.ids", "N", "ntotal", "the faiss id (insertion order) of each row of index.vectors"),
    IndexTensor("index.list_offsets", "L", "nlist + 1", "list i is rows list_offsets[i]:list_offsets[i + 1]"),
)
LAYOUTS = {tensor.key: tensor.layout for tensor in INDEX_TENSORS}


def index_tensors(index: IvfFlatIndex, dtype: str = "float32") -> dict[str, np.ndarray]:
    """The exported tensors of `index`, the vectors stored as `dtype`."""
    if dtype not in DTYPES:
        raise ValueError(f"index dtype {dtype!r} is not one of {DTYPES}")
    return {
        "index.centroids": np.ascontiguousarray(index.centroids, dtype=np.float32),
        "index.vectors": np.ascontiguousarray(index.vectors, dtype=np.dtype(dtype)),
        "index.ids": np.ascontiguousarray(index.ids, dtype=np.int64),
        "index.list_offsets": np.ascontiguousarray(index.list_offsets, dtype=np.int64),
    }


def search_index_from_export(fields: dict, tensors: dict[str, np.ndarray], where: str = "the export") -> SearchIndex:
    """A `SearchIndex` from an exported manifest's `index` fields and its tensors, every shape and id checked."""
    d, nlist, ntotal = fields["d"], fields["nlist"], fields["ntotal"]
    expected = {
        "index.centroids": (nlist, d), "index.vectors": (ntotal, d), "index.ids": (ntotal,),
        "index.list_offsets": (nlist + 1,),
    }
    for key, shape in expected.items():
        if key not in tensors:
            raise ManifestError(f"{where} has no `{key}`; export the index again.")
        if tuple(tensors[key].shape) != shape:
            raise ManifestError(f"`{key}` in {where} has shape {list(tensors[key].shape)}, not {list(shape)}; export the index again.")
    offsets, ids = tensors["index.list_offsets"], tensors["index.ids"]
    if offsets[0] != 0 or offsets[-1] != ntotal or np.any(np.diff(offsets) < 0):
        raise ManifestError(f"`index.list_offsets` in {where} do not run from 0 to ntotal; export the index again.")
    if ntotal and (ids.min() < 0 or ids.max() >= ntotal or np.any(np.bincount(ids, minlength=ntotal) != 1)):
        raise ManifestError(f"`index.ids` in {where} are not each of 0..ntotal-1 once; export the index again.")
    return SearchIndex(tensors["index.centroids"], offsets, tensors["index.vectors"], ids, int(fields["nprobe"]))
