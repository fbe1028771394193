"""faiss-cpu as the ground truth: upstream's own calls (`faiss.read_index`, `reconstruct_n`, `index.search`) and
its retrieval lines, verbatim. faiss is imported lazily; nothing at run time needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .reference import K


def faiss_index(path: Path):
    import faiss

    return faiss.read_index(str(path))


def faiss_search(index, queries: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """upstream: `score, ix = index.search(npy, k=8)`; (T, k) float32 squared distances and int64 ids."""
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def upstream_retrieval(index, feats: np.ndarray, index_rate: float) -> dict[str, np.ndarray]:
    """pipeline.py L233-245 on (T, C) float32 features, as numpy (torch's blend is the same float32 arithmetic)."""
    big_npy = index.reconstruct_n(0, index.ntotal)
    npy = np.asarray(feats, dtype=np.float32)
    score, ix = index.search(npy, k=8)
    with np.errstate(divide="ignore", invalid="ignore"):  # upstream's NaN on an exact match, without the warning
        weight = np.square(1 / score)
        weight /= weight.sum(axis=1, keepdims=True)
    retrieved = np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)
    blended = retrieved * np.float32(index_rate) + np.float32(1 - index_rate) * npy
    return {"scores": score, "ids": ix, "weights": weight, "retrieved": retrieved, "blended": blended}
