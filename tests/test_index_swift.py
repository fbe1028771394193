"""The Swift port's retrieval held to faiss-cpu itself on an index of real width (slow: builds the Swift package).

The release binary: a debug build's SIMD lanes take about a minute for the list scan here, release 0.05 s.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from rvc_ios_tools.core.diff import compare_golden, load_candidate, snr_db
from rvc_ios_tools.index import demo, upstream
from rvc_ios_tools.index.export import export_index
from rvc_ios_tools.index.golden import generate_index_golden

DEMOS = Path(__file__).resolve().parent.parent / "Demos"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("swift") is None, reason="needs the Swift toolchain")
def test_swift_ids_are_faiss_ids_on_a_thousand_frames(tmp_path):
    features = np.random.default_rng(7).standard_normal((20_000, 768)).astype(np.float32)  # no clusters: near ties
    nlist = demo.ivf_list_count(len(features))
    index_path = demo.build_index_on_centroids(features, features[:nlist], tmp_path / "added.index")
    export_index(index_path, tmp_path, "big.index")
    golden = generate_index_golden(tmp_path, "big.index", tmp_path / "golden", seed=3, seconds=20.0)
    subprocess.run(["swift", "build", "-c", "release", "--product", "RVCNativeMac"], cwd=DEMOS, check=True,
                   stdout=subprocess.DEVNULL)
    feats = golden.tensors["feats"][0]
    theirs = upstream.upstream_retrieval(upstream.faiss_index(index_path), feats, golden.index["extra"]["index_rate"])
    for mode in ("chained", "teacher-forced"):
        out = tmp_path / f"swift-{mode}.safetensors"
        subprocess.run([str(DEMOS / ".build" / "release" / "RVCNativeMac"), "run", "--assets", str(tmp_path), "--model",
                        "big.index", "--inputs", str(tmp_path / "golden"), "--output", str(out)]
                       + (["--teacher-forced"] if mode == "teacher-forced" else []), check=True, stdout=subprocess.DEVNULL)
        candidate = load_candidate(out)
        assert compare_golden(golden, candidate.tensors, candidate.layouts, candidate_metadata=candidate.metadata).passed
        np.testing.assert_array_equal(candidate.tensors["search.ids"][0], theirs["ids"])
        assert snr_db(theirs["blended"], candidate.tensors["blended"][0]) >= 100
