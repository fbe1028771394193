"""WAV in and out (core/wav.py): every PCM width and float, mono or stereo, hostile headers refused."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import pytest

from rvc_ios_tools.core import wav


def wav_bytes(payload: bytes, *, audio_format=1, channels=1, rate=16000, bits=16, extensible=False,
              data_size: int | None = None) -> bytes:
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0)
        fmt += struct.pack("<H", audio_format) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    else:
        fmt = struct.pack("<HHIIHH", audio_format, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(payload) if data_size is None else data_size) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


@pytest.mark.parametrize(
    "audio_format, bits, raw, expected",
    [
        (1, 16, np.array([0, 16384, -32768, 32767], "<i2").tobytes(), [0, 0.5, -1, 32767 / 32768]),
        (1, 8, bytes([128, 192, 0, 255]), [0, 0.5, -1, 127 / 128]),
        (1, 24, b"\x00\x00\x00" + b"\x00\x00\x40" + b"\x00\x00\x80" + b"\xff\xff\xff", [0, 0.5, -1, -1 / 8388608]),
        (1, 32, np.array([0, 2**30, -(2**31), 1], "<i4").tobytes(), [0, 0.5, -1, 2.0**-31]),
        (3, 32, np.array([0, 0.5, -1, 0.25], "<f4").tobytes(), [0, 0.5, -1, 0.25]),
        (3, 64, np.array([0, 0.5, -1, 0.25], "<f8").tobytes(), [0, 0.5, -1, 0.25]),
    ],
)
def test_every_sample_format_decodes_onto_minus_one_to_one(tmp_path, audio_format, bits, raw, expected):
    for extensible in (False, True):
        path = tmp_path / f"x{extensible}.wav"
        path.write_bytes(wav_bytes(raw, audio_format=audio_format, bits=bits, extensible=extensible))
        audio = wav.read_wav(path)
        np.testing.assert_array_equal(audio.samples[:, 0], np.array(expected, np.float32))
        assert audio.sample_rate == 16000


def test_stereo_is_mixed_as_ffmpeg_mixes_it():
    stereo = np.array([[0.5, 0.0], [0.25, 0.25]], np.float32)
    np.testing.assert_allclose(wav.mix_to_mono(stereo), [0.35355339, 0.35355339], rtol=1e-7)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (the set-up installs it)")
def test_a_24_bit_stereo_file_from_sox_reads_as_sox_reads_it(tmp_path):
    source = tmp_path / "in.wav"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "24", str(source), "synth", "0.2", "sine", "440",
                    "sine", "660", "gain", "-3"], check=True)
    as_float = tmp_path / "float.wav"
    subprocess.run(["sox", str(source), "-e", "floating-point", "-b", "32", str(as_float)], check=True)
    ours, theirs = wav.read_wav(source), wav.read_wav(as_float)
    assert ours.encoding == "24-bit PCM" and theirs.encoding == "32-bit float" and ours.sample_rate == 44100
    np.testing.assert_array_equal(ours.samples, theirs.samples)


def test_resampling_to_16k_keeps_a_tone_and_the_length():
    t = np.arange(44100) / 44100
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = wav.resample(tone, 44100, 16000)
    assert out.dtype == np.float32 and out.shape == (16000,)
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(out[200:-200] - expected[200:-200]).max() < 1e-3


def test_int16_output_round_trips(tmp_path):
    samples = np.array([0, 1, -1, 32767, -32768], np.int16)
    wav.write_wav_int16(tmp_path / "out.wav", samples, 40000)
    back = wav.read_wav(tmp_path / "out.wav")
    assert back.sample_rate == 40000
    np.testing.assert_array_equal(np.round(back.samples[:, 0] * 32768).astype(np.int16), samples)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"ID3\x03\x00" + bytes(100), "not a WAV file"),
        (b"", "not a WAV file"),
        (wav_bytes(b"\x00\x00" * 10)[:30], "damaged|no format"),
        (wav_bytes(b"\x00\x00" * 10, channels=5, bits=16), "5 channels"),
        (wav_bytes(b"\x00" * 12, audio_format=2, bits=4), "format 0x0002"),
        (wav_bytes(b"", data_size=0), "no samples"),
        (wav_bytes(np.array([np.nan], "<f4").tobytes(), audio_format=3, bits=32), "NaN"),
        (wav_bytes(b"\x00\x00", rate=7), "sample rate of 7 Hz"),
    ],
)
def test_a_bad_file_is_one_sentence_naming_it(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(wav.WavFormatError, match=message) as caught:
        wav.read_wav(path)
    assert str(path) in str(caught.value)


def test_a_header_claiming_terabytes_reads_only_what_the_file_holds(tmp_path):
    path = tmp_path / "huge.wav"
    path.write_bytes(wav_bytes(np.zeros(8, "<i2").tobytes(), data_size=0xFFFFFFF0))
    assert wav.read_wav(path).samples.shape == (8, 1)
