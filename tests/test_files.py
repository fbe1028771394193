"""The deterministic safetensors writer and the tensor checksum the manifests carry."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors
from safetensors.numpy import load_file

from rvc_ios_tools.core.files import (
    IOV_MAX, SafetensorsWriter, atomic_output, sha256_tensor, staged_outputs, write_safetensors, xxh64_tensor,
)


def sample_arrays(count: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {f"layer_{i}.weight": rng.standard_normal((i + 1, 3, 2)).astype(np.float16) for i in range(count)}
    arrays["bias"] = rng.standard_normal(7).astype(np.float32)
    arrays["index"] = np.arange(4, dtype=np.int64)
    arrays["empty"] = np.zeros((0, 3), np.float32)
    arrays["transposed"] = rng.standard_normal((4, 5)).astype(np.float32).T  # not C-contiguous
    return arrays


def test_written_file_reads_back_with_the_safetensors_library(tmp_path):
    arrays = sample_arrays()
    write_safetensors(tmp_path / "w.safetensors", arrays, {"format": "rvc-ios-tools", "b": "2", "a": "1"})
    loaded = load_file(str(tmp_path / "w.safetensors"))
    assert set(loaded) == set(arrays)
    for key, array in arrays.items():
        assert loaded[key].dtype == array.dtype and loaded[key].shape == array.shape, key
        np.testing.assert_array_equal(loaded[key], array, err_msg=key)
        assert sha256_tensor(loaded[key]) == sha256_tensor(array), key
    with safetensors.safe_open(str(tmp_path / "w.safetensors"), framework="numpy") as handle:
        assert handle.metadata() == {"format": "rvc-ios-tools", "a": "1", "b": "2"}


def test_same_tensors_and_metadata_give_the_same_bytes(tmp_path):
    arrays = sample_arrays()
    metadata = {f"layout.{key}": "OKI" for key in arrays}  # many entries: the library would shuffle them
    write_safetensors(tmp_path / "a.safetensors", arrays, metadata)
    write_safetensors(tmp_path / "b.safetensors", dict(reversed(list(arrays.items()))), dict(reversed(list(metadata.items()))))
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_more_tensors_than_one_gathered_write_takes(tmp_path):
    arrays = {f"t{i:05d}": np.full(3, i, np.float32) for i in range(IOV_MAX * 2 + 5)}
    write_safetensors(tmp_path / "many.safetensors", arrays)
    loaded = load_file(str(tmp_path / "many.safetensors"))
    assert all(np.array_equal(loaded[key], arrays[key]) for key in arrays)


def test_unstorable_dtype_is_refused_by_name(tmp_path):
    with pytest.raises(TypeError, match="`words`"):
        write_safetensors(tmp_path / "x.safetensors", {"words": np.array(["a"])})


def test_tensors_can_be_written_one_by_one_in_any_order(tmp_path):
    arrays = sample_arrays()
    specs = {key: (array.dtype, array.shape) for key, array in arrays.items()}
    with SafetensorsWriter(tmp_path / "parts.safetensors", specs, {"format": "x"}) as writer:
        for key in reversed(sorted(arrays)):
            writer.write(key, arrays[key])
    write_safetensors(tmp_path / "whole.safetensors", arrays, {"format": "x"})
    assert (tmp_path / "parts.safetensors").read_bytes() == (tmp_path / "whole.safetensors").read_bytes()


def test_writer_refuses_undeclared_mismatched_or_missing_tensors(tmp_path):
    specs = {"a": (np.float32, (2, 3)), "b": (np.float16, (4,))}
    with pytest.raises(ValueError, match="never written: b"):
        with SafetensorsWriter(tmp_path / "x.safetensors", specs) as writer:
            writer.write("a", np.zeros((2, 3), np.float32))
    with SafetensorsWriter(tmp_path / "y.safetensors", specs) as writer:
        with pytest.raises(KeyError, match="`c`"):
            writer.write("c", np.zeros(1, np.float32))
        with pytest.raises(ValueError, match="`a`: declared float32 \\(2, 3\\), given float32 \\(3, 2\\)"):
            writer.write("a", np.zeros((3, 2), np.float32))
        with pytest.raises(ValueError, match="`b`"):
            writer.write("b", np.zeros(4, np.float32))
        writer.write_all({"a": np.ones((2, 3), np.float32), "b": np.ones(4, np.float16)})
    assert load_file(str(tmp_path / "y.safetensors"))["b"].dtype == np.float16


def test_xxh64_checksum_is_the_reference_algorithm_over_the_stored_bytes():
    # Published XXH64 values (seed 0) for "" and "abc": the manifest's checksum is the standard one, so any
    # XXH64 implementation (the Swift loader's, or a user's) can check a file.
    assert xxh64_tensor(np.zeros(0, np.uint8)) == "ef46db3751d8e999"
    assert xxh64_tensor(np.frombuffer(b"abc", np.uint8)) == "44bc2cf5ad770999"
    # Over the bytes as stored: C order and little-endian, whatever the array's own memory looks like.
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert xxh64_tensor(values.T) == xxh64_tensor(np.ascontiguousarray(values.T))
    assert xxh64_tensor(values.astype(">f4")) == xxh64_tensor(values)
    assert xxh64_tensor(values) != xxh64_tensor(values + np.float32(1e-6))


def test_a_write_that_fails_without_a_file_name_is_named_for_its_output(tmp_path):
    import errno

    with pytest.raises(OSError) as caught:
        with atomic_output(tmp_path / "out.wav"):
            raise OSError(errno.ENOSPC, "No space left on device")  # what a failed write() raises
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "out.wav")
    assert list(tmp_path.iterdir()) == []


def test_staged_outputs_land_together_or_not_at_all(tmp_path):
    with staged_outputs(tmp_path / "Assets") as staging:
        (staging / "voice.safetensors").write_bytes(b"w")
        (staging / "voice.manifest.json").write_bytes(b"m")
    assert sorted(p.name for p in (tmp_path / "Assets").iterdir()) == ["voice.manifest.json", "voice.safetensors"]
    with pytest.raises(RuntimeError):
        with staged_outputs(tmp_path / "Assets") as staging:
            (staging / "voice.safetensors").write_bytes(b"new")
            raise RuntimeError("the index after the voice is damaged")
    assert (tmp_path / "Assets" / "voice.safetensors").read_bytes() == b"w"  # what was there stays as it was
    assert sorted(p.name for p in (tmp_path / "Assets").iterdir()) == ["voice.manifest.json", "voice.safetensors"]
    with pytest.raises(RuntimeError):
        with staged_outputs(tmp_path / "new" / "Assets"):
            raise RuntimeError("failed")
    assert not (tmp_path / "new").exists()  # the folders made for the outputs go too
