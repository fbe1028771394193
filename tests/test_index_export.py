"""`rvc-ios export --index`: the exported tensors are the faiss file's, with a manifest of kind index."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

faiss = pytest.importorskip("faiss")

from rvc_ios_tools.cli import app
from rvc_ios_tools.core.errors import RvcIosError
from rvc_ios_tools.core.manifest import load_exported
from rvc_ios_tools.index import demo
from rvc_ios_tools.index.convert import INDEX_TENSORS, search_index_from_export
from rvc_ios_tools.index.export import export_index, find_index_beside

runner = CliRunner()


@pytest.fixture(scope="module")
def index_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("index")
    features = demo.demo_features(2000, 32, seed=3)
    return demo.build_index(features, folder / "added_IVF51_Flat_nprobe_1_Drake_v2.index", seed=3,
                            trained_path=folder / "trained_IVF51_Flat_nprobe_1_Drake_v2.index")


def test_the_export_holds_the_files_vectors_ids_and_centroids(index_file, tmp_path):
    export_index(index_file, tmp_path, "Drake.index")
    manifest, tensors = load_exported(tmp_path, "Drake.index")
    assert manifest["kind"] == "index" and manifest["source"]["flavor"] == "faiss"
    theirs = faiss.read_index(str(index_file))
    ivf = faiss.extract_index_ivf(theirs)
    assert {k: manifest["index"][k] for k in ("d", "nlist", "nprobe", "ntotal", "metric", "k")} == {
        "d": 32, "nlist": ivf.nlist, "nprobe": 1, "ntotal": 2000, "metric": "l2", "k": 8}
    assert sorted(tensors) == sorted(t.key for t in INDEX_TENSORS)
    searchable = search_index_from_export(manifest["index"], tensors)
    np.testing.assert_array_equal(searchable.vectors_by_id(), theirs.reconstruct_n(0, theirs.ntotal))
    np.testing.assert_array_equal(tensors["index.centroids"], faiss.downcast_index(ivf.quantizer).reconstruct_n(0, ivf.nlist))


def test_exports_are_byte_for_byte_deterministic(index_file, tmp_path):
    export_index(index_file, tmp_path / "a", "x")
    export_index(index_file, tmp_path / "b", "x")
    assert (tmp_path / "a" / "x.safetensors").read_bytes() == (tmp_path / "b" / "x.safetensors").read_bytes()
    assert (tmp_path / "a" / "x.manifest.json").read_bytes() == (tmp_path / "b" / "x.manifest.json").read_bytes()


def test_float16_halves_the_vectors_and_records_its_measured_effect(index_file, tmp_path):
    full = export_index(index_file, tmp_path, "full")
    half = export_index(index_file, tmp_path, "half", dtype="float16")
    assert half.weights_path.stat().st_size < 0.6 * full.weights_path.stat().st_size
    effect = json.loads(half.manifest_path.read_text())["index"]["float16_effect"]
    assert effect["queries"] == 1000 and effect["ids_identical"] >= 970  # about 98-99% measured
    assert 60 < effect["retrieved_snr_db"] < 90  # float16 keeps 11 bits: about 70 dB, not float32's 140
    assert "float16_effect" not in json.loads(full.manifest_path.read_text())["index"]


def test_a_trained_index_without_vectors_is_refused(index_file, tmp_path):
    with pytest.raises(RvcIosError, match="holds no vectors"):
        export_index(index_file.with_name(index_file.name.replace("added", "trained")), tmp_path, "x")


def test_the_index_beside_a_voice_is_found_as_upstream_finds_it(tmp_path):
    (tmp_path / "logs" / "Drake").mkdir(parents=True)
    voice = tmp_path / "Drake.pth"
    voice.touch()
    (tmp_path / "logs" / "Drake" / "trained_IVF5_Flat_nprobe_1_Drake_v2.index").touch()
    (tmp_path / "added_IVF5_Flat_nprobe_1_Other_v2.index").touch()
    assert find_index_beside(voice, "Drake") is None
    added = tmp_path / "logs" / "Drake" / "added_IVF5_Flat_nprobe_1_Drake_v2.index"
    added.touch()
    assert find_index_beside(voice, "Drake") == added  # the path names the model; "trained" files never count


def test_cli_exports_an_index_and_reports_float16(index_file, tmp_path):
    result = runner.invoke(app, ["export", "--index", str(index_file), "--index-dtype", "float16",
                                 "--output-dir", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{index_file.stem}.manifest.json").is_file()
    assert "float16 vectors: identical ids on" in result.output


def test_cli_exports_the_index_found_beside_the_voice(voice_file, tmp_path):
    shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "Drake.pth")
    index_file = demo.build_index(demo.demo_features(400, 768, seed=2), tmp_path / "added_IVF10_Flat_nprobe_1_Drake_v2.index")
    result = runner.invoke(app, ["export", "--model-name", "Drake", "--models-dir", str(tmp_path),
                                 "--output-dir", str(tmp_path / "Assets"), "-q"])
    assert result.exit_code == 0, result.output
    manifest, _ = load_exported(tmp_path / "Assets", "Drake.index")
    assert manifest["source"]["file_name"] == index_file.name


def test_cli_refuses_an_index_of_another_width_than_the_voice(voice_file, tmp_path):
    # The tiny v2 voice's features are 768 wide; this index holds 32-wide vectors.
    shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "Drake.pth")
    path = demo.build_index(demo.demo_features(400, 32, seed=1), tmp_path / "added_IVF10_Flat_nprobe_1_Drake_v2.index")
    result = runner.invoke(app, ["export", "--model-name", "Drake", "--models-dir", str(tmp_path),
                                 "--output-dir", str(tmp_path / "Assets"), "-q"])
    assert result.exit_code == 2 and "32-wide vectors" in result.output and "768 wide" in result.output
    assert not (tmp_path / "Assets" / "Drake.index.manifest.json").exists() and path.is_file()


def test_cli_refuses_a_damaged_index_in_one_line(tmp_path):
    (tmp_path / "bad.index").write_bytes(b"IwFl" + bytes(10))
    result = runner.invoke(app, ["export", "--index", str(tmp_path / "bad.index"), "--output-dir", str(tmp_path)])
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("*.safetensors"))
