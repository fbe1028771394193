"""The golden diff (diff.py, plots.py) on synthetic golden sets: random tensors named by the voice stage table."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import safetensors.numpy

from rvc_ios_tools.core.diff import (
    CandidateFormatError,
    compare_golden,
    load_candidate,
    render_report_table,
    snr_db,
    write_report_json,
)
from rvc_ios_tools.core.diff_command import run_diff_command
from rvc_ios_tools.core.golden import schema_problems

from test_golden_format import CHANNELS, FRAMES, write_synthetic_golden

# Stages downstream of flow.flow_2 along the chain, each fed (transitively) by it.
DOWNSTREAM_OF_FLOW_2 = ("flow.flow_1", "flow.flow_0", "z", "dec.conv_pre", "dec.up_0", "dec.up_1", "dec.up_2",
                        "dec.up_3", "audio")


@pytest.fixture()
def golden(tmp_path):
    return write_synthetic_golden(tmp_path / "golden")


def copy_of(golden) -> dict[str, np.ndarray]:
    return {name: array.copy() for name, array in golden.tensors.items()}


def with_noise_at(array: np.ndarray, snr: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(array.shape)
    noise *= np.sqrt(np.sum(array.astype(np.float64) ** 2) / np.sum(noise**2) / 10 ** (snr / 10))
    return (array + noise).astype(np.float32)


def comparison(report, name):
    return next(c for stage in report.stages for c in stage.tensors if c.name == name)


def write_candidate(path, tensors, metadata=None):
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


# --- verdicts ---


def test_identical_candidate_passes_every_stage(golden):
    report = compare_golden(golden, copy_of(golden), {})
    assert report.passed and report.first_divergent_stage is None
    assert all(stage.status == "pass" for stage in report.stages)
    assert comparison(report, "audio").snr_db == float("inf")
    assert comparison(report, "audio").pearson_r == pytest.approx(1.0)


def test_noise_at_60_db_makes_that_stage_the_first_divergent(golden):
    candidate = copy_of(golden)
    candidate["flow.flow_2"] = with_noise_at(candidate["flow.flow_2"], 60)
    report = compare_golden(golden, candidate, {})
    assert report.first_divergent_stage == "flow.flow_2"
    assert report.divergent_stages == ("flow.flow_2",)
    assert comparison(report, "flow.flow_2").snr_db == pytest.approx(60, abs=0.1)
    assert not comparison(report, "flow.flow_2").signatures


def test_failures_downstream_of_a_divergence_are_not_named(golden):
    candidate = copy_of(golden)
    for index, name in enumerate(("flow.flow_2", *DOWNSTREAM_OF_FLOW_2)):
        candidate[name] = with_noise_at(candidate[name], 60 - index, seed=index)
    report = compare_golden(golden, candidate, {})
    assert report.divergent_stages == ("flow.flow_2",)
    failing = [stage for stage in report.stages if stage.status == "fail"]
    assert all(stage.follows_from == ("flow.flow_2",) for stage in failing[1:])
    assert "follows from flow.flow_2" in comparison(report, "audio").note


def test_independent_branches_diverge_separately(golden):
    candidate = copy_of(golden)
    candidate["g"] = with_noise_at(candidate["g"], 50)
    candidate["dec.source"] = with_noise_at(candidate["dec.source"], 50)
    report = compare_golden(golden, candidate, {})
    assert report.divergent_stages == ("speaker", "nsf_source")


def test_teacher_forced_failures_each_diverge(golden):
    candidate = copy_of(golden)
    candidate["z_p"] = with_noise_at(candidate["z_p"], 50)
    candidate["audio"] = with_noise_at(candidate["audio"], 50)
    chained = compare_golden(golden, candidate, {})
    forced = compare_golden(golden, candidate, {}, candidate_metadata={"mode": "teacher-forced"})
    assert chained.divergent_stages == ("prior_sample",)
    assert forced.divergent_stages == ("prior_sample", "audio")


def test_candidate_with_some_stages_compares_only_those(golden):
    candidate = {name: golden.tensors[name] for name in ("m_p", "audio")}
    report = compare_golden(golden, candidate, {})
    statuses = {stage.name: stage.status for stage in report.stages}
    assert statuses["text_encoder"] == "pass" and statuses["audio"] == "pass"
    assert statuses["flow.flow_0"] == "not compared" and "inputs" not in statuses


def test_a_port_changing_an_input_diverges_at_inputs(golden):
    candidate = copy_of(golden)
    candidate["pitchf"] = with_noise_at(candidate["pitchf"], 40)
    candidate["dec.source"] = with_noise_at(candidate["dec.source"], 40)
    report = compare_golden(golden, candidate, {})
    assert report.divergent_stages == ("inputs",)
    assert comparison(report, "dec.source").note.startswith("follows from inputs")


# --- signatures ---


def shift_time(array: np.ndarray, steps: int) -> np.ndarray:
    shifted = np.roll(array, steps, axis=2)
    shifted[:, :, :steps] = 0
    return shifted


SIGNATURE_CASES = {
    "nan_inf": lambda m: np.where(np.arange(m.size).reshape(m.shape) % 7 == 0, np.nan, m),
    "all_zeros": np.zeros_like,
    "transposed_layout": lambda m: m.transpose(0, 2, 1),
    "gain_or_sign": lambda m: 0.5 * m,
    "time_shift": lambda m: shift_time(m, 2),
    "channel_order_reversed": lambda m: m[:, ::-1, :],
    "constant_offset": lambda m: m + 0.25,
}


@pytest.mark.parametrize("kind", sorted(SIGNATURE_CASES))
def test_failing_tensor_names_its_signature(golden, kind):
    candidate = {"m_p": SIGNATURE_CASES[kind](golden.tensors["m_p"]).astype(np.float32)}
    result = comparison(compare_golden(golden, candidate, {}), "m_p")
    assert not result.passed
    assert [signature.kind for signature in result.signatures] == [kind]
    assert result.note


def test_signature_values_report_the_gain_sign_shift_and_offset(golden):
    m_p = golden.tensors["m_p"]
    assert comparison(compare_golden(golden, {"m_p": -m_p}, {}), "m_p").signatures[0].value == pytest.approx(-1)
    assert "sign error" in comparison(compare_golden(golden, {"m_p": -m_p}, {}), "m_p").note
    shifted = comparison(compare_golden(golden, {"m_p": shift_time(m_p, 3)}, {}), "m_p")
    assert shifted.signatures[0].value == 3 and "3 step(s) of T late" in shifted.note
    offset = comparison(compare_golden(golden, {"m_p": m_p - 0.125}, {}), "m_p")
    assert offset.signatures[0].value == pytest.approx(-0.125, abs=1e-6)


def test_channels_last_bytes_under_a_channels_first_shape_are_a_transposed_layout(golden):
    m_p = golden.tensors["m_p"]
    reinterpreted = np.ascontiguousarray(m_p.transpose(0, 2, 1)).reshape(m_p.shape)
    result = comparison(compare_golden(golden, {"m_p": reinterpreted}, {}), "m_p")
    assert result.signatures[0].kind == "transposed_layout" and "shape is written as the golden's" in result.note


def test_undeclared_transposition_suggests_the_layout_to_declare(golden):
    result = comparison(compare_golden(golden, {"m_p": golden.tensors["m_p"].transpose(0, 2, 1)}, {}), "m_p")
    assert result.snr_db is None and '"layout.m_p": "BTC"' in result.note


# --- layouts ---


def test_declared_channels_last_layout_is_transposed_before_comparing(golden):
    candidate = {"m_p": golden.tensors["m_p"].transpose(0, 2, 1), "dec.source": golden.tensors["dec.source"]}
    report = compare_golden(golden, candidate, {"m_p": "BTC"})
    assert report.passed and comparison(report, "m_p").candidate_layout == "BTC"


def test_declared_layout_with_other_axes_is_bad_input(golden):
    with pytest.raises(CandidateFormatError, match="axes B, C, T"):
        compare_golden(golden, {"m_p": golden.tensors["m_p"]}, {"m_p": "BHW"})


def test_declared_layout_not_fitting_the_shape_is_bad_input(golden):
    with pytest.raises(CandidateFormatError, match="does not fit its declared layout BTC"):
        compare_golden(golden, {"m_p": golden.tensors["m_p"][0]}, {"m_p": "BTC"})


def test_candidate_without_golden_names_is_bad_input(golden):
    with pytest.raises(CandidateFormatError, match="none of the golden set's tensors"):
        compare_golden(golden, {"mp": golden.tensors["m_p"]}, {})


def test_unknown_candidate_tensors_are_listed_not_compared(golden):
    report = compare_golden(golden, {"m_p": golden.tensors["m_p"], "debug.x": np.zeros(3)}, {})
    assert report.unknown_tensors == ("debug.x",) and report.passed
    assert "ignored (not in the golden set): debug.x" in render_report_table(report)


# --- candidate files ---


def test_load_candidate_reads_layouts_and_metadata(tmp_path, golden):
    path = write_candidate(tmp_path / "c.safetensors", {"m_p": golden.tensors["m_p"].transpose(0, 2, 1)},
                           {"layout.m_p": "BTC", "producer": "swift", "mode": "chained"})
    candidate = load_candidate(path)
    assert candidate.layouts == {"m_p": "BTC"}
    assert candidate.metadata == {"producer": "swift", "mode": "chained"}


def test_damaged_candidate_file_is_bad_input(tmp_path):
    (tmp_path / "c.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CandidateFormatError, match="not a readable safetensors file"):
        load_candidate(tmp_path / "c.safetensors")


def test_malformed_layout_declaration_is_bad_input(tmp_path):
    path = write_candidate(tmp_path / "c.safetensors", {"m_p": np.zeros((1, 2, 3), np.float32)}, {"layout.m_p": "btc"})
    with pytest.raises(CandidateFormatError, match="distinct capital axis letters"):
        load_candidate(path)


# --- measures, report, command ---


def test_snr_is_infinite_for_identical_and_matches_its_definition():
    reference = np.array([3.0, 4.0])
    assert snr_db(reference, reference) == float("inf")
    assert snr_db(reference, reference + [0.0, 0.25]) == pytest.approx(10 * np.log10(25 / 0.0625))


def test_table_has_the_agreed_columns_and_verdict(golden):
    candidate = copy_of(golden)
    candidate["z"] = with_noise_at(candidate["z"], 60)
    text = render_report_table(compare_golden(golden, candidate, {}))
    assert text.splitlines()[0].split() == ["stage", "tensor", "SNR", "dB", "Pearson", "r", "max", "abs", "rel",
                                            "L2", "min", "dB", "result", "note"]
    assert "first divergent stage: flow" in text and "FAIL" in text


def test_json_report_matches_its_schema_with_infinite_and_missing_measures(tmp_path, golden):
    candidate = copy_of(golden)
    candidate["m_p"] = candidate["m_p"].transpose(0, 2, 1)
    document = write_report_json(compare_golden(golden, candidate, {}), tmp_path / "report.json")
    assert schema_problems(json.loads((tmp_path / "report.json").read_text()), "parity-report.schema.json") == []
    assert document["first_divergent_stage"] == "text_encoder"
    tensors = {t["name"]: t for stage in document["stages"] for t in stage["tensors"]}
    assert tensors["audio"]["snr_db"] == "inf" and tensors["m_p"]["snr_db"] is None


def test_diff_command_exits_0_when_every_stage_passes(tmp_path, golden):
    path = write_candidate(tmp_path / "c.safetensors", copy_of(golden))
    out = io.StringIO()
    assert run_diff_command(golden.directory, path, stdout=out) == 0
    assert "PASS: all" in out.getvalue()


def test_diff_command_exits_1_and_plots_each_failing_stage(tmp_path, golden):
    candidate = copy_of(golden)
    candidate["flow.flow_2"] = with_noise_at(candidate["flow.flow_2"], 60)
    candidate["dec.source"] = candidate["dec.source"] * -1
    path = write_candidate(tmp_path / "c.safetensors", candidate)
    code = run_diff_command(golden.directory, path, tmp_path / "r.json", tmp_path / "plots", stdout=io.StringIO())
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["05_flow.flow_2.png", "09_nsf_source.png"]
    assert json.loads((tmp_path / "r.json").read_text())["divergent_stages"] == ["flow.flow_2", "nsf_source"]


def test_diff_command_exits_2_with_a_message_for_bad_input(tmp_path, golden):
    err = io.StringIO()
    assert run_diff_command(golden.directory, tmp_path / "absent.safetensors", stderr=err) == 2
    assert err.getvalue().startswith("error: ") and "does not exist" in err.getvalue()
    (golden.directory / "index.json").write_text("{")
    path = write_candidate(tmp_path / "c.safetensors", copy_of(golden))
    err = io.StringIO()
    assert run_diff_command(golden.directory, path, stderr=err) == 2
    assert "not readable JSON" in err.getvalue()


def test_plot_shows_nan_candidates_without_failing(tmp_path, golden):
    candidate = {"audio": np.full_like(golden.tensors["audio"], np.nan)}
    path = write_candidate(tmp_path / "c.safetensors", candidate)
    assert run_diff_command(golden.directory, path, plot_dir=tmp_path / "plots", stdout=io.StringIO()) == 1
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["15_audio.png"]


def test_shape_constants_keep_channels_and_time_distinct():
    assert CHANNELS != FRAMES  # a transposition must change the shape for the tests above to mean anything
