"""Safe loading and validation of RVC voice files (rvc_ios_tools/checkpoint.py)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from rvc_ios_tools.voice.checkpoint import load_voice
from rvc_ios_tools.voice.demo import PRESETS
from rvc_ios_tools.core.errors import (
    ConfigMismatchError,
    CorruptFileError,
    MissingKeyError,
    NotAVoiceError,
    UnsafeCheckpointError,
    UnsupportedVoiceError,
)

TINY_PRESETS = sorted(name for name in PRESETS if name.endswith("-tiny"))


@pytest.mark.parametrize("preset", TINY_PRESETS)
@pytest.mark.parametrize("flavor", ["rvc-webui", "applio"])
def test_every_preset_and_flavor_loads(voice_file, preset, flavor):
    spec = PRESETS[preset]
    voice = load_voice(voice_file(preset, flavor))
    assert voice.flavor == flavor
    assert voice.version == spec.version
    assert voice.f0 == spec.f0
    assert voice.sample_rate == spec.config[-1]
    assert voice.speaker_count == 3
    assert voice.feature_dim == (256 if spec.version == "v1" else 768)
    assert voice.dtypes == ["float16"]


def test_applio_weight_norm_is_stored_as_parametrizations(voice_file):
    voice = load_voice(voice_file("v2-48k-tiny", "applio"))
    assert any(k.endswith("parametrizations.weight.original0") for k in voice.state_dict)
    assert not any(k.endswith("weight_g") for k in voice.state_dict)


def test_speaker_count_comes_from_emb_g_rows_not_config(voice_file, tmp_path):
    payload = torch.load(voice_file("v2-40k-tiny"), weights_only=True)
    payload["config"][-3] = 999  # upstream loaders ignore this and use emb_g's rows
    path = tmp_path / "spk.pth"
    torch.save(payload, path)
    voice = load_voice(path)
    assert voice.speaker_count == 3 and voice.config.spk_embed_dim == 3


class _RunsShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_calls_os_system_is_refused_without_running(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({"weight": {}, "config": [], "evil": _RunsShellCommand(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match="Nothing in it was run"):
        load_voice(path)
    assert not marker.exists()


def test_raw_pickle_with_global_outside_allowed_set_is_refused(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil-raw.pth"
    path.write_bytes(pickle.dumps(_RunsShellCommand(marker), protocol=2))
    with pytest.raises((UnsafeCheckpointError, CorruptFileError)):
        load_voice(path)
    assert not marker.exists()


def test_training_checkpoint_is_refused_with_advice(tmp_path):
    path = tmp_path / "G_2333.pth"
    torch.save({"model": {"a": torch.zeros(1)}, "optimizer": {}, "learning_rate": 1e-4, "iteration": 3}, path)
    with pytest.raises(NotAVoiceError, match="training checkpoint"):
        load_voice(path)


@pytest.mark.parametrize("vocoder", ["MRF HiFi-GAN", "RefineGAN"])
def test_other_applio_vocoders_are_refused(voice_file, tmp_path, vocoder):
    payload = torch.load(voice_file("v2-40k-tiny", "applio"), weights_only=True)
    payload["vocoder"] = vocoder
    path = tmp_path / "other.pth"
    torch.save(payload, path)
    with pytest.raises(UnsupportedVoiceError, match=vocoder):
        load_voice(path)


def test_config_that_disagrees_with_a_tensor_names_key_and_both_shapes(voice_file, tmp_path):
    payload = torch.load(voice_file("v2-40k-tiny"), weights_only=True)
    payload["config"][4] = 64  # filter_channels: the FFN convs say 32
    path = tmp_path / "mismatch.pth"
    torch.save(payload, path)
    with pytest.raises(ConfigMismatchError) as info:
        load_voice(path)
    message = str(info.value)
    assert "enc_p.encoder.ffn_layers.0.conv_1.weight" in message
    assert "(32, 16, 3)" in message and "(64, 16, 3)" in message


def test_version_that_disagrees_with_feature_dim_is_refused(voice_file, tmp_path):
    payload = torch.load(voice_file("v2-40k-tiny"), weights_only=True)
    payload["version"] = "v1"
    path = tmp_path / "v.pth"
    torch.save(payload, path)
    with pytest.raises(ConfigMismatchError, match="emb_phone"):
        load_voice(path)


def test_missing_tensor_is_named(voice_file, tmp_path):
    payload = torch.load(voice_file("v2-40k-tiny"), weights_only=True)
    del payload["weight"]["flow.flows.2.post.weight"]
    path = tmp_path / "missing.pth"
    torch.save(payload, path)
    with pytest.raises(MissingKeyError, match="flow.flows.2.post.weight"):
        load_voice(path)


def test_truncated_file_is_reported_as_damaged(voice_file, tmp_path):
    data = voice_file("v2-40k-tiny").read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="truncated or damaged"):
        load_voice(path)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CorruptFileError):
        load_voice(path)


def test_a_tensor_file_that_is_not_a_voice_is_refused(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(NotAVoiceError):
        load_voice(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CorruptFileError, match="does not exist"):
        load_voice(tmp_path / "nope.pth")
