"""`rvc-ios export`: model lookup, atomic output, manifest, determinism (rvc_ios_tools/export.py, manifest.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file

from rvc_ios_tools.core import manifest as manifest_io
from rvc_ios_tools.core.errors import CorruptFileError, ManifestError, ModelNotFoundError
from rvc_ios_tools.voice.export import export_voice
from rvc_ios_tools.core.locate import find_model
from rvc_ios_tools.core.files import sha256_file, xxh64_tensor


def test_finds_model_as_file_or_single_pth_folder(voice_file, tmp_path):
    models = tmp_path / "models"
    (models / "Folder").mkdir(parents=True)
    shutil.copy(voice_file("v2-40k-tiny"), models / "Drake.pth")
    shutil.copy(voice_file("v2-40k-tiny"), models / "Folder" / "whatever_e200.pth")
    assert find_model("Drake", models).name == "Drake.pth"
    assert find_model("Folder", models).name == "whatever_e200.pth"


def test_unknown_model_name_lists_what_was_found(voice_file, tmp_path):
    shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "Drake.pth")
    with pytest.raises(ModelNotFoundError, match="Voices found there: Drake"):
        find_model("Drak", tmp_path)


def test_export_writes_weights_and_schema_valid_manifest(voice_file, tmp_path):
    source = voice_file("v1-48k-tiny", "applio")
    result = export_voice(source, tmp_path / "Assets", "Voice")
    manifest = manifest_io.read_manifest(result.manifest_path)
    tensors = load_file(result.weights_path)
    assert manifest["kind"] == "voice" and manifest["rvc_version"] == "v1"
    assert manifest["sample_rate"] == 48000 and manifest["upsample_factor"] == 10 * 6 * 2 * 2 * 2
    assert manifest["source"] == {"file_name": source.name, "sha256": sha256_file(source), "flavor": "applio"}
    assert manifest["speaker_count"] == 3 and manifest["feature_dim"] == 256
    assert len(manifest["config"]["raw"]) == 18
    assert {row["key"] for row in manifest["tensors"]} == set(tensors)
    for row in manifest["tensors"]:
        array = tensors[row["key"]]
        assert list(array.shape) == row["shape"] and str(array.dtype) == row["dtype"] == "float32"
        assert xxh64_tensor(array) == row["xxh64"]
    layouts = {row["key"]: row["layout"] for row in manifest["tensors"]}
    assert layouts["dec.up_0.weight"] == "OKI" and layouts["emb_g.weight"] == "ND"
    assert layouts["enc_p.encoder.attn_0.emb_rel_k"] == "HMD" and layouts["enc_p.encoder.norm1_0.weight"] == "C"


def test_export_is_byte_identical_when_repeated(voice_file, tmp_path):
    source = voice_file("v2-32k-tiny")
    first = export_voice(source, tmp_path / "a", "V")
    second = export_voice(source, tmp_path / "b", "V")
    assert first.weights_path.read_bytes() == second.weights_path.read_bytes()
    assert first.manifest_path.read_bytes() == second.manifest_path.read_bytes()


def test_float16_export(voice_file, tmp_path):
    result = export_voice(voice_file("v2-40k-nof0-tiny"), tmp_path, "V", dtype="float16")
    tensors = load_file(result.weights_path)
    assert all(t.dtype == np.float16 for t in tensors.values())
    assert json.loads(result.manifest_path.read_text())["dtype"] == "float16"


def test_failed_export_leaves_nothing_behind(tmp_path):
    bad = tmp_path / "Broken.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "Assets"
    with pytest.raises(CorruptFileError):
        export_voice(bad, out, "Broken")
    assert not out.exists() or not any(out.iterdir())


def test_manifest_with_wrong_format_version_is_refused(voice_file, tmp_path):
    result = export_voice(voice_file("v2-40k-tiny"), tmp_path, "V")
    document = json.loads(result.manifest_path.read_text())
    document["format_version"] = 99
    result.manifest_path.write_text(json.dumps(document))
    with pytest.raises(ManifestError, match=r"manifest format 99 is not the one this tool reads \(2\)\. Export"):
        manifest_io.read_manifest(result.manifest_path)


def test_format_1_manifest_is_named_as_such_not_as_hundreds_of_schema_problems(voice_file, tmp_path):
    result = export_voice(voice_file("v2-40k-tiny"), tmp_path, "V")
    document = json.loads(result.manifest_path.read_text())
    document["format_version"] = 1
    for row in document["tensors"]:  # format 1 carried sha256 per tensor
        row["sha256"] = "0" * 64
        del row["xxh64"]
    result.manifest_path.write_text(json.dumps(document))
    with pytest.raises(ManifestError, match="manifest format 1 is not the one this tool reads"):
        manifest_io.read_manifest(result.manifest_path)


def test_cached_export_in_an_older_format_is_not_current(voice_file, tmp_path):
    from rvc_ios_tools.core.manifest import is_current

    export_voice(voice_file("v2-40k-tiny"), tmp_path, "Voice")
    manifest_path = tmp_path / "Voice.manifest.json"
    assert is_current(manifest_path)
    document = json.loads(manifest_path.read_text())
    document["format_version"] = 1
    manifest_path.write_text(json.dumps(document))
    assert not is_current(manifest_path)
    assert not is_current(tmp_path / "missing.manifest.json")
