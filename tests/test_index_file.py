"""Reading faiss IndexIVFFlat files without faiss: every field as faiss reads it, every malformed file refused."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from faiss.contrib.inspect_tools import get_invlist

from rvc_ios_tools.core.errors import CorruptFileError, RvcIosError
from rvc_ios_tools.index.faiss_file import CorruptIndexError, UnsupportedIndexError, read_faiss_index

D, NLIST, ROWS = 8, 6, 300
HEADER = 4 + 4 + 8 + 8 + 8 + 1 + 4  # fourcc, d, ntotal, two dummies, is_trained, metric_type


def layout(nlist: int = NLIST, d: int = D) -> dict[str, int]:
    """Byte offsets of the fields of an IwFl file with 'full' list sizes."""
    at = {"ntotal": 8, "is_trained": 32, "metric": 33, "nlist": HEADER, "nprobe": HEADER + 8}
    at["quantizer"] = HEADER + 16
    at["quantizer_d"] = at["quantizer"] + 4
    at["centroid_count"] = at["quantizer"] + HEADER
    at["centroids"] = at["centroid_count"] + 8
    at["direct_map"] = at["centroids"] + 4 * nlist * d
    at["ilar"] = at["direct_map"] + 1 + 8
    at["code_size"] = at["ilar"] + 12
    at["form"] = at["ilar"] + 20
    at["sizes"] = at["form"] + 4 + 8
    at["lists"] = at["sizes"] + 8 * nlist
    return at


def write_ivf_flat(path: Path, rows: int = ROWS, nlist: int = NLIST, d: int = D, nprobe: int = 1, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, d)).astype(np.float32)
    quantizer = faiss.IndexFlatL2(d)
    quantizer.add(rng.standard_normal((nlist, d)).astype(np.float32))
    index = faiss.IndexIVFFlat(quantizer, d, nlist)
    index.nprobe = nprobe
    if rows:
        index.add(x)
    faiss.write_index(index, str(path))
    return path


@pytest.fixture
def index_file(tmp_path) -> Path:
    return write_ivf_flat(tmp_path / "added_IVF6_Flat_nprobe_1_demo_v2.index")


def patched(path: Path, offset: int, data: bytes) -> Path:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    out = path.with_name("patched.index")
    out.write_bytes(bytes(raw))
    return out


def first_list(path: Path) -> tuple[int, int]:
    """(list number, size) of the first non-empty list of a 'full' file."""
    at = layout()
    sizes = np.frombuffer(path.read_bytes()[at["sizes"]:at["sizes"] + 8 * NLIST], dtype="<u8")
    number = int(np.flatnonzero(sizes)[0])
    return number, int(sizes[number])


def refused(path: Path, kind=CorruptIndexError) -> str:
    with pytest.raises(kind) as caught:
        read_faiss_index(path)
    message = str(caught.value)
    assert message.count("\n") == 0 and message.endswith("."), message
    return message


# --- what faiss wrote, read back ---


def test_every_field_matches_what_faiss_reads(index_file):
    ours = read_faiss_index(index_file)
    theirs = faiss.read_index(str(index_file))
    ivf = faiss.extract_index_ivf(theirs)
    assert (ours.d, ours.nlist, ours.nprobe, ours.ntotal, ours.metric) == (theirs.d, ivf.nlist, ivf.nprobe, theirs.ntotal, "l2")
    np.testing.assert_array_equal(ours.centroids, faiss.downcast_index(ivf.quantizer).reconstruct_n(0, ivf.nlist))
    np.testing.assert_array_equal(ours.vectors_by_id(), theirs.reconstruct_n(0, theirs.ntotal))
    invlists = ivf.invlists
    for list_no in range(ivf.nlist):
        start, stop = ours.list_offsets[list_no], ours.list_offsets[list_no + 1]
        assert stop - start == invlists.list_size(list_no)
        ids, codes = get_invlist(invlists, list_no)
        np.testing.assert_array_equal(ours.ids[start:stop], ids)
        np.testing.assert_array_equal(ours.vectors[start:stop], codes.view(np.float32).reshape(-1, D))
    assert ours.list_sizes_form == "full"


def test_sparse_list_sizes_are_read(tmp_path):
    # Three vectors fill at most 3 of 20 lists: faiss writes 'sprs' when no more than half are used.
    path = write_ivf_flat(tmp_path / "sparse.index", rows=3, nlist=20)
    ours = read_faiss_index(path)
    assert ours.list_sizes_form == "sprs"
    np.testing.assert_array_equal(ours.vectors_by_id(), faiss.read_index(str(path)).reconstruct_n(0, 3))


def test_a_trained_but_empty_index_reads_as_zero_vectors(tmp_path):
    ours = read_faiss_index(write_ivf_flat(tmp_path / "trained.index", rows=0))
    assert ours.ntotal == 0 and ours.vectors.shape == (0, D) and ours.list_sizes_form == "sprs"


def test_nprobe_is_read_from_the_file(tmp_path):
    assert read_faiss_index(write_ivf_flat(tmp_path / "p3.index", nprobe=3)).nprobe == 3


# --- malformed files ---


@pytest.mark.parametrize("keep", [0, 3, 4, 20, 40, 60, 100, 150, -9, -1])
def test_a_truncated_file_is_refused(index_file, keep):
    raw = index_file.read_bytes()
    cut = index_file.with_name("cut.index")
    cut.write_bytes(raw[:keep] if keep >= 0 else raw[:len(raw) + keep])
    message = refused(cut)
    assert "empty" in message or "left" in message or "fewer" in message or "more" in message


def test_trailing_bytes_are_refused(index_file):
    grown = index_file.with_name("grown.index")
    grown.write_bytes(index_file.read_bytes() + b"\0" * 8)
    assert "fewer than" in refused(grown)


def test_a_file_that_is_no_index_is_refused(tmp_path):
    path = tmp_path / "noise.index"
    path.write_bytes(bytes([0x89, 0x01, 0xfe, 0x00]) + bytes(100))
    assert "not a faiss index type" in refused(path)


@pytest.mark.parametrize("fourcc, named", [
    ("IvFl", "legacy IndexIVFFlat"), ("IwPQ", "IndexIVFPQ"), ("IHNf", "HNSW"), ("IxF2", "flat IndexFlatL2"),
])
def test_other_index_types_are_refused_by_name(index_file, fourcc, named):
    message = refused(patched(index_file, 0, fourcc.encode()), UnsupportedIndexError)
    assert named in message and "IwFl" in message


def test_a_real_ivf_pq_and_hnsw_from_faiss_are_refused_by_name(tmp_path):
    x = np.random.default_rng(0).standard_normal((600, 16)).astype(np.float32)
    pq = faiss.index_factory(16, "IVF4,PQ4x4")
    pq.train(x)
    faiss.write_index(pq, str(tmp_path / "pq.index"))
    assert "IndexIVFPQ" in refused(tmp_path / "pq.index", UnsupportedIndexError)
    hnsw = faiss.IndexHNSWFlat(16, 8)
    hnsw.add(x)
    faiss.write_index(hnsw, str(tmp_path / "hnsw.index"))
    assert "IndexHNSWFlat" in refused(tmp_path / "hnsw.index", UnsupportedIndexError)


def test_an_inner_product_index_is_refused(tmp_path):
    x = np.random.default_rng(0).standard_normal((100, D)).astype(np.float32)
    index = faiss.index_factory(D, "IVF2,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    faiss.write_index(index, str(tmp_path / "ip.index"))
    assert "inner product" in refused(tmp_path / "ip.index", UnsupportedIndexError)


def test_an_untrained_index_is_refused(index_file):
    assert "untrained" in refused(patched(index_file, layout()["is_trained"], b"\0"))


def test_a_list_larger_than_the_file_is_refused(index_file):
    number, _ = first_list(index_file)
    path = patched(index_file, layout()["sizes"] + 8 * number, struct.pack("<Q", 10**6))
    assert "more than the file holds" in refused(path) or "more than" in refused(path)


def test_ntotal_disagreeing_with_the_lists_is_refused(index_file):
    assert "ntotal" in refused(patched(index_file, layout()["ntotal"], struct.pack("<q", ROWS + 1)))


@pytest.mark.parametrize("field, value", [
    ("ntotal", struct.pack("<q", 1 << 62)),
    ("nlist", struct.pack("<Q", 1 << 62)),
    ("centroid_count", struct.pack("<Q", 1 << 62)),
    ("sizes", struct.pack("<Q", 1 << 62)),
])
def test_huge_claimed_sizes_are_refused_without_allocating_them(index_file, field, value):
    path = patched(index_file, layout()[field], value)
    tracemalloc.start()
    try:
        refused(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_code_size_other_than_one_float_vector_is_refused(index_file):
    assert "code size" in refused(patched(index_file, layout()["code_size"], struct.pack("<Q", 4 * D + 1)))


def test_a_quantizer_of_another_dimension_is_refused(index_file):
    assert "quantizer" in refused(patched(index_file, layout()["quantizer_d"], struct.pack("<i", D + 1)))


def test_an_id_out_of_range_is_refused(index_file):
    number, size = first_list(index_file)
    ids_at = layout()["lists"] + size * 4 * D  # the first list's vectors come first, then its ids
    assert f"outside 0..{ROWS - 1}" in refused(patched(index_file, ids_at, struct.pack("<q", ROWS + 7)))
    assert "outside" in refused(patched(index_file, ids_at, struct.pack("<q", -2)))


def test_a_repeated_id_is_refused(index_file):
    number, size = first_list(index_file)
    ids_at = layout()["lists"] + size * 4 * D
    second = index_file.read_bytes()[ids_at + 8:ids_at + 16]
    assert "more than one place" in refused(patched(index_file, ids_at, second))


def test_a_nan_vector_is_refused(index_file):
    assert "NaN" in refused(patched(index_file, layout()["lists"], struct.pack("<f", float("nan"))))


def test_errors_are_the_packages_file_errors(index_file):
    assert issubclass(CorruptIndexError, CorruptFileError) and issubclass(UnsupportedIndexError, RvcIosError)
    refused(index_file.with_name("missing.index"))
