"""Golden sets on disk (golden.py) and the stage tables they follow (stages.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors

from rvc_ios_tools.core.golden import GoldenFormatError, read_golden, write_golden
from rvc_ios_tools.voice.inputs import InputsFileError, coarse_pitch, read_inputs_file, synthesize_voice_inputs
from rvc_ios_tools.kinds import STAGE_TABLE_BUILDERS, UnknownModelKindError, stage_table_for
from rvc_ios_tools.core.stages import ModelConfigError, StageTable, StageTableError, Stage, TensorSpec
from rvc_ios_tools.voice.stages import voice_stage_table

VOICE_CONFIG = {"f0": True, "version": "v2", "upsample_rates": [10, 10, 2, 2], "spk_embed_dim": 4}
CHANNELS, FRAMES = 6, 40


def synthetic_golden_tensors(table: StageTable, seed: int = 0) -> dict[str, np.ndarray]:
    """Random tensors named and laid out as the table says: B=1, C=6, T=40 (so C and T never coincide)."""
    rng = np.random.default_rng(seed)
    sizes = {"B": 1, "C": CHANNELS, "T": FRAMES, "H": 5, "W": 7}
    tensors = {}
    for spec in table.tensors:
        shape = [sizes[axis] for axis in spec.layout]
        values = rng.integers(1, 256, shape) if spec.dtype.startswith("int") else rng.standard_normal(shape)
        tensors[spec.name] = values.astype(spec.dtype)
    return tensors


def write_synthetic_golden(directory, table: StageTable | None = None, seed: int = 0):
    table = table or voice_stage_table(VOICE_CONFIG)
    return write_golden(
        directory, table.kind, synthetic_golden_tensors(table, seed), table,
        model_name="Test", manifest_sha256="ab" * 32, seed=seed, tool_version="0.1.0", extra={"seconds": 0.4},
    )


# --- stage tables ---


def test_voice_stage_table_follows_upstream_inference_order():
    names = [stage.name for stage in voice_stage_table(VOICE_CONFIG).stages]
    assert names == [
        "speaker", "text_encoder", "prior_sample", "flow.flow_3", "flow.flow_2", "flow.flow_1", "flow.flow_0",
        "flow", "nsf_source", "dec.conv_pre", "dec.up_0", "dec.up_1", "dec.up_2", "dec.up_3", "audio",
    ]


def test_voice_stage_table_wires_each_stage_from_the_previous():
    table = voice_stage_table(VOICE_CONFIG)
    assert table.stage("flow.flow_3").inputs == ("z_p", "x_mask", "g")
    assert table.stage("flow.flow_2").inputs == ("flow.flow_3", "x_mask", "g")
    assert table.stage("dec.up_1").inputs == ("dec.up_0", "dec.source")
    assert table.stage("nsf_source").inputs == ("pitchf", "noise.nsf", "noise.nsf_phase")
    assert table.tensor("audio").role == "output"
    assert table.tensor("dec.source").layout == "BTC"
    assert all(stage.min_snr_db == 80.0 for stage in table.stages)


def test_voice_without_f0_has_no_pitch_or_source():
    table = voice_stage_table({"f0": False, "version": "v1", "upsample_rates": [10, 10, 2, 2]})
    assert not {"pitch", "pitchf", "noise.nsf", "noise.nsf_phase", "dec.source"} & set(table.tensor_names)
    assert table.stage("text_encoder").inputs == ("phone", "phone_lengths")
    assert table.stage("dec.up_0").inputs == ("dec.conv_pre",)


def test_upsampling_stage_count_comes_from_the_config():
    table = voice_stage_table({"f0": True, "version": "v1", "config": {"upsample_rates": [10, 4, 2, 2, 2]}})
    assert [s.name for s in table.stages if s.name.startswith("dec.up_")] == [f"dec.up_{i}" for i in range(5)]


def test_voice_stage_table_reads_the_upstream_config_list():
    raw = [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [12, 10, 2, 2], 512,
           [24, 20, 4, 4], 109, 256, 48000]
    table = voice_stage_table({"f0": 1, "version": "v2", "config": raw})
    assert table.stage("audio").inputs == ("dec.up_3",)


def test_voice_config_without_f0_flag_is_refused():
    with pytest.raises(ModelConfigError, match="f0"):
        voice_stage_table({"version": "v2", "upsample_rates": [10, 10, 2, 2]})


def test_unknown_model_kind_names_the_known_ones():
    with pytest.raises(UnknownModelKindError, match="voice"):
        stage_table_for("nope", {})
    assert stage_table_for("voice", VOICE_CONFIG) == voice_stage_table(VOICE_CONFIG)
    assert "voice" in STAGE_TABLE_BUILDERS


def test_stage_reading_a_tensor_before_it_is_produced_is_refused():
    with pytest.raises(StageTableError, match="before any earlier stage produces it"):
        StageTable(
            "toy",
            (Stage("second", ("a",), ("b",), 80.0), Stage("first", ("x",), ("a",), 80.0)),
            (TensorSpec("x", "input", "BT"), TensorSpec("a", "intermediate", "BT", "first"),
             TensorSpec("b", "output", "BT", "second")),
        )


# --- writing and reading golden sets ---


def test_round_trip_keeps_every_tensor_and_the_stage_table(tmp_path):
    written = write_synthetic_golden(tmp_path / "g")
    golden = read_golden(tmp_path / "g")
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["golden.safetensors", "index.json"]
    assert golden.stage_table == written.stage_table
    assert set(golden.tensors) == set(written.tensors)
    for name, array in written.tensors.items():
        np.testing.assert_array_equal(golden.tensors[name], array)
    assert golden.kind == "voice" and golden.model_name == "Test"
    assert golden.index["seed"] == 0 and golden.index["extra"] == {"seconds": 0.4}


def test_index_lists_role_layout_and_checksum_of_each_tensor(tmp_path):
    write_synthetic_golden(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    entry = next(t for t in index["tensors"] if t["name"] == "m_p")
    assert entry["stage"] == "text_encoder" and entry["role"] == "intermediate" and entry["layout"] == "BCT"
    assert entry["shape"] == [1, CHANNELS, FRAMES] and entry["dtype"] == "float32" and len(entry["sha256"]) == 64
    assert next(t for t in index["tensors"] if t["name"] == "pitch")["dtype"] == "int32"
    assert next(t for t in index["tensors"] if t["name"] == "phone")["stage"] is None


def test_golden_safetensors_declares_layouts_as_metadata(tmp_path):
    write_synthetic_golden(tmp_path)
    with safetensors.safe_open(str(tmp_path / "golden.safetensors"), framework="numpy") as handle:
        metadata = handle.metadata()
    assert metadata["layout.phone"] == "BTC" and metadata["layout.m_p"] == "BCT"


def test_missing_tensor_writes_nothing(tmp_path):
    table = voice_stage_table(VOICE_CONFIG)
    tensors = synthetic_golden_tensors(table)
    del tensors["z_p"]
    with pytest.raises(GoldenFormatError, match="did not record z_p"):
        write_golden(tmp_path, "voice", tensors, table, model_name="T", manifest_sha256="0" * 64, seed=0,
                     tool_version="0.1.0")
    assert list(tmp_path.iterdir()) == []


def test_nan_in_reference_is_refused(tmp_path):
    table = voice_stage_table(VOICE_CONFIG)
    tensors = synthetic_golden_tensors(table)
    tensors["audio"][0, 0, 3] = np.nan
    with pytest.raises(GoldenFormatError, match="NaN"):
        write_golden(tmp_path, "voice", tensors, table, model_name="T", manifest_sha256="0" * 64, seed=0,
                     tool_version="0.1.0")


def test_tensor_in_another_dtype_than_the_format_is_refused(tmp_path):
    table = voice_stage_table(VOICE_CONFIG)
    tensors = synthetic_golden_tensors(table)
    tensors["phone_lengths"] = tensors["phone_lengths"].astype(np.int64)
    with pytest.raises(GoldenFormatError, match="`phone_lengths` is int64; the golden format stores it as int32"):
        write_golden(tmp_path, "voice", tensors, table, model_name="T", manifest_sha256="0" * 64, seed=0,
                     tool_version="0.1.0")


def test_index_failing_the_schema_is_not_written(tmp_path):
    table = voice_stage_table(VOICE_CONFIG)
    with pytest.raises(GoldenFormatError, match="manifest_sha256"):
        write_golden(tmp_path, "voice", synthetic_golden_tensors(table), table, model_name="T",
                     manifest_sha256="not-a-sha", seed=0, tool_version="0.1.0")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_the_previous_set_intact(tmp_path):
    write_synthetic_golden(tmp_path, seed=1)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    table = voice_stage_table(VOICE_CONFIG)
    tensors = synthetic_golden_tensors(table)
    tensors["g"] = tensors["g"][0]  # wrong number of axes
    with pytest.raises(GoldenFormatError, match="layout BCT needs 3 axes"):
        write_golden(tmp_path, "voice", tensors, table, model_name="T", manifest_sha256="0" * 64, seed=0,
                     tool_version="0.1.0")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_truncated_safetensors_is_reported_as_damaged(tmp_path):
    write_synthetic_golden(tmp_path)
    path = tmp_path / "golden.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(GoldenFormatError, match="damaged or truncated.*golden generate"):
        read_golden(tmp_path)


def test_garbage_safetensors_is_reported_as_damaged(tmp_path):
    write_synthetic_golden(tmp_path)
    (tmp_path / "golden.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(GoldenFormatError, match="damaged or truncated"):
        read_golden(tmp_path)


def test_changed_tensor_bytes_fail_the_checksum(tmp_path):
    write_synthetic_golden(tmp_path)
    path = tmp_path / "golden.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last tensor in the file (safetensors sorts by name)
    path.write_bytes(bytes(data))
    with pytest.raises(GoldenFormatError, match="do not match the sha256"):
        read_golden(tmp_path)


def test_index_failing_the_schema_is_reported_with_its_place(tmp_path):
    write_synthetic_golden(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    index["tensors"][0]["role"] = "weights"
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(GoldenFormatError, match=r"golden.schema.json: tensors/0/role"):
        read_golden(tmp_path)


def test_index_and_file_disagreeing_on_shape_is_reported(tmp_path):
    write_synthetic_golden(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    next(t for t in index["tensors"] if t["name"] == "z")["shape"] = [1, CHANNELS, FRAMES + 1]
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(GoldenFormatError, match="`z` has shape"):
        read_golden(tmp_path)


def test_index_listing_a_tensor_the_file_lacks_is_reported(tmp_path):
    write_synthetic_golden(tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    index["tensors"].append({**index["tensors"][0], "name": "extra_input"})
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(GoldenFormatError, match="missing extra_input"):
        read_golden(tmp_path)


def test_missing_golden_folder_says_what_a_golden_set_is(tmp_path):
    with pytest.raises(GoldenFormatError, match="index.json and golden.safetensors"):
        read_golden(tmp_path / "absent")


def test_any_stage_table_can_be_written(tmp_path):
    table = StageTable(
        "toy",
        (Stage("mel", ("audio16k",), ("mel",), 60.0), Stage("decode", ("mel",), ("f0",), 40.0)),
        (TensorSpec("audio16k", "input", "BT"), TensorSpec("mel", "intermediate", "BCT", "mel"),
         TensorSpec("f0", "output", "BT", "decode")),
    )
    write_synthetic_golden(tmp_path, table)
    assert read_golden(tmp_path).stage_table == table


# --- inputs for golden runs ---


def test_coarse_pitch_matches_upstream_mel_mapping():
    # 0 Hz (unvoiced) and anything at or below f0_min map to 1; f0_max and above to 255.
    f0 = np.array([0.0, 30.0, 50.0, 100.0, 440.0, 1100.0, 2000.0])
    np.testing.assert_array_equal(coarse_pitch(f0), [1, 1, 1, 20, 122, 255, 255])
    assert coarse_pitch(f0).dtype == np.int32


def test_synthesized_inputs_have_golden_shapes_and_dtypes():
    inputs = synthesize_voice_inputs(VOICE_CONFIG, seed=3, seconds=1.0)
    assert inputs["phone"].shape == (1, 100, 768) and inputs["phone"].dtype == np.float32
    assert inputs["phone_lengths"].tolist() == [100] and inputs["sid"].tolist() == [0]
    assert inputs["pitch"].shape == inputs["pitchf"].shape == (1, 100)
    assert inputs["pitch"].dtype == np.int32 and inputs["pitchf"].dtype == np.float32


def test_synthesized_phone_frames_repeat_in_pairs_like_upstream_interpolation():
    phone = synthesize_voice_inputs(VOICE_CONFIG, seed=3, seconds=0.5)["phone"][0]
    np.testing.assert_array_equal(phone[0::2], phone[1::2])
    assert not np.array_equal(phone[0], phone[2])


def test_synthesized_f0_has_voiced_and_unvoiced_stretches_and_its_coarse_pitch():
    inputs = synthesize_voice_inputs(VOICE_CONFIG, seed=5, seconds=2.0)
    pitchf = inputs["pitchf"][0]
    assert (pitchf == 0).sum() >= 8 and (pitchf > 0).sum() >= 30
    assert pitchf[pitchf > 0].min() > 50 and pitchf.max() < 1100
    np.testing.assert_array_equal(inputs["pitch"], coarse_pitch(inputs["pitchf"]))


def test_synthesized_inputs_are_deterministic_in_the_seed():
    first = synthesize_voice_inputs(VOICE_CONFIG, seed=9, seconds=0.5)
    second = synthesize_voice_inputs(VOICE_CONFIG, seed=9, seconds=0.5)
    other = synthesize_voice_inputs(VOICE_CONFIG, seed=10, seconds=0.5)
    assert all(np.array_equal(first[name], second[name]) for name in first)
    assert not np.array_equal(first["phone"], other["phone"])


def test_voice_without_f0_gets_no_pitch_inputs():
    inputs = synthesize_voice_inputs({"f0": False, "version": "v1", "upsample_rates": [10, 10, 2, 2]}, 0, 0.5)
    assert set(inputs) == {"phone", "phone_lengths", "sid"} and inputs["phone"].shape[2] == 256


def test_inputs_file_gets_defaults_and_coarse_pitch_from_pitchf(tmp_path):
    pitchf = np.array([[0.0, 100.0, 440.0]], dtype=np.float32)
    np.savez(tmp_path / "in.npz", phone=np.zeros((1, 3, 768), np.float32), pitchf=pitchf)
    inputs = read_inputs_file(tmp_path / "in.npz", VOICE_CONFIG)
    assert inputs["pitch"].tolist() == [[1, 20, 122]]
    assert inputs["phone_lengths"].tolist() == [3] and inputs["sid"].tolist() == [0]


def test_inputs_file_with_unknown_tensor_is_refused(tmp_path):
    np.savez(tmp_path / "in.npz", phone=np.zeros((1, 3, 768), np.float32), f0=np.zeros((1, 3)))
    with pytest.raises(InputsFileError, match="unknown tensors f0"):
        read_inputs_file(tmp_path / "in.npz")


def test_inputs_file_with_wrong_feature_size_for_the_voice_is_refused(tmp_path):
    np.savez(tmp_path / "in.npz", phone=np.zeros((1, 3, 256), np.float32), pitchf=np.zeros((1, 3), np.float32))
    with pytest.raises(InputsFileError, match="this voice takes 768"):
        read_inputs_file(tmp_path / "in.npz", VOICE_CONFIG)


def test_unreadable_inputs_file_is_refused(tmp_path):
    (tmp_path / "in.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputsFileError, match="cannot be read"):
        read_inputs_file(tmp_path / "in.safetensors")
