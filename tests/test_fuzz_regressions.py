"""What the Python fuzz targets (fuzz/python/) found, and what reviewing each fix turned up beside it.

Each test is one input that once escaped as something other than the project's own user error (`RvcIosError`):
a bare exception from a library, a hang, or an allocation of what a hostile header claimed. Now each is one
sentence of the right error type, fast, and nothing is allocated before it is checked against the file.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import time
import zipfile

import numpy as np
import pytest
import safetensors.numpy
import torch

from rvc_ios_tools.core.errors import ConfigMismatchError, CorruptFileError, NotAVoiceError, RvcIosError, UnsafeCheckpointError
from rvc_ios_tools.core.pickles import load_pickle_safely
from rvc_ios_tools.core.wav import WavFormatError, read_wav_16k_mono
from rvc_ios_tools.hubert.convert import is_hubert_source, load_hubert, parse_conv_feature_layers, plan_hubert_conversion
from rvc_ios_tools.voice.checkpoint import load_voice

# A config that parses (the tiny demo's 18 items); tests change one item.
TINY_CONFIG = [1025, 32, 8, 16, 32, 2, 2, 3, 0, "1", [3], [[1, 3, 5]], [10, 10, 2, 2], 32, [16, 16, 4, 4], 3, 8, 40000]
FAST_SECONDS = 5.0


def legacy_checkpoint(main: bytes, storage_keys: list[str], tail: bytes = b"") -> bytes:
    """torch's pre-1.6 layout by hand: magic number, protocol version, system info, the checkpoint's pickle,
    the pickled list of storage keys, then the storages."""
    header = b"".join(pickle.dumps(item, protocol=2) for item in (
        torch.serialization.MAGIC_NUMBER, torch.serialization.PROTOCOL_VERSION,
        {"protocol_version": torch.serialization.PROTOCOL_VERSION, "little_endian": True,
         "type_sizes": {"short": 2, "int": 4, "long": 4}}))
    return header + main + pickle.dumps(storage_keys, protocol=2) + tail


def saved(payload, **options) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer, **options)
    return buffer.getvalue()


def voice_payload(**changes):
    # Enough tensors that the config's layer counts fit (`check_config_fits_weights`); which ones does not matter
    # to these tests, which fail before the shapes are compared.
    weights = {"emb_g.weight": torch.zeros(3, 8), **{f"unused.{n}": torch.zeros(1) for n in range(8)}}
    payload = {"weight": weights, "config": list(TINY_CONFIG), "sr": "40k", "f0": 1, "version": "v2"}
    payload.update(changes)
    return payload


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def not_hiding_an_allocation_failure(error: BaseException) -> None:
    context = error.__context__
    assert not isinstance(context, MemoryError) and "allocate" not in str(context), context


# --- WAV ----------------------------------------------------------------------------------------------


def test_wav_16k_reader_refuses_a_chunk_running_past_the_end_as_a_wav_error(tmp_path):
    # The standard library's `wave` let a chunk size past the end escape as a bare RuntimeError.
    path = write(tmp_path, "junk.wav", b"RIFF\x24\x00\x00\x00WAVEjunk\xff\x00\x00\x00")
    with pytest.raises(WavFormatError, match="junk.wav"):
        read_wav_16k_mono(path)


def test_wav_16k_reader_still_reads_16k_mono_16bit(tmp_path):
    from rvc_ios_tools.core.wav import write_wav_int16

    samples = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    write_wav_int16(tmp_path / "ok.wav", samples, 16000)
    audio = read_wav_16k_mono(tmp_path / "ok.wav")
    assert audio.shape == (1, 4) and audio.dtype == np.float32
    np.testing.assert_array_equal(audio[0], samples / 32768.0)


def test_wav_16k_reader_names_the_format_it_needs(tmp_path):
    from rvc_ios_tools.core.wav import write_wav_int16

    write_wav_int16(tmp_path / "44k.wav", np.zeros(8, np.int16), 44100)
    with pytest.raises(WavFormatError, match="44100 Hz.*16 kHz mono 16-bit PCM"):
        read_wav_16k_mono(tmp_path / "44k.wav")


# --- PyTorch checkpoints: the legacy format ---------------------------------------------------------------


def test_legacy_checkpoint_naming_a_storage_it_never_defines_is_corrupt_not_an_assertion(tmp_path):
    # torch's legacy loader raised AssertionError ("storage key ... not found in deserialized_objects").
    path = write(tmp_path, "voice.pth", legacy_checkpoint(pickle.dumps({}, protocol=2), ["94919132427376"]))
    with pytest.raises(CorruptFileError, match="voice.pth is not a readable PyTorch checkpoint"):
        load_voice(path)


def test_legacy_bytearray8_claiming_exabytes_is_corrupt_without_allocating(tmp_path):
    # pickle's own BYTEARRAY8 allocates the claimed length before reading: MemoryError from 60 bytes.
    main = b"\x80\x05\x96" + (1 << 62).to_bytes(8, "little") + b"."
    path = write(tmp_path, "voice.pth", legacy_checkpoint(main, []))
    with pytest.raises(CorruptFileError, match="BYTEARRAY8 claims") as caught:
        load_voice(path)
    not_hiding_an_allocation_failure(caught.value)


class _ClaimedStorage:
    def __init__(self, numel: int):
        self.numel = numel


class _LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _ClaimedStorage):
            return ("storage", torch.FloatStorage, "0", "cpu", obj.numel, None)
        return None


def test_legacy_storage_claiming_terabytes_is_refused_before_torch_allocates_it(tmp_path):
    # torch's legacy loader allocates each storage at the element count its pickle names, before reading it.
    buffer = io.BytesIO()
    _LegacyPickler(buffer, protocol=2).dump({"emb_g.weight": _ClaimedStorage(1 << 40)})
    data = legacy_checkpoint(buffer.getvalue(), ["0"], (1 << 40).to_bytes(8, "little") + bytes(16))
    path = write(tmp_path, "voice.pth", data)
    started = time.monotonic()
    with pytest.raises(CorruptFileError, match=f"claims {4 << 40} bytes of tensor data") as caught:
        load_pickle_safely(path)
    assert time.monotonic() - started < FAST_SECONDS
    not_hiding_an_allocation_failure(caught.value)


def test_legacy_checkpoints_still_load(tmp_path):
    payload = voice_payload()
    path = write(tmp_path, "legacy.pth", saved(payload, _use_new_zipfile_serialization=False))
    loaded = load_pickle_safely(path)
    assert torch.equal(loaded["weight"]["emb_g.weight"], payload["weight"]["emb_g.weight"])


# --- PyTorch checkpoints: both formats -----------------------------------------------------------------


def test_a_pickled_bytearray_is_refused_before_it_can_allocate(tmp_path):
    # torch's weights-only unpickler allows `bytearray(n)`: 30 bytes of pickle could ask for gigabytes.
    path = write(tmp_path, "voice.pth", saved({"weight": bytearray(b"xy")}))
    with pytest.raises(UnsafeCheckpointError, match="calls builtins.bytearray"):
        load_pickle_safely(path)


def test_a_pickled_tensor_constructor_call_is_refused_before_it_can_allocate(tmp_path):
    # `torch.FloatTensor(n)` is allowed too, and makes n uninitialised floats; here n is 2^40.
    main = b"\x80\x02ctorch\nFloatTensor\n\x8a\x06\x00\x00\x00\x00\x00\x01\x85R."
    path = write(tmp_path, "voice.pth", legacy_checkpoint(main, []))
    with pytest.raises(UnsafeCheckpointError, match="calls torch.FloatTensor") as caught:
        load_pickle_safely(path)
    not_hiding_an_allocation_failure(caught.value)


def test_a_compressed_zip_record_is_refused_before_it_is_inflated(tmp_path):
    # torch's zip reader inflates a deflated record to the size its header claims; torch.save never compresses.
    source = zipfile.ZipFile(io.BytesIO(saved(voice_payload())))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for record in source.infolist():
            archive.writestr(record.filename, source.read(record), compress_type=zipfile.ZIP_DEFLATED)
    path = write(tmp_path, "voice.pth", out.getvalue())
    with pytest.raises(CorruptFileError, match="is compressed"):
        load_voice(path)


def test_a_zip_record_claiming_more_bytes_than_the_file_is_refused_before_torch_allocates_it(tmp_path):
    # Found by the fuzzer in rmvpe.pt: `.format_version` stored with 1 byte but a directory size of 1.5 GB,
    # which torch's zip reader allocated before reading.
    data = bytearray(saved(voice_payload()))
    directory = data.rfind(b"PK\x01\x02", 0, data.find(b".format_version", data.find(b"PK\x01\x02")))
    struct.pack_into("<I", data, directory + 24, 1_568_761_079)  # the uncompressed size in the directory
    path = write(tmp_path, "rmvpe.pt", bytes(data))
    with pytest.raises(CorruptFileError, match="claims 1568761079 bytes") as caught:
        load_pickle_safely(path)
    not_hiding_an_allocation_failure(caught.value)


def test_a_zero_stride_view_claiming_terabytes_over_one_element_is_corrupt(tmp_path):
    # torch.save keeps a view's strides: a (2^20, 2^20) tensor over a 4-byte storage, which a conversion would
    # materialise as 4 TiB.
    huge = torch.zeros(1).expand(1 << 20, 1 << 20)
    path = write(tmp_path, "voice.pth", saved(voice_payload(weight={"emb_g.weight": huge})))
    with pytest.raises(CorruptFileError, match="repeats its data"):
        load_voice(path)


def test_a_checkpoint_nested_a_hundred_thousand_deep_is_corrupt_not_a_recursion_error(tmp_path):
    # 100 000 empty lists, each appended into the one before: every recursive walk of it overflows the stack.
    depth = 100_000
    main = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    path = write(tmp_path, "voice.pth", legacy_checkpoint(main, []))
    with pytest.raises(CorruptFileError, match="nests containers"):
        load_voice(path)


# --- voice files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [("n_layers", 10**9), ("upsample_rates", [2] * 100_000)])
def test_a_voice_config_naming_a_billion_layers_is_a_mismatch_not_a_hang(tmp_path, field, value):
    config = list(TINY_CONFIG)
    config[{"n_layers": 6, "upsample_rates": 12}[field]] = value
    path = write(tmp_path, "voice.pth", saved(voice_payload(config=config)))
    started = time.monotonic()
    with pytest.raises(ConfigMismatchError, match="implies more layers"):
        load_voice(path)
    assert time.monotonic() - started < FAST_SECONDS


def test_a_voice_config_with_no_attention_heads_is_a_mismatch_not_a_division_by_zero(tmp_path):
    config = list(TINY_CONFIG)
    config[5] = 0
    path = write(tmp_path, "voice.pth", saved(voice_payload(config=config)))
    with pytest.raises(ConfigMismatchError, match="n_heads 0"):
        load_voice(path)


@pytest.mark.parametrize("changes", [
    {"config": 5},
    {"config": [torch.zeros(2)] + TINY_CONFIG[1:]},
    {"config": TINY_CONFIG[:6] + [float("inf")] + TINY_CONFIG[7:]},
    {"f0": "yes"},
    {"sr": "forty"},
    {"sr": None},
])
def test_voice_fields_of_the_wrong_type_are_not_a_voice(tmp_path, changes):
    path = write(tmp_path, "voice.pth", saved(voice_payload(**changes)))
    with pytest.raises(NotAVoiceError):
        load_voice(path)


def test_bfloat16_voice_weights_are_read_not_a_numpy_type_error(tmp_path):
    payload = voice_payload(f0=0)
    payload["weight"]["emb_g.weight"] = torch.zeros(3, 8, dtype=torch.bfloat16)
    path = write(tmp_path, "voice.pth", saved(payload))
    # numpy has no bfloat16: `.numpy()` raised TypeError. Now the tensors are read (as float32) and the shape
    # check is what refuses this voice, which has only a few of its tensors.
    with pytest.raises(RvcIosError, match="the config implies"):
        load_voice(path)


# --- .npz inputs ---------------------------------------------------------------------------------------


def npz_claiming(shape: str) -> bytes:
    """An .npz of one float32 `feats` whose .npy header says `shape` while holding 4 x 8 values."""
    buffer = io.BytesIO()
    np.savez(buffer, feats=np.zeros((1, 4, 8), np.float32))
    member = zipfile.ZipFile(buffer).read("feats.npy").replace(b"(1, 4, 8), ", shape.encode() + b", ")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("feats.npy", member)
    return out.getvalue()


@pytest.mark.parametrize("shape", ["(1, 4, 80000000)", "(1, 4, 1099511627776)"])
def test_npz_header_claiming_gigabytes_is_refused_before_numpy_allocates_it(tmp_path, shape):
    # np.load allocated the claimed shape first: 1.3 GB for the first file, MemoryError for the second.
    from rvc_ios_tools.index.golden import read_feats
    from rvc_ios_tools.voice.inputs import InputsFileError, read_inputs_file

    path = write(tmp_path, "feats.npz", npz_claiming(shape))
    with pytest.raises(RvcIosError, match=r"claims shape") as caught:
        read_feats(path)
    not_hiding_an_allocation_failure(caught.value)
    with pytest.raises(InputsFileError, match=r"claims shape"):
        read_inputs_file(path)


@pytest.mark.parametrize("feats", [np.array([["ab", "cd"]]), np.zeros((4, 768), np.float32),
                                   np.zeros((1, 2), dtype=[("a", "<f4")])])
def test_index_feats_that_are_not_numbers_of_shape_1_t_c_are_a_user_error(tmp_path, feats):
    # The npz header mutator found `np.asarray(feats, float32)` raising ValueError on a string array.
    from rvc_ios_tools.index.golden import read_feats

    np.savez(tmp_path / "feats.npz", feats=feats)
    with pytest.raises(RvcIosError, match=r"store the content features as float32 \(1, T, C\)"):
        read_feats(tmp_path / "feats.npz")


def test_npz_files_written_by_numpy_still_read_the_same(tmp_path):
    from rvc_ios_tools.core.npz import read_npz

    arrays = {"phone": np.arange(24, dtype=np.float32).reshape(1, 4, 6),
              "pitchf": np.asfortranarray(np.ones((2, 3))), "empty": np.zeros((0, 3), np.int64)}
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "inputs.npz", **arrays)
        read = read_npz(tmp_path / "inputs.npz")
        assert sorted(read) == sorted(arrays)
        for name, array in arrays.items():
            np.testing.assert_array_equal(read[name], array)
            assert read[name].dtype == array.dtype


# --- content encoders ------------------------------------------------------------------------------------


def test_content_encoder_probe_answers_no_for_a_zip_with_an_undecodable_record_name(tmp_path):
    # zipfile raised UnicodeDecodeError from `rvc-ios inspect`'s first question about the file.
    data = bytearray(saved(voice_payload()))
    name_start = 30
    struct.pack_into("<H", data, 6, 0x0800)  # the first local header: names are UTF-8
    data[name_start] = 0x9E
    path = write(tmp_path, "voice.pth", bytes(data))
    assert is_hubert_source(path) is False
    with pytest.raises(CorruptFileError):
        load_voice(path)


def hf_folder(tmp_path, config: dict):
    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(
        safetensors.numpy.save({"final_proj.weight": np.zeros((2, 2), np.float32)}))
    return folder


@pytest.mark.parametrize("config", [
    {"model_type": "hubert", "conv_dim": [[4], 4], "conv_kernel": [10, 3], "conv_stride": [5, 2]},
    {"model_type": "hubert", "conv_dim": 4},
    {"model_type": "hubert", "num_hidden_layers": {}},
    {"model_type": "hubert", "layer_norm_eps": 10**400},
])
def test_content_encoder_config_values_of_the_wrong_type_are_a_mismatch(tmp_path, config):
    # conv_dim [[4], ...] was a TypeError from int(); num_hidden_layers {} one from a comparison.
    with pytest.raises(ConfigMismatchError):
        load_hubert(hf_folder(tmp_path, config))


def test_content_encoder_config_naming_two_billion_layers_is_a_mismatch_not_a_hang(tmp_path):
    checkpoint = load_hubert(hf_folder(tmp_path, {"model_type": "hubert", "num_hidden_layers": 2**31}))
    started = time.monotonic()
    with pytest.raises(ConfigMismatchError, match="2147483648 encoder layers"):
        plan_hubert_conversion(checkpoint.state_dict, checkpoint.architecture, "model.safetensors")
    assert time.monotonic() - started < FAST_SECONDS


def test_content_encoder_tensor_of_the_wrong_rank_is_a_mismatch_not_a_transpose_error(tmp_path):
    # Found by the fuzzer: a 2-axis `feature_extractor.conv_layers.0.conv.weight` reached the Conv1d layout's
    # transpose(0, 2, 1) and raised "axes don't match array".
    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "hubert", "num_hidden_layers": 1}))
    (folder / "model.safetensors").write_bytes(safetensors.numpy.save({
        "feature_extractor.conv_layers.0.conv.weight": np.zeros((4, 10), np.float32),
        "final_proj.weight": np.zeros((2, 2), np.float32)}))
    checkpoint = load_hubert(folder)
    with pytest.raises(ConfigMismatchError, match=r"has shape \(4, 10\), but a conv1d weight has 3 axes"):
        plan_hubert_conversion(checkpoint.state_dict, checkpoint.architecture, "model.safetensors")


def test_fairseq_conv_feature_layers_cannot_multiply_to_millions_of_layers():
    started = time.monotonic()
    with pytest.raises(ConfigMismatchError, match="conv_feature_layers"):
        parse_conv_feature_layers("[(1,1,1)] * 64 * 64 * 64 * 64", "hubert_base.pt")
    assert time.monotonic() - started < FAST_SECONDS
    assert parse_conv_feature_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2", "x")[-1] == [512, 2, 2]


def test_fairseq_cfg_holding_a_tensor_is_corrupt_not_a_tensor_error(tmp_path):
    payload = {"model": {"final_proj.weight": torch.zeros(2, 2)},
               "cfg": {"model": {"encoder_layers": torch.ones(2)}}}
    path = write(tmp_path, "hubert_base.pt", saved(payload))
    with pytest.raises(CorruptFileError, match="cfg.model.encoder_layers is a Tensor"):
        load_hubert(path)
