"""Fuzz target py-faiss: an RVC `.index` file through `read_faiss_index` and the tensors `rvc-ios export --index`
makes of it (the vectors put back in id order, as upstream's `big_npy`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import harness

with harness.instrumented():
    from rvc_ios_tools.index.convert import index_tensors
    from rvc_ios_tools.index.faiss_file import read_faiss_index

scratch = harness.ScratchFiles()


def read(data: bytes) -> None:
    index = read_faiss_index(scratch.write("added.index", data))
    index_tensors(index, "float16")
    index.vectors_by_id()


def write_seeds(folder: Path) -> None:
    import numpy as np

    from rvc_ios_tools.index.demo import build_index, build_index_on_centroids, demo_features

    shutil.copyfile(harness.REPO / "swift_fixtures" / "tiny-index.index", folder / "tiny-index.index")
    features = demo_features(200, 4, seed=1)
    build_index(features, folder / "full-lists.index")  # most lists hold vectors: sizes stored "full"
    # Centroids far from every vector but one: one non-empty list, sizes stored "sprs".
    centroids = np.concatenate([features[:1], np.full((7, 4), 100.0, np.float32)])
    build_index_on_centroids(features[:40], centroids, folder / "sparse-lists.index")


if __name__ == "__main__":
    harness.main(read, write_seeds)
