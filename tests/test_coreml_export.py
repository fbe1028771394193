"""`rvc-ios export --coreml` and `rvc-ios coreml run` on the committed tiny golden sets, through the CLI.

The packages are evaluated by the numpy MIL interpreter (this checks the conversion, not Apple's runtime) and
the candidate is held to the golden set by the same diff a Swift port is held to.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("coremltools")

from rvc_ios_tools.cli import app
from rvc_ios_tools.core.diff import compare_golden, load_candidate
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.core.manifest import validate

from coreml_assets import (HUBERT_GOLDEN, HUBERT_NAME, RMVPE_GOLDEN, RMVPE_NAME, VOICE_GOLDEN, VOICE_NAME,
                           hubert_assets, invoke, rmvpe_assets, voice_assets)

runner = CliRunner()
FP32_MIN_SNR_DB = 100.0


def run_and_diff(golden_dir: Path, assets: Path, name: str, tmp_path: Path, *extra: str):
    candidate = tmp_path / "candidate.safetensors"
    invoke(["coreml", "run", str(golden_dir), "--model-name", name, "--assets", str(assets),
            "--output", str(candidate), "--interpreter", *extra])
    loaded = load_candidate(candidate)
    return compare_golden(read_golden(golden_dir), loaded.tensors, loaded.layouts,
                          candidate_metadata=loaded.metadata)


def test_the_voice_manifest_lists_every_package_function_input_and_output():
    assets, name = voice_assets(), VOICE_NAME
    document = json.loads((assets / f"{name}.voice.coreml.json").read_text())
    validate(document, "manifest.schema.json")
    packages = {p["role"]: p for p in document["coreml"]["packages"]}
    assert list(packages) == ["encoder_flow", "nsf_source", "decoder"]
    assert [f["name"] for f in packages["encoder_flow"]["functions"]] == ["frames_32", "frames_64"]
    for package in packages.values():
        assert (assets / package["file"]).is_dir()
        for function in package["functions"]:
            assert all(row["dtype"] in ("float32", "int32") for row in function["inputs"] + function["outputs"])
            assert all(row["stage"] is not None for row in function["outputs"])
    decoder_outputs = [row["golden"] for row in packages["decoder"]["functions"][0]["outputs"]]
    assert decoder_outputs == ["dec.conv_pre", "dec.up_0", "dec.up_1", "dec.up_2", "dec.up_3", "audio"]
    noise_inputs = [row["golden"] for row in packages["nsf_source"]["functions"][0]["inputs"]]
    assert noise_inputs == ["pitchf", "noise.nsf", "noise.nsf_phase"]
    assert packages["nsf_source"]["compute_precision"] == "float32"


def test_packages_keep_float32_inputs_and_outputs_at_float16_compute():
    """An fp16 program for iOS16+ gets fp16 I/O by default, which would round pitchf (Hz) and the audio."""
    from coremltools.converters.mil.mil import types

    from rvc_ios_tools.coreml.interpreter import load_program

    function = load_program(voice_assets("float16") / f"{VOICE_NAME}.decoder.mlpackage").functions["main"]
    io = [*function.inputs.values(), *function.outputs]
    assert {types.builtin_to_string(var.dtype) for var in io} == {"fp32"}
    assert "fp16" in {types.builtin_to_string(op.outputs[0].dtype) for op in function.operations if op.op_type == "conv"}


def test_fp32_voice_packages_reach_100_db_on_every_stage(tmp_path):
    assets, name = voice_assets(), VOICE_NAME
    report = run_and_diff(VOICE_GOLDEN, assets, name, tmp_path)
    compared = [c for stage in report.stages for c in stage.tensors]
    assert {c.name for c in compared} >= {"z", "dec.conv_pre", "audio", "enc_p.hidden", "flow.flow_0"}
    assert all(c.snr_db >= FP32_MIN_SNR_DB for c in compared), [(c.name, c.snr_db) for c in compared]


def test_the_coreml_nsf_source_converts_without_the_mod_one_trap(tmp_path):
    """The nsf_source package (noop_elimination removed) is right to float32 accumulation: >= 80 dB here."""
    assets, name = voice_assets(), VOICE_NAME
    report = run_and_diff(VOICE_GOLDEN, assets, name, tmp_path, "--source", "coreml")
    source = next(stage for stage in report.stages if stage.name == "nsf_source")
    assert source.status == "pass", source


def test_fp32_rmvpe_package_reaches_100_db_and_the_same_pitch(tmp_path):
    assets, name = rmvpe_assets(), RMVPE_NAME
    document = json.loads((assets / f"{name}.rmvpe.coreml.json").read_text())
    shapes = {row["golden"]: row["shape"] for row in document["coreml"]["packages"][0]["functions"][0]["outputs"]}
    assert shapes["unet.encoder.skip_1"][2] == "frames/2" and shapes["salience"] == [1, "frames", 360]
    report = run_and_diff(RMVPE_GOLDEN, assets, name, tmp_path)
    compared = {c.name: c for stage in report.stages for c in stage.tensors}
    assert "fc.gru" in compared and "unet.encoder.skip_0" in compared
    assert all(c.snr_db >= FP32_MIN_SNR_DB for n, c in compared.items() if n != "f0"), compared
    assert compared["f0"].passed


def test_fp32_content_encoder_package_reaches_100_db_on_every_stage(tmp_path):
    pytest.importorskip("transformers")
    report = run_and_diff(HUBERT_GOLDEN, hubert_assets(), HUBERT_NAME, tmp_path)
    compared = {c.name: c for stage in report.stages for c in stage.tensors}
    assert {"conv_0", "pos_conv", "layer_0", "v1", "v2"} <= set(compared)
    assert all(c.snr_db >= FP32_MIN_SNR_DB for c in compared.values()), compared


def test_coreml_run_needs_macos_for_predictions(tmp_path):
    if sys.platform == "darwin":
        pytest.skip("on macOS `--predict` runs Core ML; this test is about Linux refusing it")
    assets, name = voice_assets(), VOICE_NAME
    result = runner.invoke(app, ["coreml", "run", str(VOICE_GOLDEN), "--model-name", name, "--assets", str(assets),
                                 "--output", str(tmp_path / "c.safetensors"), "--predict"])
    assert result.exit_code == 2 and "macOS" in result.output


@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML predictions need macOS: coremltools' Linux wheel has "
                    "no Core ML runtime (libcoremlpython); the interpreter tests above check the same programs")
def test_coreml_predictions_reach_the_goldens_on_a_mac(tmp_path):
    assets, name = voice_assets(), VOICE_NAME
    report = run_and_diff(VOICE_GOLDEN, assets, name, tmp_path, "--predict")
    assert report.passed


def test_frames_beyond_the_largest_bucket_are_refused_with_what_to_do():
    from rvc_ios_tools.coreml.run import CoreMLRunError, bucket_function

    package = {"functions": [{"name": "frames_32", "frames": 32}, {"name": "frames_64", "frames": 64}]}
    assert bucket_function(package, 40)["name"] == "frames_64"
    with pytest.raises(CoreMLRunError, match="--frames"):
        bucket_function(package, 65)


def test_the_coreml_commands_have_help():
    for command in (["coreml"], ["coreml", "run"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
    assert "--coreml" in runner.invoke(app, ["export", "--help"]).output
