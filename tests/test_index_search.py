"""The reference search and blend held to faiss-cpu and upstream's retrieval lines."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from rvc_ios_tools.core.diff import snr_db
from rvc_ios_tools.index import demo, reference, upstream
from rvc_ios_tools.index.faiss_file import read_faiss_index
from rvc_ios_tools.index.reference import FLT_MAX, SearchIndex, retrieval

INDEX_RATE = 0.75


def ours_and_faiss(path, queries, index_rate=INDEX_RATE):
    ours = retrieval(SearchIndex.from_file_index(read_faiss_index(path)), queries, index_rate)
    theirs = upstream.upstream_retrieval(upstream.faiss_index(path), queries, index_rate)
    return ours, theirs


def near_queries(features, count, seed, noise=0.3):
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(features), size=count)
    return (features[rows] + np.float32(noise) * rng.standard_normal((count, features.shape[1]), dtype=np.float32))


@pytest.mark.parametrize("dim", [256, 768], ids=["v1-256", "v2-768"])
def test_ten_thousand_queries_against_a_hundred_thousand_vectors_match_faiss(dim, tmp_path):
    faiss.omp_set_num_threads(2)
    features = demo.demo_features(100_000, dim, seed=dim)
    nlist = demo.ivf_list_count(len(features))  # 2564, as train_index picks for 100 000 rows
    centroids = features[np.random.default_rng(0).choice(len(features), nlist, replace=False)]
    path = demo.build_index_on_centroids(features, centroids, tmp_path / f"added_IVF{nlist}_Flat_nprobe_1_x_v.index")
    queries = near_queries(features, 10_000, seed=dim + 1)
    ours, theirs = ours_and_faiss(path, queries)
    assert np.array_equal(ours.search.ids, theirs["ids"]), f"{np.sum(np.any(ours.search.ids != theirs['ids'], axis=1))} queries differ"
    assert snr_db(theirs["scores"], ours.search.scores) >= 100
    assert snr_db(theirs["weights"], ours.weights) >= 100
    assert snr_db(theirs["retrieved"], ours.retrieved) >= 100
    assert snr_db(theirs["blended"], ours.blended) >= 100


def test_an_index_trained_by_faiss_on_unclustered_data_matches(tmp_path):
    # Random 768-d data has no clusters, so many queries sit near the boundary between two lists.
    features = np.random.default_rng(5).standard_normal((4000, 768)).astype(np.float32)
    path = demo.build_index(features, tmp_path / "added.index", seed=5)
    ours, theirs = ours_and_faiss(path, np.random.default_rng(6).standard_normal((2000, 768)).astype(np.float32))
    assert np.array_equal(ours.search.ids, theirs["ids"])
    assert snr_db(theirs["retrieved"], ours.retrieved) >= 100


def one_list_index(tmp_path, vectors, nprobe=1, name="one.index"):
    centroids = np.zeros((1, vectors.shape[1]), dtype=np.float32)
    return demo.build_index_on_centroids(vectors, centroids, tmp_path / name, nprobe=nprobe)


def test_ties_at_the_eighth_place_keep_what_faiss_keeps(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((1, 16)).astype(np.float32)
    # Twelve copies of one vector (equal distances, different ids) among other vectors, in shuffled order.
    vectors = np.concatenate([np.repeat(base, 12, axis=0), rng.standard_normal((30, 16)).astype(np.float32) + 3])
    vectors = vectors[rng.permutation(len(vectors))]
    path = one_list_index(tmp_path, vectors)
    queries = np.concatenate([base + 0.01 * rng.standard_normal((5, 16)).astype(np.float32), vectors[:3] + 0.01])
    ours, theirs = ours_and_faiss(path, queries.astype(np.float32))
    np.testing.assert_array_equal(ours.search.ids, theirs["ids"])
    assert snr_db(theirs["scores"], ours.search.scores) >= 100


def test_missing_results_are_minus_one_and_flt_max_with_weight_zero(tmp_path):
    vectors = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    path = one_list_index(tmp_path, vectors)
    queries = np.random.default_rng(2).standard_normal((4, 16)).astype(np.float32)
    ours, theirs = ours_and_faiss(path, queries)
    np.testing.assert_array_equal(ours.search.ids, theirs["ids"])
    assert (ours.search.ids[:, 5:] == -1).all() and (ours.search.scores[:, 5:] == np.float32(FLT_MAX)).all()
    assert (ours.weights[:, 5:] == 0).all()
    assert snr_db(theirs["retrieved"], ours.retrieved) >= 100


def test_a_query_on_a_stored_vector_is_nan_as_upstream(tmp_path):
    vectors = np.random.default_rng(1).standard_normal((40, 16)).astype(np.float32)
    ours, theirs = ours_and_faiss(one_list_index(tmp_path, vectors), vectors[:2])
    assert np.isnan(ours.retrieved).all() and np.isnan(theirs["retrieved"]).all()


@pytest.mark.parametrize("nprobe", [2, 5, 50])
def test_nprobe_from_the_file_is_honoured_and_clamped_to_nlist(tmp_path, nprobe):
    features = demo.demo_features(3000, 32, seed=nprobe)
    path = demo.build_index_on_centroids(features, features[:20], tmp_path / "p.index", nprobe=nprobe)
    ours, theirs = ours_and_faiss(path, near_queries(features, 500, seed=1, noise=1.0))
    assert ours.search.lists.shape[1] == min(nprobe, 20)
    assert np.array_equal(ours.search.ids, theirs["ids"])
    assert snr_db(theirs["retrieved"], ours.retrieved) >= 100


def test_the_blend_is_torchs_float32_arithmetic():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    retrieved, feats = (rng.standard_normal((50, 768)).astype(np.float32) for _ in range(2))
    for index_rate in (0.75, 0.33, 1.0):
        expected = torch.from_numpy(retrieved).unsqueeze(0) * index_rate + (1 - index_rate) * torch.from_numpy(feats).unsqueeze(0)
        np.testing.assert_array_equal(reference.blend(retrieved, feats, index_rate), expected[0].numpy())
