"""Content-encoder golden sets: `rvc-ios golden generate --kind hubert`, the stage table, and the diff on them."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

from rvc_ios_tools.cli import app
from rvc_ios_tools.core.diff import compare_golden
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.hubert.convert import ARCHITECTURE, TINY_ARCHITECTURE
from rvc_ios_tools.hubert.demo import synthesized_speech
from rvc_ios_tools.hubert.stages import HUBERT_MIN_SNR_DB, hubert_stage_table
from rvc_ios_tools.kinds import stage_table_for

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hubert-cli")
    assert runner.invoke(app, ["demo-model", "--hubert", "huggingface", "--hubert-preset", "tiny", "--output-dir",
                               str(folder), "--name", "cvec"]).exit_code == 0
    assert runner.invoke(app, ["export", "--hubert", str(folder / "cvec"), "--output-dir", str(folder / "A"), "-q"]).exit_code == 0
    return folder / "A"


def test_stage_table_runs_audio_to_features_in_pipeline_order():
    table = hubert_stage_table(ARCHITECTURE)
    names = [stage.name for stage in table.stages]
    assert names == ([f"conv_{i}" for i in range(7)] + ["features", "projected", "pos_conv"]
                     + [f"layer_{n}" for n in range(13)] + ["v1", "v2"])
    assert table.stage("v1").inputs == ("layer_9",) and table.stage("v2").inputs == ("layer_12",)
    assert hubert_stage_table(ARCHITECTURE, v1_convention="applio").stage("v1").inputs == ("layer_12",)
    assert all(stage.min_snr_db == HUBERT_MIN_SNR_DB == 100.0 for stage in table.stages)
    assert table.tensor("conv_0").layout == "BCT" and table.tensor("layer_0").layout == "BTC"
    assert stage_table_for("hubert", {"hubert": {"architecture": TINY_ARCHITECTURE}}).stage("v1").inputs == ("layer_2",)


def test_no_final_proj_means_no_v1_stage():
    names = [stage.name for stage in hubert_stage_table({**ARCHITECTURE, "final_proj_dim": None}).stages]
    assert "v1" not in names and names[-1] == "v2"


def test_golden_generate_from_a_wav_then_diff(exported, tmp_path):
    speech = synthesized_speech(12345)
    with wave.open(str(tmp_path / "speech.wav"), "wb") as wav:
        wav.setnchannels(1), wav.setsampwidth(2), wav.setframerate(16000)
        wav.writeframes((np.clip(speech, -1, 1 - 2**-15) * 32768).astype("<i2").tobytes())
    golden = tmp_path / "golden"
    result = runner.invoke(app, ["golden", "generate", "--kind", "hubert", "--assets", str(exported), "--model-name",
                                 "cvec", "--output", str(golden), "--audio", str(tmp_path / "speech.wav")])
    assert result.exit_code == 0, result.output
    golden_set = read_golden(golden)
    assert golden_set.index["extra"]["frames"] == (12345 - 400) // 320 + 1
    assert golden_set.index["extra"]["audio_source"] == "speech.wav"
    assert runner.invoke(app, ["golden", "diff", str(golden), str(golden / "golden.safetensors")]).exit_code == 0

    tensors = load_file(str(golden / "golden.safetensors"))
    tensors["layer_2"] = tensors["layer_2"] * (1 + 1e-4)  # 80 dB: a voice's floor would pass it, 100 dB does not
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp_path / "cand.safetensors"))
    result = runner.invoke(app, ["golden", "diff", str(golden), str(tmp_path / "cand.safetensors")])
    assert result.exit_code == 1 and "layer_2" in result.output


def test_the_diff_reports_stages_in_pipeline_order(exported, tmp_path):
    golden = tmp_path / "golden"
    assert runner.invoke(app, ["golden", "generate", "--kind", "hubert", "--assets", str(exported), "--model-name",
                               "cvec", "--output", str(golden), "--seconds", "0.5", "--v1-convention", "applio"]).exit_code == 0
    golden_set = read_golden(golden)
    assert golden_set.index["extra"]["v1_convention"] == "applio"
    report = compare_golden(golden_set, golden_set.tensors, {})
    assert [stage.name for stage in report.stages if stage.name != "inputs"] == [s.name for s in golden_set.stage_table.stages]


def test_an_unknown_v1_convention_is_refused(exported, tmp_path):
    result = runner.invoke(app, ["golden", "generate", "--kind", "hubert", "--assets", str(exported), "--model-name",
                                 "cvec", "--output", str(tmp_path / "g"), "--v1-convention", "layer12"])
    assert result.exit_code == 2 and "--v1-convention" in result.output
