"""Demo indexes: content-like features from a seed, indexed as RVC's `train_index` indexes them.

No trained voice's features exist here, so `demo_features` draws clustered vectors (HuBERT frames of one
speaker gather around phones); `build_index` then follows `infer-web.py::train_index` (L616-711): shuffle,
`n_ivf = min(int(16 * sqrt(N)), N // 39)`, `faiss.index_factory(d, "IVF<n_ivf>,Flat")`, nprobe 1, train,
add in batches of 8192, `faiss.write_index`. Upstream's shuffle and MiniBatchKMeans are unseeded; here the
shuffle is seeded and the k-means reduction (only for more than 200 000 rows) is left out, so the same seed
gives the same file. faiss is imported lazily: it is a test and demo dependency, never a run-time one.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.files import atomic_output

# upstream: `for i in range(0, big_npy.shape[0], 8192): index.add(big_npy[i : i + 8192])`
ADD_BATCH = 8192


def demo_features(count: int, dim: int, seed: int = 0, clusters: int | None = None) -> np.ndarray:
    """(count, dim) float32 features around `clusters` random centres (default: one per 40 rows)."""
    rng = np.random.default_rng(seed)
    clusters = clusters or max(1, count // 40)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    members = rng.integers(0, clusters, size=count)
    return (centres[members] + np.float32(0.5) * rng.standard_normal((count, dim), dtype=np.float32)).astype(np.float32)


def queries_near(vectors: np.ndarray, count: int, seed: int, noise: float) -> np.ndarray:
    """(count, d) float32 queries: stored vectors (distinct while there are enough) moved by Gaussian noise of
    `noise` times the vectors' spread, so each falls near the stored ones, as a voice's frames fall near its
    training frames, and never on one (a zero distance is NaN upstream)."""
    rng = np.random.default_rng(seed)
    vectors = np.asarray(vectors, dtype=np.float32)
    rows = rng.choice(len(vectors), size=count, replace=count > len(vectors))
    spread = float(vectors.std()) or 1.0
    moved = vectors[rows] + np.float32(noise * spread) * rng.standard_normal((count, vectors.shape[1]), dtype=np.float32)
    return moved.astype(np.float32)


def ivf_list_count(rows: int) -> int:
    """upstream: `n_ivf = min(int(16 * np.sqrt(big_npy.shape[0])), big_npy.shape[0] // 39)`."""
    return min(int(16 * math.sqrt(rows)), rows // 39)


def _write(index, path: Path) -> Path:
    import faiss

    with atomic_output(Path(path)) as tmp:
        faiss.write_index(index, str(tmp))
    return Path(path)


def build_index(features: np.ndarray, path: Path, seed: int = 0, nprobe: int = 1, trained_path: Path | None = None) -> Path:
    """Index `features` as `train_index` does and write the `added_*` file (and the `trained_*` one if asked)."""
    import faiss

    rng = np.random.default_rng(seed)
    big_npy = np.ascontiguousarray(features[rng.permutation(len(features))], dtype=np.float32)
    n_ivf = ivf_list_count(len(big_npy))
    index = faiss.index_factory(big_npy.shape[1], f"IVF{n_ivf},Flat")
    faiss.extract_index_ivf(index).nprobe = nprobe
    index.train(big_npy)
    if trained_path is not None:
        _write(index, trained_path)
    for start in range(0, len(big_npy), ADD_BATCH):
        index.add(big_npy[start:start + ADD_BATCH])
    return _write(index, path)


def build_index_on_centroids(features: np.ndarray, centroids: np.ndarray, path: Path, nprobe: int = 1) -> Path:
    """An IndexIVFFlat like `build_index`'s, its coarse centroids given instead of trained (k-means on 100 000
    x 768 rows takes minutes; the file format and the search are the same)."""
    import faiss

    d = features.shape[1]
    quantizer = faiss.IndexFlatL2(d)
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    index = faiss.IndexIVFFlat(quantizer, d, len(centroids))
    index.nprobe = nprobe
    features = np.ascontiguousarray(features, dtype=np.float32)
    for start in range(0, len(features), ADD_BATCH):
        index.add(features[start:start + ADD_BATCH])
    return _write(index, path)
