"""rmvpe.pt -> safetensors + manifest: the rule table, layouts, named errors and the written files."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors.numpy

from rvc_ios_tools.core.rules import find_rule
from rvc_ios_tools.core.errors import (
    ConfigMismatchError,
    CorruptFileError,
    MissingKeyError,
    UnknownKeyError,
    UnsafeCheckpointError,
    WeightsMismatchError,
)
from rvc_ios_tools.core.files import xxh64_tensor
from rvc_ios_tools.core.manifest import read_manifest
from rvc_ios_tools.rmvpe.model import E2E
from rvc_ios_tools.rmvpe.convert import (
    ARCHITECTURE,
    RMVPE_RULES,
    check_architecture,
    DEMO_ARCHITECTURES,
    TINY_ARCHITECTURE,
    convert_rmvpe_state_dict,
    select_architecture,
    upstream_rmvpe_shapes,
)
from rvc_ios_tools.rmvpe.export import export_rmvpe
from rvc_ios_tools.rmvpe.demo import random_rmvpe_state_dict, write_demo_rmvpe
from rvc_ios_tools.rmvpe.reference import build_rmvpe

torch = pytest.importorskip("torch")


def numbered_state_dict(architecture=ARCHITECTURE) -> dict[str, np.ndarray]:
    """Every upstream tensor, each filled with distinct values (its element index plus a per-key offset), so
    a transposed or swapped tensor cannot pass. Integer counters stay int64 as in a real checkpoint."""
    state = {}
    for offset, (key, shape) in enumerate(sorted(upstream_rmvpe_shapes(architecture).items())):
        if key.endswith("num_batches_tracked"):
            state[key] = np.array(7, dtype=np.int64)
        else:
            state[key] = (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + offset) % 4099
    return state


@pytest.fixture(scope="module")
def numbered():
    state = numbered_state_dict()
    converted, dropped, _ = convert_rmvpe_state_dict(state)
    return state, converted, dropped


def mlx_parameter_shapes(architecture=ARCHITECTURE) -> dict[str, tuple[int, ...]]:
    from mlx.utils import tree_flatten

    return {key: tuple(value.shape) for key, value in tree_flatten(E2E.from_architecture(architecture).parameters())}


def test_shape_table_is_upstream_e2e_state_dict():
    upstream = pytest.importorskip("rvc.lib.rmvpe", reason="upstream rvc (with librosa) is a test dependency")
    with torch.device("meta"):
        model = upstream.E2E(4, 1, (2, 2))
    assert upstream_rmvpe_shapes() == {key: tuple(t.shape) for key, t in model.state_dict().items()}


def test_tiny_shape_table_is_upstream_e2e_with_a_narrower_bigru():
    from rvc_ios_tools.rmvpe.upstream import upstream_rmvpe_e2e as upstream_e2e

    with torch.device("meta"):
        model = upstream_e2e(TINY_ARCHITECTURE)
    assert upstream_rmvpe_shapes(TINY_ARCHITECTURE) == {key: tuple(t.shape) for key, t in model.state_dict().items()}


def test_tiny_preset_keeps_every_layer_kind_and_stays_small():
    shapes = upstream_rmvpe_shapes(TINY_ARCHITECTURE)
    for kind in ("unet.encoder", "unet.intermediate", "unet.decoder"):
        blocks = {key.rsplit(".conv.", 1)[0] for key in shapes if key.startswith(kind) and ".conv.0.weight" in key}
        with_shortcut = {key.rsplit(".shortcut", 1)[0] for key in shapes if key.startswith(kind) and "shortcut" in key}
        assert with_shortcut and blocks - with_shortcut, f"{kind}: both residual kinds"
    assert any(".conv1.0.weight" in key for key in shapes)  # the transposed convolutions
    parameters = sum(int(np.prod(shape)) for key, shape in shapes.items() if not key.endswith("tracked"))
    assert 4 * parameters < 300_000


@pytest.mark.parametrize("preset", ["full", "tiny"])
def test_a_files_shapes_select_its_architecture(preset):
    architecture = DEMO_ARCHITECTURES[preset]
    state = {k: np.zeros(shape, np.float32) for k, shape in upstream_rmvpe_shapes(architecture).items()}
    assert select_architecture(state) == architecture
    converted, _, selected = convert_rmvpe_state_dict(state)
    assert selected == architecture
    assert {key: tuple(t.array.shape) for key, t in converted.items()} == mlx_parameter_shapes(architecture)


def test_a_file_fitting_no_known_architecture_is_checked_against_rmvpe_pt():
    state = {k: np.zeros(shape, np.float32) for k, shape in upstream_rmvpe_shapes(TINY_ARCHITECTURE).items()}
    del state["fc.1.bias"]
    assert select_architecture(state) == ARCHITECTURE
    with pytest.raises(ConfigMismatchError, match=r"`unet\.encoder\.layers\.0\.conv\.0\.conv\.0\.weight`.*E2E\(4, 1"):
        convert_rmvpe_state_dict(state)


def test_architecture_block_refuses_what_the_port_cannot_run():
    with pytest.raises(ConfigMismatchError, match="n_class"):
        check_architecture({**ARCHITECTURE, "n_class": 100})
    with pytest.raises(ConfigMismatchError, match="en_de_layers"):
        check_architecture({**ARCHITECTURE, "en_de_layers": 6})
    with pytest.raises(ConfigMismatchError, match="lacks gru_hidden_size"):
        check_architecture({k: v for k, v in ARCHITECTURE.items() if k != "gru_hidden_size"})


def test_every_upstream_tensor_is_converted_or_dropped_by_a_named_rule(numbered):
    state, converted, dropped = numbered
    sources = [key for tensor in converted.values() for key in tensor.source_keys] + [d.source_key for d in dropped]
    assert sorted(sources) == sorted(state)
    for key in state:
        assert find_rule(key.rpartition(".")[0], RMVPE_RULES), key


def test_exported_keys_and_shapes_are_the_mlx_models_parameters(numbered):
    _, converted, _ = numbered
    assert {key: tuple(t.array.shape) for key, t in converted.items()} == mlx_parameter_shapes()


def test_only_batch_norm_counters_are_dropped(numbered):
    _, _, dropped = numbered
    assert dropped and all(d.source_key.endswith(".num_batches_tracked") for d in dropped)
    assert all("num_batches_tracked" in d.why for d in dropped)
    assert len(dropped) == sum(key.endswith("num_batches_tracked") for key in upstream_rmvpe_shapes())


@pytest.mark.parametrize(
    "source, target, layout, transpose",
    [
        ("unet.encoder.layers.0.conv.0.conv.0.weight", "unet.encoder.layer_0.conv_0.conv1.weight", "OHWI", (0, 2, 3, 1)),
        ("unet.encoder.layers.4.conv.3.conv.3.weight", "unet.encoder.layer_4.conv_3.conv2.weight", "OHWI", (0, 2, 3, 1)),
        ("unet.encoder.layers.1.conv.0.shortcut.weight", "unet.encoder.layer_1.conv_0.shortcut.weight", "OHWI", (0, 2, 3, 1)),
        ("unet.intermediate.layers.0.conv.0.shortcut.bias", "unet.intermediate.layer_0.conv_0.shortcut.bias", "O", None),
        ("unet.intermediate.layers.3.conv.2.conv.4.running_var", "unet.intermediate.layer_3.conv_2.bn2.running_var", "C", None),
        # ConvTranspose2d stores (in, out, kH, kW): out channels come from axis 1.
        ("unet.decoder.layers.0.conv1.0.weight", "unet.decoder.layer_0.conv1.weight", "OHWI", (1, 2, 3, 0)),
        ("unet.decoder.layers.2.conv1.1.running_mean", "unet.decoder.layer_2.bn1.running_mean", "C", None),
        ("unet.decoder.layers.4.conv2.0.conv.1.weight", "unet.decoder.layer_4.conv2_0.bn1.weight", "C", None),
        ("unet.decoder.layers.1.conv2.0.shortcut.weight", "unet.decoder.layer_1.conv2_0.shortcut.weight", "OHWI", (0, 2, 3, 1)),
        ("unet.encoder.bn.running_mean", "unet.encoder.bn.running_mean", "C", None),
        ("cnn.weight", "cnn.weight", "OHWI", (0, 2, 3, 1)),
        # GRU matrices keep PyTorch's (r, z, n) row blocks untouched.
        ("fc.0.gru.weight_ih_l0", "fc.gru.forward.weight_ih", "OI", None),
        ("fc.0.gru.bias_hh_l0", "fc.gru.forward.bias_hh", "O", None),
        ("fc.0.gru.weight_hh_l0_reverse", "fc.gru.reverse.weight_hh", "OI", None),
        ("fc.0.gru.bias_ih_l0_reverse", "fc.gru.reverse.bias_ih", "O", None),
        ("fc.1.weight", "fc.linear.weight", "OI", None),
    ],
)
def test_rule_maps_key_and_layout(numbered, source, target, layout, transpose):
    state, converted, _ = numbered
    tensor = converted[target]
    assert tensor.source_keys == (source,)
    assert tensor.layout == layout
    expected = state[source] if transpose is None else state[source].transpose(transpose)
    np.testing.assert_array_equal(tensor.array, expected)


def test_blocks_without_a_channel_change_have_no_shortcut(numbered):
    _, converted, _ = numbered
    assert "unet.encoder.layer_0.conv_1.shortcut.weight" not in converted
    assert "unet.intermediate.layer_1.conv_0.shortcut.weight" not in converted


def test_unknown_key_is_an_error_naming_it(numbered):
    state = dict(numbered[0])
    state["unet.encoder.layers.0.conv.0.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(UnknownKeyError, match=r"unet\.encoder\.layers\.0\.conv\.0\.extra\.weight"):
        convert_rmvpe_state_dict(state)


def test_missing_key_is_an_error_naming_it(numbered):
    state = dict(numbered[0])
    del state["unet.decoder.layers.3.conv1.1.running_var"]
    with pytest.raises(MissingKeyError, match=r"unet\.decoder\.layers\.3\.conv1\.1\.running_var"):
        convert_rmvpe_state_dict(state)


def test_wrong_shape_is_an_error_naming_the_key(numbered):
    state = dict(numbered[0])
    state["fc.1.weight"] = np.zeros((360, 256), np.float32)
    with pytest.raises(ConfigMismatchError, match=r"fc\.1\.weight.*\(360, 256\)"):
        convert_rmvpe_state_dict(state)


def test_float16_export_rounds_once_from_the_source(numbered):
    state, _, _ = numbered
    converted, _, _ = convert_rmvpe_state_dict(state, dtype="float16")
    array = converted["fc.linear.weight"].array
    assert array.dtype == np.float16
    np.testing.assert_array_equal(array, state["fc.1.weight"].astype(np.float16))


def test_bfloat16_tensors_are_read(numbered):
    state = {key: torch.from_numpy(np.asarray(value)) for key, value in numbered[0].items()}
    state["cnn.bias"] = torch.tensor([1.5, -2.0, 0.25], dtype=torch.bfloat16)
    converted, _, _ = convert_rmvpe_state_dict(state)
    np.testing.assert_array_equal(converted["cnn.bias"].array, [1.5, -2.0, 0.25])


def test_export_writes_weights_and_a_valid_manifest(tmp_path):
    checkpoint = write_demo_rmvpe(tmp_path / "rmvpe.pt", seed=1, dtype="float16")
    weights_path, manifest_path = export_rmvpe(checkpoint, tmp_path / "out", dtype="float16")
    assert (weights_path.name, manifest_path.name) == ("rmvpe.safetensors", "rmvpe.manifest.json")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rmvpe.manifest.json", "rmvpe.safetensors"]

    manifest = read_manifest(manifest_path)
    assert manifest["kind"] == "rmvpe"
    assert manifest["gru_gate_order"] == "rzn"
    assert manifest["dtype"] == "float16"
    assert manifest["rmvpe"]["decode"]["threshold"] == 0.03
    weights = safetensors.numpy.load_file(str(weights_path))
    entries = {entry["key"]: entry for entry in manifest["tensors"]}
    assert set(entries) == set(weights) == set(mlx_parameter_shapes())
    for key, array in weights.items():
        assert entries[key]["shape"] == list(array.shape)
        assert entries[key]["dtype"] == str(array.dtype) == "float16"
        assert entries[key]["xxh64"] == xxh64_tensor(array)
    assert {d["key"] for d in manifest["dropped"]} == {k for k in upstream_rmvpe_shapes() if k.endswith("tracked")}
    assert manifest["rmvpe"]["architecture"] == ARCHITECTURE


def test_export_of_a_tiny_demo_records_its_architecture_and_the_reference_reads_it(tmp_path):
    from rvc_ios_tools.rmvpe.reference import load_rmvpe

    checkpoint = write_demo_rmvpe(tmp_path / "tiny.pt", seed=1, preset="tiny")
    weights_path, manifest_path = export_rmvpe(checkpoint, tmp_path / "out")
    assert read_manifest(manifest_path)["rmvpe"]["architecture"] == TINY_ARCHITECTURE
    assert load_rmvpe(weights_path).fc.gru.forward.hidden_size == TINY_ARCHITECTURE["gru_hidden_size"]


@pytest.mark.parametrize(("section", "field", "value"), [
    ("mel", "hop_length", 320), ("mel", "fmax", 7000.0), ("decode", "cents_offset", 2000.0),
    ("decode", "local_average_bins", 7), (None, "frame_multiple", 16),
])
def test_manifest_recording_a_constant_the_port_does_not_compute_is_refused(tmp_path, section, field, value):
    import json

    from rvc_ios_tools.rmvpe.reference import load_rmvpe

    weights_path, manifest_path = export_rmvpe(write_demo_rmvpe(tmp_path / "tiny.pt", seed=1, preset="tiny"),
                                               tmp_path / "out")
    document = json.loads(manifest_path.read_text())
    (document["rmvpe"][section] if section else document["rmvpe"])[field] = value
    manifest_path.write_text(json.dumps(document))
    read_manifest(manifest_path)  # the schema allows it: only the port's constants rule it out
    named = f"rmvpe.{section}.{field}" if section else f"rmvpe.{field}"
    with pytest.raises(ConfigMismatchError, match=f"{named} = {value!r}.*re-export"):
        load_rmvpe(weights_path)


@pytest.mark.parametrize(("section", "field", "value", "named"), [
    ("mel", "n_fft", 16384, "n_fft"), ("mel", "n_fft", 1000, "n_fft"), ("mel", "n_mels", 10**9, "n_mels"),
    ("decode", "local_average_bins", 8, "local_average_bins"), ("architecture", "en_de_layers", 6, "en_de_layers"),
    ("architecture", "n_class", 361, "n_class"),
])
def test_schema_caps_what_the_swift_reader_caps(tmp_path, section, field, value, named):
    import json

    from rvc_ios_tools.core.errors import ManifestError

    _, manifest_path = export_rmvpe(write_demo_rmvpe(tmp_path / "tiny.pt", seed=1, preset="tiny"), tmp_path / "out")
    document = json.loads(manifest_path.read_text())
    document["rmvpe"][section][field] = value
    manifest_path.write_text(json.dumps(document))
    with pytest.raises(ManifestError, match=named):
        read_manifest(manifest_path)


def test_export_refuses_a_pickle_that_runs_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "rmvpe.pt"
    torch.save({"unet.encoder.bn.weight": Payload()}, path)
    with pytest.raises(UnsafeCheckpointError):
        export_rmvpe(path, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_export_refuses_a_voice_file(tmp_path):
    path = tmp_path / "voice.pth"
    torch.save({"weight": {"emb_g.weight": torch.zeros(1, 2)}, "config": [0] * 18}, path)
    with pytest.raises(CorruptFileError, match="rvc-ios export"):
        export_rmvpe(path, tmp_path / "out")


def test_export_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "rmvpe.pt"
    path.write_bytes(b"this is not a zip or a pickle")
    with pytest.raises(CorruptFileError):
        export_rmvpe(path, tmp_path / "out")


@pytest.mark.slow
def test_demo_checkpoint_is_deterministic_and_every_statistic_is_random():
    first, second = random_rmvpe_state_dict(5), random_rmvpe_state_dict(5)
    assert all(torch.equal(first[key], second[key]) for key in first)
    for key, tensor in first.items():
        if key.endswith(("running_mean", "running_var", "weight", "bias")) and tensor.numel() > 1:
            assert tensor.std() > 0, key  # nothing left at a constant default
    assert not torch.equal(random_rmvpe_state_dict(6)["fc.1.weight"], first["fc.1.weight"])


def test_mlx_reference_refuses_weights_missing_a_key(numbered):
    weights = {key: tensor.array for key, tensor in numbered[1].items() if key != "fc.gru.reverse.bias_hh"}
    with pytest.raises(WeightsMismatchError, match=r"fc\.gru\.reverse\.bias_hh"):
        build_rmvpe(weights)
