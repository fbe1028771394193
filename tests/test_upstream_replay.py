"""Replaying an upstream PyTorch run: its own random draws recorded, fed through `golden generate --inputs`.

This is the check that ties the MLX reference (and through its golden set, a port) to the original on a
user's own voice: upstream draws from torch's generator, `capture-upstream` records every draw, and the golden
run takes them from the inputs file instead of drawing its own.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import safetensors.numpy
from typer.testing import CliRunner

from rvc_ios_tools.cli import app
from rvc_ios_tools.core.diff import snr_db
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.voice.checkpoint import load_voice
from rvc_ios_tools.voice.inputs import InputsFileError, read_inputs_file, synthesize_voice_inputs
from rvc_ios_tools.voice.upstream import capture_upstream_run

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def replay_through_cli(tmp_path, voice_path, seconds: str):
    """capture-upstream, export, golden generate --inputs; returns (golden set, upstream's candidate tensors)."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(voice_path, models / "Voice.pth")
    invoke("capture-upstream", "--model-name", "Voice", "--models-dir", str(models), "--output", str(tmp_path / "up"),
           "--seconds", seconds, "--seed", "3", "--torch-seed", "11")
    invoke("export", "--model-name", "Voice", "--models-dir", str(models), "--output-dir", str(tmp_path / "Assets"), "-q")
    invoke("golden", "generate", "--assets", str(tmp_path / "Assets"), "--model-name", "Voice",
           "--inputs", str(tmp_path / "up" / "inputs.safetensors"), "--output", str(tmp_path / "golden"))
    upstream = safetensors.numpy.load_file(str(tmp_path / "up" / "upstream.safetensors"))
    return read_golden(tmp_path / "golden"), upstream


def test_upstream_draws_are_recorded_under_their_golden_names(voice_file):
    checkpoint = load_voice(voice_file("v2-40k-tiny"))
    inputs = synthesize_voice_inputs(checkpoint, seed=1, seconds=0.3)
    noise, tensors = capture_upstream_run(checkpoint, inputs, torch_seed=5)
    frames = inputs["phone"].shape[1]
    upp = int(np.prod(checkpoint.config.upsample_rates))
    assert noise["noise.z_p"].shape == (1, checkpoint.config.inter_channels, frames)
    assert noise["noise.nsf"].shape == (1, frames * upp, 1)
    assert noise["noise.nsf_phase"].shape == (1, 1)
    assert noise["noise.nsf_phase"][0, 0] == 0.0  # recorded after upstream zeroes the fundamental's phase
    again, _ = capture_upstream_run(checkpoint, inputs, torch_seed=5)
    assert all(np.array_equal(noise[name], again[name]) for name in noise)
    other, _ = capture_upstream_run(checkpoint, inputs, torch_seed=6)
    assert not np.array_equal(noise["noise.z_p"], other["noise.z_p"])
    assert set(tensors) >= {"audio", "z_p", "dec.source"}


@pytest.mark.parametrize("preset", ["v2-40k-tiny", "v1-32k-nof0-tiny"])
def test_a_replayed_tiny_run_matches_upstream_on_every_stage(tmp_path, voice_file, preset):
    golden, upstream = replay_through_cli(tmp_path, voice_file(preset), "0.5")
    sources = golden.index["extra"]["noise_sources"]
    assert sources and set(sources.values()) == {"inputs file"}
    for name, reference in upstream.items():
        assert snr_db(reference, golden.tensors[name]) >= 100.0, name


@pytest.mark.slow
def test_a_replayed_full_size_run_reaches_100_db_audio_against_upstream(tmp_path, voice_file):
    golden, upstream = replay_through_cli(tmp_path, voice_file("v2-40k"), "2.0")
    audio_snr = snr_db(upstream["audio"], golden.tensors["audio"])
    assert audio_snr >= 100.0
    (tmp_path / "replay.json").write_text(json.dumps({"audio_snr_db": audio_snr}))


def test_the_golden_diff_holds_the_reference_to_upstreams_candidate(tmp_path, voice_file):
    replay_through_cli(tmp_path, voice_file("v2-48k-tiny"), "0.4")
    result = runner.invoke(app, ["golden", "diff", str(tmp_path / "golden"), str(tmp_path / "up" / "upstream.safetensors")])
    assert result.exit_code == 0, result.output


def test_draws_missing_from_the_file_come_from_the_seed_and_the_index_says_so(tmp_path, voice_file):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(voice_file("v2-40k-tiny"), models / "Voice.pth")
    invoke("capture-upstream", "--model-name", "Voice", "--models-dir", str(models), "--output", str(tmp_path / "up"),
           "--seconds", "0.3")
    recorded = safetensors.numpy.load_file(str(tmp_path / "up" / "inputs.safetensors"))
    del recorded["noise.nsf"]
    safetensors.numpy.save_file(recorded, str(tmp_path / "partial.safetensors"))
    invoke("export", "--model-name", "Voice", "--models-dir", str(models), "--output-dir", str(tmp_path / "Assets"), "-q")
    invoke("golden", "generate", "--assets", str(tmp_path / "Assets"), "--model-name", "Voice", "--seed", "4",
           "--inputs", str(tmp_path / "partial.safetensors"), "--output", str(tmp_path / "golden"))
    golden = read_golden(tmp_path / "golden")
    assert golden.index["extra"]["noise_sources"] == {
        "noise.nsf": "seed 4", "noise.nsf_phase": "inputs file", "noise.z_p": "inputs file",
    }
    assert np.array_equal(golden.tensors["noise.z_p"], recorded["noise.z_p"])


@pytest.fixture()
def tiny_inputs(tmp_path, voice_file):
    checkpoint = load_voice(voice_file("v2-40k-tiny"))
    inputs = synthesize_voice_inputs(checkpoint, seed=2, seconds=0.2)
    noise, _ = capture_upstream_run(checkpoint, inputs, torch_seed=0)
    return checkpoint, {**inputs, **noise}


def write_inputs(tmp_path, arrays):
    path = tmp_path / "inputs.safetensors"
    safetensors.numpy.save_file(arrays, str(path))
    return path


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("noise.z_p", lambda a: a[:, :-1], r"`noise.z_p` has shape \(1, \d+, 20\); this voice and 20 frames need \(1, \d+, 20\)"),
        ("noise.nsf", lambda a: a[:, 1:], r"`noise.nsf` has shape .* need \(1, 8000, 1\)"),
        ("noise.nsf_phase", lambda a: np.zeros((1, 2), np.float32), r"`noise.nsf_phase` has shape \(1, 2\)"),
        ("noise.z_p", lambda a: a.astype(np.float16), r"`noise.z_p` is float16; write the draw as float32"),
        ("noise.nsf", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.nan, a).astype(np.float32),
         r"`noise.nsf` holds NaN or infinite values"),
        ("noise.nsf_phase", lambda a: np.full_like(a, 1.5), r"`noise.nsf_phase` must lie in \[0, 1\)"),
    ],
)
def test_a_wrong_draw_is_a_sentence_naming_it(tmp_path, tiny_inputs, name, change, message):
    checkpoint, arrays = tiny_inputs
    arrays = dict(arrays)
    arrays[name] = np.ascontiguousarray(change(arrays[name]))
    with pytest.raises(InputsFileError, match=message):
        read_inputs_file(write_inputs(tmp_path, arrays), checkpoint)


def test_nsf_draws_for_a_voice_without_f0_are_refused(tmp_path, voice_file, tiny_inputs):
    _, arrays = tiny_inputs
    nof0 = load_voice(voice_file("v2-40k-nof0-tiny"))
    arrays = {k: v for k, v in arrays.items() if k not in ("pitch", "pitchf")}
    with pytest.raises(InputsFileError, match="has no f0 and never draws it"):
        read_inputs_file(write_inputs(tmp_path, arrays), nof0)


def test_the_cli_names_a_bad_draw_in_one_line(tmp_path, voice_file, tiny_inputs):
    _, arrays = tiny_inputs
    arrays = {**arrays, "noise.z_p": arrays["noise.z_p"][:, :, :-1].copy()}
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(voice_file("v2-40k-tiny"), models / "Voice.pth")
    invoke("export", "--model-name", "Voice", "--models-dir", str(models), "--output-dir", str(tmp_path / "Assets"), "-q")
    result = runner.invoke(app, ["golden", "generate", "--assets", str(tmp_path / "Assets"), "--model-name", "Voice",
                                 "--inputs", str(write_inputs(tmp_path, arrays)), "--output", str(tmp_path / "golden")])
    assert result.exit_code == 2
    assert "noise.z_p" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "golden").exists()
