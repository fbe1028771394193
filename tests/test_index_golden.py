"""Index golden sets: what `golden generate --kind index` writes, and the diff's exact judgement of ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rvc_ios_tools.cli import app
from rvc_ios_tools.core.diff import compare_golden
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.index.stages import index_stage_table
from rvc_ios_tools.kinds import stage_table_for

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(scope="module")
def committed():
    return read_golden(REPO / "golden" / "tiny-index")


def test_the_stages_run_in_upstreams_order(committed):
    assert [s["name"] for s in committed.index["stages"]] == ["coarse", "search", "weights", "retrieved", "blend"]
    assert stage_table_for("index", None) == index_stage_table()
    assert committed.tensors["search.ids"].dtype == np.int64 and committed.tensors["coarse.lists"].shape[-1] == 1


def test_the_committed_golden_holds_faiss_ids(committed):
    faiss = pytest.importorskip("faiss")
    index = faiss.read_index(str(REPO / "swift_fixtures" / "tiny-index.index"))
    scores, ids = index.search(committed.tensors["feats"][0], 8)
    np.testing.assert_array_equal(committed.tensors["search.ids"][0], ids)


def test_cli_writes_a_golden_set_that_reproduces_the_committed_one(committed, tmp_path):
    result = runner.invoke(app, ["golden", "generate", "--kind", "index", "--assets", str(REPO / "swift_fixtures"),
                                 "--model-name", "tiny-index", "--output", str(tmp_path), "--seed", "5", "--seconds", "0.8"])
    assert result.exit_code == 0, result.output
    report = compare_golden(committed, read_golden(tmp_path).tensors, {})
    assert report.passed and all(stage.status == "pass" for stage in report.stages)


def test_cli_takes_feats_from_a_file(tmp_path):
    from rvc_ios_tools.core.files import write_safetensors

    feats = np.random.default_rng(0).standard_normal((1, 7, 32)).astype(np.float32)
    write_safetensors(tmp_path / "feats.safetensors", {"feats": feats})
    result = runner.invoke(app, ["golden", "generate", "--kind", "index", "--assets", str(REPO / "swift_fixtures"),
                                 "--model-name", "tiny-index", "--output", str(tmp_path / "g"),
                                 "--inputs", str(tmp_path / "feats.safetensors"), "--index-rate", "0.5"])
    assert result.exit_code == 0, result.output
    golden = read_golden(tmp_path / "g")
    np.testing.assert_array_equal(golden.tensors["feats"], feats)
    assert golden.index["extra"]["index_rate"] == 0.5


def test_feats_of_the_wrong_width_are_one_sentence(tmp_path):
    from rvc_ios_tools.core.files import write_safetensors

    write_safetensors(tmp_path / "feats.safetensors", {"feats": np.zeros((1, 3, 768), np.float32)})
    result = runner.invoke(app, ["golden", "generate", "--kind", "index", "--assets", str(REPO / "swift_fixtures"),
                                 "--model-name", "tiny-index", "--output", str(tmp_path / "g"),
                                 "--inputs", str(tmp_path / "feats.safetensors")])
    assert result.exit_code == 2 and "(1, T, 32)" in result.output


def test_one_id_off_by_one_is_named_at_search(committed):
    ids = committed.tensors["search.ids"].copy()
    ids[0, 3, 5] += 1
    report = compare_golden(committed, {"search.ids": ids}, {})
    comparison = next(stage for stage in report.stages if stage.name == "search").tensors[0]
    assert not comparison.passed and "1 of 320 integer values differ (the first at index (0, 3, 5))" in comparison.note
    assert report.first_divergent_stage == "search"


def test_integers_are_held_to_equality_where_snr_would_pass_them():
    from rvc_ios_tools.core.diff import compare_tensor

    ids = np.random.default_rng(0).permutation(200_000)[:12_000].reshape(1, 1500, 8).astype(np.int64)
    wrong = ids.copy()
    wrong[0, 700, 7] += 1  # 30 s of frames against 200 000 vectors: one id off by one is ~140 dB
    comparison = compare_tensor("search.ids", "search", ids, wrong, golden_layout="BTK", candidate_layout="BTK",
                                min_snr_db=80.0)
    assert comparison.snr_db > 120 and not comparison.passed
