"""Print the README's retrieval parity table: the MLX reference's search and blend against faiss-cpu and
upstream's retrieval lines, for a v1 (256-d) and a v2 (768-d) index, and what float16 vectors cost.

    python scripts/index_parity_table.py [--rows 100000] [--queries 10000]

Each index is built as tests/test_index_search.py builds it (demo features, train_index's list count, the
coarse centroids taken from the features, written by faiss); the queries fall near the stored vectors. The
float16 rows compare retrieval from an export with `--index-dtype float16` against the float32 file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    args = parser.parse_args()

    import faiss

    from rvc_ios_tools.core.diff import snr_db
    from rvc_ios_tools.index import demo, upstream
    from rvc_ios_tools.index.export import float16_effect
    from rvc_ios_tools.index.faiss_file import read_faiss_index
    from rvc_ios_tools.index.reference import SearchIndex, retrieval

    rows = {}
    for version, dim in (("v1", 256), ("v2", 768)):
        with tempfile.TemporaryDirectory() as tmp:
            features = demo.demo_features(args.rows, dim, seed=dim)
            nlist = demo.ivf_list_count(args.rows)
            centroids = features[np.random.default_rng(0).choice(args.rows, nlist, replace=False)]
            path = demo.build_index_on_centroids(features, centroids, Path(tmp) / "added.index")
            rng = np.random.default_rng(dim + 1)
            queries = features[rng.choice(args.rows, args.queries)] + np.float32(0.3) * rng.standard_normal(
                (args.queries, dim), dtype=np.float32)
            file_index = read_faiss_index(path)
            ours = retrieval(SearchIndex.from_file_index(file_index), queries)
            theirs = upstream.upstream_retrieval(upstream.faiss_index(path), queries, 0.75)
            effect = float16_effect(file_index, queries)
            rows[f"{version} ({dim}-d, {nlist} lists)"] = [
                f"{int(np.all(ours.search.ids == theirs['ids'], axis=1).sum())} of {args.queries}",
                *(f"{snr_db(theirs[key], value):.1f}" for key, value in (
                    ("scores", ours.search.scores), ("weights", ours.weights), ("retrieved", ours.retrieved),
                    ("blended", ours.blended))),
                f"{effect.ids_identical} of {effect.queries}",
                f"{effect.retrieved_snr_db:.1f}",
                f"{effect.blended_snr_db:.1f}",
            ]
    header = ["", "identical ids (all 8, in order)", "scores dB", "weights dB", "retrieved dB", "blended dB",
              "float16: identical ids", "float16: retrieved dB", "float16: blended dB"]
    print(f"MLX reference vs faiss-cpu {faiss.__version__} + upstream's retrieval, {args.queries} queries against "
          f"{args.rows} vectors, index_rate 0.75 (float16: export vs the float32 file, same queries).\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
