"""The `rvc-ios` command line: help everywhere, one-line errors and non-zero exits on bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rvc_ios_tools.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["inspect"], ["export"], ["demo-model"]])
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
