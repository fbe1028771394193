"""The committed fixtures (golden/, swift_fixtures/) are what scripts/make_fixtures.py produces today."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from rvc_ios_tools.core.diff import compare_golden
from rvc_ios_tools.core.golden import read_golden

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("make_fixtures", REPO / "scripts" / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(spec)
sys.modules["make_fixtures"] = make_fixtures  # dataclasses look their module up there
spec.loader.exec_module(make_fixtures)


def assert_reproduces_committed(model_name: str, golden_name: str, fresh_root: Path):
    """The freshly made manifest lists the committed tensors and the fresh golden set passes against the
    committed one; returns (committed manifest, committed golden set) for further checks."""
    committed_manifest = json.loads((REPO / "swift_fixtures" / f"{model_name}.manifest.json").read_text())
    fresh_manifest = json.loads((fresh_root / "assets" / f"{model_name}.manifest.json").read_text())
    assert fresh_manifest["tensors"] == committed_manifest["tensors"], "exported weights changed"
    assert fresh_manifest.get("rmvpe") == committed_manifest.get("rmvpe"), "architecture or pipeline constants changed"

    committed = read_golden(REPO / "golden" / golden_name)
    fresh = read_golden(fresh_root / "golden" / golden_name)
    assert committed.index["stages"] == fresh.index["stages"]
    report = compare_golden(committed, fresh.tensors, {})
    assert report.passed, report.first_divergent_stage
    return committed_manifest, committed


@pytest.mark.parametrize("fixture", make_fixtures.FIXTURES, ids=lambda f: f.name)
def test_regenerating_a_fixture_reproduces_the_committed_one(fixture, tmp_path):
    make_fixtures.make_fixture(fixture, tmp_path / "assets", tmp_path / "golden", tmp_path / "voices")
    assert_reproduces_committed(fixture.name, fixture.name, tmp_path)


@pytest.mark.parametrize("fixture", make_fixtures.RMVPE_FIXTURES, ids=lambda f: f.name)
def test_regenerating_an_rmvpe_fixture_reproduces_the_committed_one(fixture, tmp_path):
    make_fixtures.make_rmvpe_fixture(fixture, tmp_path / "assets", tmp_path / "golden", tmp_path / "sources")
    manifest, golden = assert_reproduces_committed(fixture.model_name, fixture.name, tmp_path)
    assert manifest["rmvpe"]["architecture"]["gru_hidden_size"] < 256, "the committed RMVPE fixture is the tiny preset"
    assert golden.index["extra"]["pad_mode"] == fixture.pad_mode
    # The fixture must exercise both voicing decisions.
    f0 = golden.tensors["f0"]
    assert 0 < (f0 > 0).sum() < f0.size


@pytest.mark.parametrize("fixture", make_fixtures.INDEX_FIXTURES, ids=lambda f: f.name)
def test_regenerating_an_index_fixture_reproduces_the_committed_one(fixture, tmp_path):
    pytest.importorskip("faiss")
    make_fixtures.make_index_fixture(fixture, tmp_path / "assets", tmp_path / "golden")
    committed_file = REPO / "swift_fixtures" / f"{fixture.name}.index"
    assert (tmp_path / "assets" / f"{fixture.name}.index").read_bytes() == committed_file.read_bytes(), "faiss built another file"
    assert (tmp_path / "assets" / f"{fixture.name}.safetensors").read_bytes() == (
        REPO / "swift_fixtures" / f"{fixture.name}.safetensors").read_bytes()
    _, golden = assert_reproduces_committed(fixture.name, fixture.name, tmp_path)
    assert (golden.tensors["search.ids"] >= 0).all(), "every list of the fixture is longer than k"


@pytest.mark.parametrize("fixture", make_fixtures.HUBERT_FIXTURES, ids=lambda f: f.name)
def test_regenerating_a_hubert_fixture_reproduces_the_committed_one(fixture, tmp_path):
    make_fixtures.make_hubert_fixture(fixture, tmp_path / "assets", tmp_path / "golden", tmp_path / "sources")
    for name in (f"{fixture.name}.safetensors", f"{fixture.name}.manifest.json"):
        fresh = (tmp_path / "assets" / name).read_bytes()
        committed = (REPO / "swift_fixtures" / name).read_bytes()
        if name.endswith(".json"):  # the tool version is the only field allowed to move
            fresh, committed = (json.loads(text) for text in (fresh, committed))
            fresh["tool"] = committed["tool"]
        assert fresh == committed, f"{name} changed"
    for name in ("golden.safetensors", "index.json"):
        fresh = (tmp_path / "golden" / fixture.name / name).read_bytes()
        committed = (REPO / "golden" / fixture.name / name).read_bytes()
        if name == "index.json":
            fresh, committed = (json.loads(text) for text in (fresh, committed))
            fresh["tool_version"] = committed["tool_version"]
            fresh["manifest_sha256"] = committed["manifest_sha256"]
        assert fresh == committed, f"golden/{fixture.name}/{name} changed"
    golden = read_golden(REPO / "golden" / fixture.name)
    assert golden.kind == "hubert" and golden.index["extra"]["frames"] == (fixture.samples - 400) // 320 + 1


@pytest.mark.parametrize("fixture", make_fixtures.PIPELINE_FIXTURES, ids=lambda f: f.name)
def test_regenerating_a_pipeline_fixture_reproduces_the_committed_one(fixture, tmp_path):
    if fixture.index is not None:
        pytest.importorskip("faiss")
    make_fixtures.make_pipeline_fixture(fixture, tmp_path / "assets", tmp_path / "golden", tmp_path / "sources")
    exports = [fixture.voice, fixture.hubert, fixture.rmvpe] + ([fixture.index] if fixture.index else [])
    for name in (f"{export}.safetensors" for export in exports):
        assert (tmp_path / "assets" / name).read_bytes() == (REPO / "swift_fixtures" / name).read_bytes(), f"{name} changed"
    fresh = (tmp_path / "golden" / fixture.name / "golden.safetensors").read_bytes()
    assert fresh == (REPO / "golden" / fixture.name / "golden.safetensors").read_bytes(), "the pipeline golden changed"
    _, golden = assert_reproduces_committed(fixture.voice, fixture.name, tmp_path)
    assert golden.kind == "pipeline" and golden.index["extra"]["f0"]
    assert golden.index["extra"]["index"] == (fixture.index is not None)
    # The fixture must exercise the peak normalisation (input louder than 0.95) and both voicing decisions.
    assert abs(golden.tensors["input"]).max() > 0.95
    f0 = golden.tensors["f0"]
    assert 0 < (f0 > 0).sum() < f0.size
    if fixture.index is not None:  # protect must blend retrieved and raw features on many frames, not one
        assert (golden.tensors["segment.0.pitchf"] < 1).sum() >= 10
        assert (golden.tensors["segment.0.retrieved"] != golden.tensors["segment.0.features"]).any()


@pytest.mark.parametrize("fixture", make_fixtures.RESAMPLER_FIXTURES, ids=lambda f: f.name)
def test_regenerating_the_resampler_fixture_reproduces_the_committed_one(fixture, tmp_path):
    pytest.importorskip("soxr")
    make_fixtures.make_resampler_fixture(fixture, tmp_path)
    name = f"{fixture.name}.safetensors"
    assert (tmp_path / name).read_bytes() == (REPO / "swift_fixtures" / name).read_bytes(), f"{name} changed"
