"""Published retrieval porting mistakes, each made in the reference and run through the golden diff: it must
name the stage where the mistake happens. (Retrieval after the x2 upsampling needs the whole pipeline and
belongs to the pipeline's catalogue.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from catalogue_log import log_report
from rvc_ios_tools.core.diff import compare_golden
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.index import reference
from rvc_ios_tools.index.faiss_file import read_faiss_index
from rvc_ios_tools.index.golden import index_golden_tensors
from rvc_ios_tools.index.reference import SearchIndex

REPO = Path(__file__).resolve().parent.parent
FIXTURE = "tiny-index"


@pytest.fixture(scope="module")
def golden():
    return read_golden(REPO / "golden" / FIXTURE)


@pytest.fixture(scope="module")
def index():
    return SearchIndex.from_file_index(read_faiss_index(REPO / "swift_fixtures" / f"{FIXTURE}.index"))


def feats_of(golden) -> np.ndarray:
    return golden.tensors["feats"][0]


def diff(golden, candidate: dict[str, np.ndarray]):
    return log_report(compare_golden(golden, candidate, {}))


def downstream_of_scores(golden, search: reference.SearchResult, weights: np.ndarray, big_npy: np.ndarray) -> dict:
    """A candidate's tensors from its own search and weights on, blended at the golden's index_rate."""
    retrieved = reference.retrieve(big_npy, search.ids, weights)
    blended = reference.blend(retrieved, feats_of(golden), golden.index["extra"]["index_rate"])
    return {"coarse.lists": search.lists[None], "search.ids": search.ids[None], "search.scores": search.scores[None],
            "weights": weights[None], "retrieved": retrieved[None], "blended": blended[None]}


def test_the_reference_itself_passes_every_stage(golden, index):
    report = diff(golden, index_golden_tensors(index, golden.tensors["feats"], golden.index["extra"]["index_rate"]))
    assert report.passed and report.first_divergent_stage is None


def test_ids_read_before_vectors_diverge_at_search(golden, index):
    """A reader that takes each list's ids first: the file stores the n vectors first, then the n ids."""
    raw = (REPO / "swift_fixtures" / f"{FIXTURE}.index").read_bytes()
    d, ntotal = index.vectors.shape[1], index.ntotal
    at = len(raw) - ntotal * (4 * d + 8)  # the lists fill the end of the file
    vectors, ids = np.empty_like(index.vectors), np.empty_like(index.ids)
    for start, stop in zip(index.list_offsets[:-1], index.list_offsets[1:]):
        n = int(stop - start)
        ids[start:stop] = np.frombuffer(raw, "<i8", n, at)
        vectors[start:stop] = np.frombuffer(raw, "<f4", n * d, at + 8 * n).reshape(n, d)
        at += n * (4 * d + 8)
    found = reference.search(dataclasses.replace(index, vectors=vectors, ids=ids), feats_of(golden))
    candidate = {"coarse.lists": found.lists[None], "search.ids": found.ids[None], "search.scores": found.scores[None]}
    assert diff(golden, candidate).first_divergent_stage == "search"


def test_weights_of_one_over_d_diverge_at_weights(golden, index):
    found = reference.search(index, feats_of(golden))
    weights = 1 / np.sqrt(found.scores)  # the Euclidean distance, not upstream's (1/score)^2
    weights /= weights.sum(axis=1, keepdims=True)
    assert diff(golden, downstream_of_scores(golden, found, weights, index.vectors_by_id())).first_divergent_stage == "weights"


def test_one_over_d_squared_of_the_euclidean_distance_diverges_at_weights(golden, index):
    found = reference.search(index, feats_of(golden))
    weights = 1 / found.scores  # 1/d^2 with d the Euclidean distance; upstream squares 1/score, so 1/d^4
    weights /= weights.sum(axis=1, keepdims=True)
    assert diff(golden, downstream_of_scores(golden, found, weights, index.vectors_by_id())).first_divergent_stage == "weights"


def test_exact_search_instead_of_ivf_diverges_at_search(golden, index):
    """A brute-force k-nearest search over every vector; the file says IVF with nprobe 1."""
    everything = SearchIndex(np.zeros((1, index.vectors.shape[1]), np.float32), np.array([0, index.ntotal]),
                             index.vectors, index.ids, 1)
    found = reference.search(everything, feats_of(golden))
    candidate = downstream_of_scores(golden, found, reference.retrieval_weights(found.scores), index.vectors_by_id())
    del candidate["coarse.lists"]  # such a port has no coarse step
    assert diff(golden, candidate).first_divergent_stage == "search"


def test_nprobe_ignored_diverges_at_coarse(index, tmp_path):
    """A port that always scans one list, against a file that says nprobe 3."""
    faiss = pytest.importorskip("faiss")
    from rvc_ios_tools.index import demo
    from rvc_ios_tools.index.export import export_index
    from rvc_ios_tools.index.golden import generate_index_golden

    features = demo.demo_features(400, 32, seed=5)
    path = demo.build_index(features, tmp_path / "added_IVF10_Flat_nprobe_3_x_v2.index", seed=5, nprobe=3)
    assert faiss.extract_index_ivf(faiss.read_index(str(path))).nprobe == 3
    export_index(path, tmp_path, "p3")
    golden = generate_index_golden(tmp_path, "p3", tmp_path / "golden", seed=5, seconds=0.8)
    three = SearchIndex.from_file_index(read_faiss_index(path))
    found = reference.search(three, feats_of(golden), nprobe=1)
    candidate = downstream_of_scores(golden, found, reference.retrieval_weights(found.scores), three.vectors_by_id())
    assert diff(golden, candidate).first_divergent_stage == "coarse"
