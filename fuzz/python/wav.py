"""Fuzz target py-wav: a WAV file through both readers, `read_wav` (`rvc-ios convert`'s input, any PCM or float
encoding) and `read_wav_16k_mono` (`golden generate --audio` for RMVPE and the content encoder)."""

from __future__ import annotations

from pathlib import Path

import harness

with harness.instrumented():
    from rvc_ios_tools.core.errors import RvcIosError
    from rvc_ios_tools.core.wav import read_wav, read_wav_16k_mono

scratch = harness.ScratchFiles()


def read(data: bytes) -> None:
    path = scratch.write("input.wav", data)
    try:
        read_wav_16k_mono(path)
    except RvcIosError:
        pass  # the other reader must hold up to the same bytes all the same
    read_wav(path)


def riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"WAVE" + b"".join(cid + len(c).to_bytes(4, "little") + c + b"\x00" * (len(c) & 1) for cid, c in chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def fmt_chunk(audio_format: int, channels: int, rate: int, bits: int, extensible_format: int | None = None) -> bytes:
    block = channels * bits // 8
    head = (audio_format.to_bytes(2, "little") + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
            + (rate * block).to_bytes(4, "little") + block.to_bytes(2, "little") + bits.to_bytes(2, "little"))
    if extensible_format is None:
        return head
    guid_tail = bytes.fromhex("000000001000800000aa00389b71")
    return head + (22).to_bytes(2, "little") + bits.to_bytes(2, "little") + (3).to_bytes(4, "little") \
        + extensible_format.to_bytes(2, "little") + guid_tail


def write_seeds(folder: Path) -> None:
    import numpy as np

    from rvc_ios_tools.core.wav import write_wav_int16

    tone = np.sin(np.arange(64) * 0.3)
    write_wav_int16(folder / "16k-mono-16bit.wav", (tone * 20000).astype(np.int16), 16000)
    seeds = {
        "44k-stereo-24bit.wav": [(b"fmt ", fmt_chunk(1, 2, 44100, 24)), (b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00"),
                                 (b"data", bytes(range(6 * 32)))],
        "8k-mono-8bit.wav": [(b"fmt ", fmt_chunk(1, 1, 8000, 8)), (b"data", bytes(range(0, 250, 3)))],
        "48k-stereo-float32.wav": [(b"fmt ", fmt_chunk(3, 2, 48000, 32)),
                                   (b"data", np.tile(tone.astype("<f4"), 2).tobytes())],
        "22k-mono-float64.wav": [(b"fmt ", fmt_chunk(3, 1, 22050, 64)), (b"data", tone.astype("<f8").tobytes())],
        "32k-extensible-32bit.wav": [(b"fmt ", fmt_chunk(0xFFFE, 1, 32000, 32, extensible_format=1)),
                                     (b"data", (tone * 2**30).astype("<i4").tobytes())],
    }
    for name, chunks in seeds.items():
        (folder / name).write_bytes(riff(chunks))


if __name__ == "__main__":
    harness.main(read, write_seeds)
