"""Retrieval as upstream does it: faiss's IVF-Flat search (nprobe lists, the 8 nearest), then the (1/score)^2 blend.

Upstream (`Pipeline.vc`, pipeline.py L221-245), on the 50 fps content features before the x2 upsampling:

    score, ix = index.search(npy, k=8)                 # IVF, nprobe from the file (RVC: 1); squared L2
    weight = np.square(1 / score)
    weight /= weight.sum(axis=1, keepdims=True)
    npy = np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)
    feats = npy * index_rate + (1 - index_rate) * feats

The search follows faiss (IndexIVF::search, IndexFlatL2 quantizer, IVFFlatScanner):
- the coarse step takes each query's `nprobe` nearest centroids by ‖q‖² + ‖c‖² − 2 q·c in float32 (faiss's
  BLAS form: faiss 1.15 takes it from 128 000 query floats on, 167 frames of 768 channels, faiss <= 1.8 from
  20 queries; smaller batches get the direct form there, which differs only on near-ties between two
  centroids: none in 6000 random 768-d queries), clamped at 0, ties to the lower list number;
- the lists are scanned in that order with the direct squared distance ‖q − x‖²; a result heap of k
  entries starts full of (FLT_MAX, -1) and a candidate replaces its largest (distance, id) entry only when
  strictly nearer, so on a tie at the k-th place the candidate scanned first stays; results come out
  sorted by (distance, id);
- a list shorter than k leaves (FLT_MAX, -1) entries; upstream's weight for those is 0 (1/FLT_MAX squared
  underflows) and `big_npy[-1]` reads the last row, multiplied by 0.
The blend is written with upstream's own numpy expressions, so its summation order is upstream's: the weight
sum over 8 values is numpy's pairwise sum, the sum over the 8 neighbours a sequential one. Squared norms and
distances are summed in the order of faiss's kernels (`lane_sum_of_squares`), so scores are faiss's to the bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .faiss_file import IvfFlatIndex

# upstream: `index.search(npy, k=8)`
K = 8
# RVC WebUI's default `index_rate`.
DEFAULT_INDEX_RATE = 0.75
FLT_MAX = float(np.finfo(np.float32).max)
MISSING_ID = -1
# faiss's float32 distance kernels on x86-64 with AVX-512 (the faiss-cpu wheels' build here) sum in 16 lanes.
FAISS_LANES = 16
# Queries x list entries x d floats measured at once when scanning a list (bounds the scratch memory).
SCAN_FLOATS = 1 << 22


@dataclasses.dataclass(frozen=True)
class SearchIndex:
    """What the search needs, from a `.index` file or its export: centroids, lists and ids."""

    centroids: np.ndarray  # (nlist, d) float32
    list_offsets: np.ndarray  # (nlist + 1,) int64
    vectors: np.ndarray  # (ntotal, d) float32 (or float16 from an fp16 export), list order
    ids: np.ndarray  # (ntotal,) int64, list order
    nprobe: int

    @classmethod
    def from_file_index(cls, index: IvfFlatIndex) -> "SearchIndex":
        return cls(index.centroids, index.list_offsets, index.vectors, index.ids, index.nprobe)

    @property
    def nlist(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def ntotal(self) -> int:
        return int(self.ids.shape[0])

    def vectors_by_id(self) -> np.ndarray:
        """Upstream's `big_npy` (faiss `reconstruct_n(0, ntotal)`), float32."""
        out = np.empty(self.vectors.shape, dtype=np.float32)
        out[self.ids] = self.vectors
        return out


@dataclasses.dataclass(frozen=True)
class SearchResult:
    lists: np.ndarray  # (T, nprobe) int64: the probed lists, nearest first
    scores: np.ndarray  # (T, k) float32: squared L2, ascending; FLT_MAX where missing
    ids: np.ndarray  # (T, k) int64; -1 where missing


def coarse_lists(centroids: np.ndarray, queries: np.ndarray, nprobe: int) -> np.ndarray:
    """(T, min(nprobe, nlist)) int64: each query's nearest centroids, nearest first, ties to the lower number."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    probes = min(int(nprobe), centroids.shape[0])
    distances = coarse_distances(centroids, queries)
    if probes == 1:
        return np.argmin(distances, axis=1)[:, None].astype(np.int64)  # argmin: first of equal minima
    return np.argsort(distances, axis=1, kind="stable")[:, :probes].astype(np.int64)


def coarse_distances(centroids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """faiss's BLAS form of the squared distance, float32: ‖q‖² + ‖c‖² − 2 q·c, negatives clamped to 0."""
    query_norms = lane_sum_of_squares(queries)
    centroid_norms = lane_sum_of_squares(centroids)
    distances = query_norms[:, None] + centroid_norms[None, :]
    distances -= np.float32(2) * (queries @ centroids.T)
    np.maximum(distances, 0, out=distances)
    return distances


def search(index: SearchIndex, queries: np.ndarray, k: int = K, nprobe: int | None = None) -> SearchResult:
    """faiss `IndexIVFFlat.search(queries, k)` with the index's nprobe (or `nprobe`)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    lists = coarse_lists(index.centroids, queries, index.nprobe if nprobe is None else nprobe)
    scores = np.full((len(queries), k), FLT_MAX, dtype=np.float32)
    ids = np.full((len(queries), k), MISSING_ID, dtype=np.int64)
    offsets = index.list_offsets
    if lists.shape[1] == 1:
        # nprobe 1 (RVC's): group the queries by their list and measure each group against it at once.
        order = np.argsort(lists[:, 0], kind="stable")
        boundaries = np.flatnonzero(np.diff(lists[order, 0])) + 1
        for group in np.split(order, boundaries):
            if len(group):
                list_no = lists[group[0], 0]
                rows = slice(offsets[list_no], offsets[list_no + 1])
                _keep_nearest(queries[group], index.vectors[rows], index.ids[rows], scores, ids, group, k)
        return SearchResult(lists, scores, ids)
    for t in range(len(queries)):
        rows = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in lists[t]])
        _keep_nearest(queries[t:t + 1], index.vectors[rows], index.ids[rows], scores, ids, np.array([t]), k)
    return SearchResult(lists, scores, ids)


def squared_distances(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(Q, n) float32 ‖q − x‖², rounded as faiss's `fvec_L2sqr` rounds it (`lane_sum_of_squares`)."""
    return lane_sum_of_squares(queries[:, None, :] - vectors[None, :, :].astype(np.float32))


def lane_sum_of_squares(values: np.ndarray) -> np.ndarray:
    """Σ values² over the last axis in float32, in the order of faiss's AVX-512 kernels (`fvec_L2sqr`,
    `fvec_norm_L2sqr`): 16 lanes, each accumulating every 16th square by a fused multiply-add, then the lanes
    summed by halving (8 + 8, 4 + 4, 2 + 2, 1 + 1). A near-tie between two list entries is decided by the
    last bit, so only this order gives faiss's ids on every query (numpy's pairwise sum differs on about 1
    query in 10 000). Dimensions that are not a multiple of 16 add the remainder one by one at the end.
    """
    values = np.asarray(values, dtype=np.float32)
    d = values.shape[-1]
    whole = d - d % FAISS_LANES
    lanes = values[..., :whole].reshape(*values.shape[:-1], whole // FAISS_LANES, FAISS_LANES)
    accumulator = np.zeros((*values.shape[:-1], FAISS_LANES), dtype=np.float64)
    for step in range(lanes.shape[-2]):
        term = lanes[..., step, :].astype(np.float64)
        # A float32 FMA: the float64 product of two float32 values is exact, so one rounding to float32
        # after the add is the FMA's single rounding.
        accumulator = (accumulator + term * term).astype(np.float32).astype(np.float64)
    total = accumulator.astype(np.float32)
    while total.shape[-1] > 1:
        half = total.shape[-1] // 2
        total = total[..., :half] + total[..., half:]
    total = total[..., 0]
    for i in range(whole, d):
        total = total + values[..., i] * values[..., i]
    return total


def _keep_nearest(queries, vectors, vector_ids, scores, ids, rows, k) -> None:
    """Fill `scores[rows]`, `ids[rows]` with faiss's k results for candidates scanned in the order given."""
    n = len(vector_ids)
    if n == 0:
        return
    distances = np.concatenate([
        squared_distances(queries[start:start + chunk], vectors)
        for chunk in [max(1, SCAN_FLOATS // max(1, n * vectors.shape[1]))]
        for start in range(0, len(queries), chunk)
    ])
    candidates = np.broadcast_to(vector_ids, distances.shape)
    # (distance, id) order; faiss's result is these k smallest unless the k-th and (k+1)-th distances tie.
    order = np.lexsort((candidates, distances), axis=1)
    taken = min(k, n)
    best = order[:, :taken]
    scores[rows, :taken] = np.take_along_axis(distances, best, axis=1)
    ids[rows, :taken] = np.take_along_axis(candidates, best, axis=1)
    if n > k:
        sorted_distances = np.take_along_axis(distances, order[:, k - 1:k + 1], axis=1)
        for i in np.flatnonzero(sorted_distances[:, 0] == sorted_distances[:, 1]):
            scores[rows[i]], ids[rows[i]] = _heap_results(distances[i], vector_ids, k)


def _heap_results(distances: np.ndarray, vector_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's result heap, step by step, for a query whose k-th place is tied."""
    heap = [(FLT_MAX, MISSING_ID)] * k
    for distance, vector_id in zip(distances.tolist(), vector_ids.tolist()):
        largest = max(heap)
        if distance < largest[0]:
            heap[heap.index(largest)] = (distance, vector_id)
    heap.sort()
    return (np.array([d for d, _ in heap], dtype=np.float32), np.array([i for _, i in heap], dtype=np.int64))


def retrieval_weights(scores: np.ndarray) -> np.ndarray:
    """Upstream's weights: (1/score)^2 normalised per row, float32 (score is already a squared distance)."""
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        weight = np.square(1 / scores)
        weight /= weight.sum(axis=1, keepdims=True)
    return weight


def retrieve(big_npy: np.ndarray, ids: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Upstream's `np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)`; id -1 reads the last row."""
    return np.sum(big_npy[ids] * np.expand_dims(weight, axis=2), axis=1)


def blend(retrieved: np.ndarray, feats: np.ndarray, index_rate: float) -> np.ndarray:
    """Upstream's `npy * index_rate + (1 - index_rate) * feats` in float32 (torch multiplies by float32 scalars)."""
    return retrieved * np.float32(index_rate) + np.float32(1 - index_rate) * feats


@dataclasses.dataclass(frozen=True)
class Retrieval:
    search: SearchResult
    weights: np.ndarray  # (T, k) float32
    retrieved: np.ndarray  # (T, C) float32
    blended: np.ndarray  # (T, C) float32


def retrieval(index: SearchIndex, feats: np.ndarray, index_rate: float = DEFAULT_INDEX_RATE,
              big_npy: np.ndarray | None = None) -> Retrieval:
    """The whole of upstream's retrieval for (T, C) float32 features."""
    feats = np.asarray(feats, dtype=np.float32)
    found = search(index, feats)
    weights = retrieval_weights(found.scores)
    retrieved = retrieve(index.vectors_by_id() if big_npy is None else big_npy, found.ids, weights)
    return Retrieval(found, weights, retrieved, blend(retrieved, feats, index_rate))
