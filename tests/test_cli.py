"""The `rvc-ios` command line: help everywhere, one-line errors and non-zero exits on bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rvc_ios_tools.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["inspect"], ["export"], ["demo-model"], ["verify"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_inspect_shows_the_voice(voice_file):
    result = runner.invoke(app, ["inspect", str(voice_file("v2-40k-tiny"))])
    assert result.exit_code == 0
    for text in ("rvc-webui", "v2", "40000", "speaker_count", "upsample_rates"):
        assert text in result.output


def test_export_by_name(voice_file, tmp_path):
    shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "Drake.pth")
    result = runner.invoke(
        app, ["export", "--model-name", "Drake", "--models-dir", str(tmp_path), "--output-dir", str(tmp_path / "Assets"), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "Assets" / "Drake.safetensors").is_file()
    assert (tmp_path / "Assets" / "Drake.manifest.json").is_file()


def test_output_folder_the_system_refuses_is_one_line_error_exit_2(voice_file, tmp_path):
    shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "Drake.pth")
    (tmp_path / "a_file").write_text("not a folder")
    result = runner.invoke(
        app, ["export", "--model-name", "Drake", "--models-dir", str(tmp_path), "--output-dir", str(tmp_path / "a_file" / "Assets"), "-q"]
    )
    assert result.exit_code == 2, result.output
    assert "error: the system refused" in result.output and "a_file" in result.output
    assert "Traceback" not in result.output


def test_disk_full_while_writing_leaves_no_file_behind(voice_file, tmp_path, monkeypatch):
    import errno

    from rvc_ios_tools.core import files

    def no_space(self, arrays):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "Assets"))

    monkeypatch.setattr(files.SafetensorsWriter, "write_all", no_space)
    shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "Drake.pth")
    result = runner.invoke(
        app, ["export", "--model-name", "Drake", "--models-dir", str(tmp_path), "--output-dir", str(tmp_path / "Assets"), "-q"]
    )
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "Assets").exists()  # nothing in it, and the folder made for the export goes too


def test_verify_checks_every_tensor_and_the_source(voice_file, tmp_path):
    source = shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "Drake.pth")
    assets = tmp_path / "Assets"
    exported = runner.invoke(app, ["export", "--model-name", "Drake", "--models-dir", str(tmp_path), "--output-dir", str(assets), "-q"])
    assert exported.exit_code == 0, exported.output
    result = runner.invoke(app, ["verify", "--model-name", "Drake", "--assets", str(assets), "--source", str(source)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "every XXH64 checked" in result.output and "matches --source" in result.output

    other = shutil.copy(voice_file("v2-48k-tiny"), tmp_path / "Other.pth")
    result = runner.invoke(app, ["verify", "--model-name", "Drake", "--assets", str(assets), "--source", str(other)])
    assert result.exit_code == 2 and "was exported from a file with sha256" in result.output

    weights = assets / "Drake.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x40  # one bit of the last tensor
    weights.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify", "--model-name", "Drake", "--assets", str(assets)])
    assert result.exit_code == 2 and "fails its manifest checksum" in result.output
    assert "Traceback" not in result.output

    weights.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    result = runner.invoke(app, ["verify", "--model-name", "Drake", "--assets", str(assets)])
    assert result.exit_code == 2 and "not a readable safetensors file" in result.output


def test_models_dir_comes_from_environment(voice_file, tmp_path, monkeypatch):
    shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "Env.pth")
    monkeypatch.setenv("RVC_MODELS_DIR", str(tmp_path))
    result = runner.invoke(app, ["export", "--model-name", "Env", "--output-dir", str(tmp_path / "A"), "-q"])
    assert result.exit_code == 0, result.output


def test_bad_file_gives_one_line_error_and_exit_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    completed = subprocess.run(
        [sys.executable, "-m", "rvc_ios_tools.cli", "inspect", str(bad)], capture_output=True, text=True
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: ") and "Traceback" not in completed.stderr


def test_unknown_model_name_exit_code(tmp_path):
    result = runner.invoke(app, ["export", "--model-name", "Nobody", "--models-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "No voice named 'Nobody'" in result.output


@pytest.mark.parametrize("command", [["golden"], ["golden", "generate"], ["golden", "diff"], ["parity"]])
def test_golden_and_parity_commands_have_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_golden_generate_then_diff_exit_codes(voice_file, tmp_path):
    import numpy as np
    from safetensors.numpy import load_file, save_file

    shutil.copy(voice_file("v2-40k-tiny"), tmp_path / "V.pth")
    assets, golden = tmp_path / "Assets", tmp_path / "golden"
    assert runner.invoke(app, ["export", "--model-name", "V", "--models-dir", str(tmp_path), "--output-dir", str(assets), "-q"]).exit_code == 0
    result = runner.invoke(app, ["golden", "generate", "--assets", str(assets), "--model-name", "V", "--output", str(golden), "--seconds", "0.3"])
    assert result.exit_code == 0, result.output

    tensors = load_file(str(golden / "golden.safetensors"))
    assert runner.invoke(app, ["golden", "diff", str(golden), str(golden / "golden.safetensors")]).exit_code == 0

    broken = dict(tensors)
    broken["z"] = tensors["z"] * -1.0  # a sign error in the flow output
    save_file({k: np.ascontiguousarray(v) for k, v in broken.items()}, str(tmp_path / "cand.safetensors"))
    result = runner.invoke(app, ["golden", "diff", str(golden), str(tmp_path / "cand.safetensors"), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert "flow" in result.output and (tmp_path / "r.json").is_file()

    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    assert runner.invoke(app, ["golden", "diff", str(golden), str(tmp_path / "junk.safetensors")]).exit_code == 2


def test_rmvpe_demo_export_and_golden(tmp_path):
    assert runner.invoke(app, ["demo-model", "--rmvpe", "--rmvpe-preset", "tiny", "--output-dir", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["export", "--rmvpe", str(tmp_path / "rmvpe.pt"), "--output-dir", str(tmp_path / "A"), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["verify", "--model-name", "rmvpe", "--assets", str(tmp_path / "A"), "--source", str(tmp_path / "rmvpe.pt")])
    assert result.exit_code == 0 and "kind           rmvpe" in result.output, result.output
    result = runner.invoke(app, ["golden", "generate", "--kind", "rmvpe", "--assets", str(tmp_path / "A"), "--model-name", "rmvpe",
                                 "--output", str(tmp_path / "G"), "--seconds", "0.5"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["golden", "diff", str(tmp_path / "G"), str(tmp_path / "G" / "golden.safetensors")]).exit_code == 0
