"""Content encoder loading and export: both formats, safe unpickling, the weight-norm fold, the rule table, the
manifest, and the errors a user's file can cause."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import types

import numpy as np
import pytest
import safetensors.numpy
from typer.testing import CliRunner

from rvc_ios_tools.cli import app
from rvc_ios_tools.core.errors import (
    ConfigMismatchError,
    CorruptFileError,
    MissingKeyError,
    UnknownKeyError,
    UnsafeCheckpointError,
    UnsupportedVoiceError,
)
from rvc_ios_tools.core.files import xxh64_tensor
from rvc_ios_tools.core.manifest import load_exported, read_manifest
from rvc_ios_tools.core.rules import find_rule, fold_weight_norm, merge_weight_norm, weight_norm_dim
from rvc_ios_tools.hubert.convert import (
    ARCHITECTURE,
    HUBERT_RULES,
    TINY_ARCHITECTURE,
    FairseqDictionary,
    convert_hubert,
    convert_hubert_state_dict,
    frame_count,
    hubert_export_shapes,
    is_hubert_source,
    load_hubert,
    parse_conv_feature_layers,
)
from rvc_ios_tools.hubert.demo import (
    random_hubert_state_dict,
    to_fairseq_names,
    write_demo_fairseq,
    write_demo_hf_folder,
)
from rvc_ios_tools.hubert.export import export_hubert

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The tiny demo encoder (seed 0) in every format a user may hold."""
    folder = tmp_path_factory.mktemp("hubert-sources")
    return {
        "fairseq": write_demo_fairseq(folder / "hubert_base.pt", seed=0, preset="tiny"),
        "fairseq_fp16": write_demo_fairseq(folder / "hubert_fp16.pt", seed=0, preset="tiny", dtype="float16"),
        "hf_safetensors": write_demo_hf_folder(folder / "contentvec", seed=0, preset="tiny"),
        "hf_bin_legacy": write_demo_hf_folder(folder / "contentvec_bin", seed=0, preset="tiny", weights_format="bin",
                                              legacy_weight_norm=True),
    }


def exported(source):
    return convert_hubert(load_hubert(source))


# --- the weight-norm fold -------------------------------------------------------------------------------


def test_fold_takes_its_dim_from_the_gain_shape_per_kernel_tap():
    """HuBERT's positional conv: weight_norm(dim=2), g (1, 1, K), the norm over axes (0, 1) for each tap."""
    rng = np.random.default_rng(0)
    v = rng.standard_normal((12, 3, 8)).astype(np.float32)
    g = rng.uniform(0.5, 2.0, (1, 1, 8)).astype(np.float32)
    expected = g * v / np.sqrt((v.astype(np.float64) ** 2).sum(axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(fold_weight_norm(g, v), expected, rtol=1e-6)
    conv = torch.nn.utils.weight_norm(torch.nn.Conv1d(3 * 4, 12, 8, groups=4), dim=2)
    with torch.no_grad():
        conv.weight_g.copy_(torch.from_numpy(g))
        conv.weight_v.copy_(torch.from_numpy(v))
        conv(torch.zeros(1, 12, 8))  # the hook recomputes the weight
    np.testing.assert_array_equal(fold_weight_norm(g, v), conv.weight.detach().numpy())


def test_fold_of_a_voice_gain_stays_over_dim_0():
    assert weight_norm_dim((5, 1, 1), (5, 3, 7)) == 0
    assert weight_norm_dim((1, 1, 1), (1, 3, 7)) == 0  # one output row: PyTorch's default dim
    assert weight_norm_dim((1, 1, 128), (768, 48, 128)) == 2


def test_an_impossible_gain_is_an_error_naming_the_key_not_a_crash(sources):
    state = load_hubert(sources["fairseq"]).state_dict
    broken = dict(state)
    broken["encoder.pos_conv.0.weight_g"] = np.ones((1, 2, 16), dtype=np.float32)
    with pytest.raises(ConfigMismatchError, match=r"encoder\.pos_conv\.0\.weight_g"):
        convert_hubert_state_dict(broken, TINY_ARCHITECTURE)
    with pytest.raises(ConfigMismatchError, match="weight-norm gain"):
        fold_weight_norm(np.ones((3,), np.float32), np.ones((4, 3, 2), np.float32))


# --- the rule table -------------------------------------------------------------------------------------


def test_both_spellings_of_every_module_map_to_one_exported_key():
    hf = random_hubert_state_dict(0, TINY_ARCHITECTURE)
    for state in (hf, to_fairseq_names(hf)):
        targets = set()
        for key in merge_weight_norm(state)[0]:  # weight-norm pairs under their `weight` key
            module, _, _ = key.rpartition(".")
            found = find_rule(module, HUBERT_RULES) or find_rule(key, HUBERT_RULES)
            assert found is not None, key
            rule, match = found
            if rule.target is not None:
                targets.add(rule.target_key(match))
        exported_modules = {key.rpartition(".")[0] for key in hubert_export_shapes(TINY_ARCHITECTURE)}
        assert targets == exported_modules


def test_every_format_exports_the_same_tensors(sources):
    reference = exported(sources["hf_safetensors"])
    assert set(reference) == set(hubert_export_shapes(TINY_ARCHITECTURE))
    for name in ("fairseq", "hf_bin_legacy"):
        other = exported(sources[name])
        assert set(other) == set(reference)
        for key in reference:
            np.testing.assert_array_equal(other[key], reference[key], err_msg=f"{name}: {key}")


def test_layouts_are_channels_last_and_the_positional_conv_is_folded(sources):
    hf = random_hubert_state_dict(0, TINY_ARCHITECTURE)
    weights = exported(sources["hf_safetensors"])
    conv = hf["feature_extractor.conv_layers.1.conv.weight"].numpy()
    np.testing.assert_array_equal(weights["feature_extractor.conv_1.weight"], conv.transpose(0, 2, 1))
    g = hf["encoder.pos_conv_embed.conv.parametrizations.weight.original0"]
    v = hf["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    folded = torch._weight_norm(v, g, 2).numpy()
    np.testing.assert_array_equal(weights["encoder.pos_conv.weight"], folded.transpose(0, 2, 1))
    assert not np.allclose(folded, v.numpy()), "the demo's gain must differ from ||v|| so the fold matters"
    np.testing.assert_array_equal(weights["final_proj.weight"], hf["final_proj.weight"].numpy())


def test_training_only_tensors_are_dropped_by_named_rules(sources):
    checkpoint = load_hubert(sources["fairseq"])
    _, dropped = convert_hubert_state_dict(checkpoint.state_dict, checkpoint.architecture)
    assert {d.source_key for d in dropped} == {"mask_emb", "label_embs_concat"}
    assert all("training only" in d.why for d in dropped)


def test_an_unknown_key_is_an_error(sources):
    state = dict(load_hubert(sources["hf_safetensors"]).state_dict)
    state["encoder.layers.0.attention.rotary.weight"] = np.zeros(3, np.float32)
    with pytest.raises(UnknownKeyError, match="rotary"):
        convert_hubert_state_dict(state, TINY_ARCHITECTURE)


def test_a_missing_or_misshapen_tensor_is_named(sources):
    state = dict(load_hubert(sources["hf_safetensors"]).state_dict)
    with pytest.raises(MissingKeyError, match="final_norm"):
        convert_hubert_state_dict({k: v for k, v in state.items() if "layers.2.final_layer_norm.bias" not in k},
                                  TINY_ARCHITECTURE)
    wrong = {**state, "encoder.layers.1.feed_forward.output_dense.weight": np.zeros((48, 65), np.float32)}
    with pytest.raises(ConfigMismatchError, match="output_dense"):
        convert_hubert_state_dict(wrong, TINY_ARCHITECTURE)


def test_frame_count_is_that_of_the_unpadded_front_end():
    assert [frame_count(n) for n in (399, 400, 719, 720, 16000, 16320, 48000)] == [0, 1, 1, 2, 49, 50, 149]
    assert all(frame_count(n) == (n - 400) // 320 + 1 for n in range(400, 5000, 7))


# --- loading ---------------------------------------------------------------------------------------------


def test_fairseq_file_loads_with_only_the_dictionary_stand_in(sources):
    checkpoint = load_hubert(sources["fairseq"])
    assert checkpoint.flavor == "fairseq"
    assert checkpoint.architecture == TINY_ARCHITECTURE
    assert "task_state" in checkpoint.dropped_entries and "model" not in checkpoint.dropped_entries
    # The same file through a plain weights-only load is refused: the stand-in is what makes it loadable.
    with pytest.raises(Exception, match="fairseq.data.dictionary.Dictionary"):
        torch.load(sources["fairseq"], weights_only=True)


def test_the_dictionary_is_read_into_an_inert_stand_in(sources):
    from rvc_ios_tools.core.pickles import load_pickle_safely
    from rvc_ios_tools.hubert.convert import FAIRSEQ_DICTIONARY_GLOBAL

    payload = load_pickle_safely(sources["fairseq"], stand_ins=[(FairseqDictionary, FAIRSEQ_DICTIONARY_GLOBAL)])
    (dictionary,) = payload["task_state"]["dictionaries"]
    assert type(dictionary) is FairseqDictionary
    assert len(dictionary.symbols) == 504 and "fairseq" not in sys.modules


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_payload_never_runs(sources, tmp_path):
    marker = tmp_path / "ran"
    payload = {"cfg": {"model": {}}, "model": {}, "task_state": {"dictionaries": [_RunsCode(marker)]}}
    path = tmp_path / "evil.pt"
    torch.save(payload, path)
    with pytest.raises(UnsafeCheckpointError, match="Nothing in it was run"):
        load_hubert(path)
    assert not marker.exists()


def test_a_payload_posing_as_the_dictionary_never_runs(tmp_path):
    """A pickle that names fairseq's Dictionary but asks to build it through os.system is still refused."""
    marker = tmp_path / "ran"
    fake = types.ModuleType("fairseq.data.dictionary")

    class Dictionary:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    Dictionary.__module__ = "fairseq.data.dictionary"
    fake.Dictionary = Dictionary
    sys.modules["fairseq.data.dictionary"] = fake
    try:
        buffer = io.BytesIO()
        torch.save({"cfg": {"model": {}}, "model": {}, "task_state": {"dictionaries": [Dictionary()]}}, buffer)
    finally:
        del sys.modules["fairseq.data.dictionary"]
    (tmp_path / "posing.pt").write_bytes(buffer.getvalue())
    with pytest.raises(UnsafeCheckpointError):
        load_hubert(tmp_path / "posing.pt")
    assert not marker.exists()


def test_fp16_fairseq_file_converts_through_float32(sources):
    half = exported(sources["fairseq_fp16"])
    full = exported(sources["fairseq"])
    for key in full:
        assert half[key].dtype == np.float32
        np.testing.assert_allclose(half[key], full[key], rtol=2e-3, atol=2e-3, err_msg=key)


def test_hf_folder_loads_from_the_folder_or_a_file_in_it(sources):
    folder = sources["hf_safetensors"]
    assert load_hubert(folder / "config.json").architecture == load_hubert(folder).architecture == TINY_ARCHITECTURE
    assert load_hubert(sources["hf_bin_legacy"]).weights_file.name == "pytorch_model.bin"


def test_sizes_and_head_count_come_from_the_config(sources, tmp_path):
    folder = tmp_path / "eight-heads"
    shutil.copytree(sources["hf_safetensors"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["num_attention_heads"] = 8
    (folder / "config.json").write_text(json.dumps(config))
    assert load_hubert(folder).architecture["num_heads"] == 8
    config["hidden_size"] = 64
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigMismatchError, match="the config"):
        convert_hubert(load_hubert(folder))


@pytest.mark.parametrize("field, value", [("do_stable_layer_norm", True), ("feat_extract_norm", "layer"),
                                          ("conv_bias", True), ("hidden_act", "relu")])
def test_another_architecture_is_refused_by_name(sources, tmp_path, field, value):
    folder = tmp_path / "other"
    shutil.copytree(sources["hf_safetensors"], folder)
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedVoiceError, match=field):
        load_hubert(folder)


def test_a_folder_without_weights_or_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CorruptFileError, match="neither model.safetensors nor pytorch_model.bin"):
        load_hubert(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorruptFileError, match="has no config.json"):
        load_hubert(tmp_path / "empty")


def test_conv_feature_layers_are_read_without_eval():
    assert parse_conv_feature_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2", "cfg") == ARCHITECTURE["conv_layers"]
    with pytest.raises(ConfigMismatchError):
        parse_conv_feature_layers("__import__('os').system('true')", "cfg")


def test_sources_are_recognised_without_unpickling(sources, voice_file):
    for source in sources.values():
        assert is_hubert_source(source)
    assert not is_hubert_source(voice_file("v2-40k-tiny"))


# --- export and CLI ------------------------------------------------------------------------------------


def test_export_writes_weights_and_a_hubert_manifest(sources, tmp_path):
    weights_path, manifest_path = export_hubert(sources["fairseq"], tmp_path)
    manifest = read_manifest(manifest_path)
    assert manifest["kind"] == "hubert" and manifest["source"]["flavor"] == "fairseq"
    assert manifest["hubert"]["architecture"] == TINY_ARCHITECTURE
    assert manifest["hubert"]["receptive_field"] == 400 and manifest["hubert"]["hop_length"] == 320
    assert {row["key"] for row in manifest["dropped"]} >= {"mask_emb", "label_embs_concat", "task_state"}
    tensors = safetensors.numpy.load_file(str(weights_path))
    for row in manifest["tensors"]:
        assert xxh64_tensor(tensors[row["key"]]) == row["xxh64"]
    assert row["layout"] in ("OKI", "OI", "O", "C")
    load_exported(tmp_path, "hubert_base")


def test_export_is_deterministic(sources, tmp_path):
    export_hubert(sources["hf_safetensors"], tmp_path / "a")
    export_hubert(sources["hf_safetensors"], tmp_path / "b")
    for name in ("contentvec.safetensors", "contentvec.manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_cli_inspect_and_export(sources, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(sources["fairseq"])])
    assert result.exit_code == 0, result.output
    assert "fairseq" in result.output and "num_heads" in result.output and "task_state" in result.output
    result = runner.invoke(app, ["export", "--hubert", str(sources["hf_bin_legacy"]), "--output-dir", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert read_manifest(tmp_path / "contentvec_bin.manifest.json")["source"]["flavor"] == "huggingface"


def test_cli_refuses_a_crafted_file_in_one_line(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"cfg": {"model": {}}, "model": {"post_extract_proj.weight": torch.zeros(1)},
                "feature_extractor.conv_layers": _RunsCode(tmp_path / "ran")}, path)
    result = CliRunner().invoke(app, ["export", "--hubert", str(path), "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Refused" in result.output
    assert not (tmp_path / "ran").exists() and not (tmp_path / "out").exists()
