"""WAV files in and out."""

from __future__ import annotations

import dataclasses
import wave
from pathlib import Path

import numpy as np

from .errors import RvcIosError
from .files import atomic_output


# --- any PCM or float WAV in; int16 WAV out --------------------------------------------------------------------

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# (format, bits per sample) -> numpy dtype of one sample and the divisor that maps it onto [-1, 1), as FFmpeg does.
SAMPLE_FORMATS = {
    (WAVE_FORMAT_PCM, 8): ("u1", 128.0),
    (WAVE_FORMAT_PCM, 16): ("<i2", 32768.0),
    (WAVE_FORMAT_PCM, 24): ("i3", 8388608.0),
    (WAVE_FORMAT_PCM, 32): ("<i4", 2147483648.0),
    (WAVE_FORMAT_IEEE_FLOAT, 32): ("<f4", 1.0),
    (WAVE_FORMAT_IEEE_FLOAT, 64): ("<f8", 1.0),
}
MAX_CHANNELS = 2


class WavFormatError(RvcIosError):
    """A file that is not a WAV this tool reads (damaged, truncated, or another encoding)."""


@dataclasses.dataclass(frozen=True)
class WavAudio:
    samples: np.ndarray  # (frames, channels) float32 in [-1, 1]
    sample_rate: int
    encoding: str  # e.g. "16-bit PCM", "32-bit float"


def read_wav(path: Path) -> WavAudio:
    """A RIFF/WAVE file of 8/16/24/32-bit PCM or 32/64-bit float, mono or stereo, as float32 samples.

    Every chunk size is checked against the file's length before anything is read, so a damaged or hostile
    header is an error naming the file, never a huge allocation.
    """
    path = Path(path)
    fix = "convert it to a WAV file first, e.g. `sox in.mp3 -r 16000 -c 1 -b 16 in.wav`."
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            header = handle.read(12)
            if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
                raise WavFormatError(f"{path} is not a WAV file (no RIFF/WAVE header); {fix}")
            fmt, data = None, None
            position = 12
            while position + 8 <= size and data is None:
                handle.seek(position)
                chunk_id, chunk_size = handle.read(4), int.from_bytes(handle.read(4), "little")
                body = position + 8
                if chunk_id == b"fmt ":
                    if chunk_size < 16 or body + chunk_size > size:
                        raise WavFormatError(f"{path}: its `fmt ` chunk is damaged ({chunk_size} bytes); {fix}")
                    fmt = handle.read(min(chunk_size, 40))
                elif chunk_id == b"data":
                    if fmt is None:
                        raise WavFormatError(f"{path}: the sample data comes before the format chunk; {fix}")
                    # Streamed WAVs may leave the size at 0 or 0xFFFFFFFF; take what the file holds.
                    available = size - body
                    length = available if chunk_size in (0, 0xFFFFFFFF) or chunk_size > available else chunk_size
                    data = handle.read(length)
                position = body + chunk_size + (chunk_size & 1)
    except OSError as exc:
        raise WavFormatError(f"{path} cannot be read ({exc.strerror or exc}); check the path.") from None
    if fmt is None or data is None:
        raise WavFormatError(f"{path} has no {'format' if fmt is None else 'sample data'} chunk; it may be truncated: {fix}")
    audio_format, channels, rate = int.from_bytes(fmt[0:2], "little"), int.from_bytes(fmt[2:4], "little"), int.from_bytes(fmt[4:8], "little")
    bits = int.from_bytes(fmt[14:16], "little")
    if audio_format == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        audio_format = int.from_bytes(fmt[24:26], "little")  # the sub-format GUID's first two bytes
    if (audio_format, bits) not in SAMPLE_FORMATS:
        raise WavFormatError(f"{path} holds {bits}-bit samples of WAV format {audio_format:#06x}; this tool reads "
                             f"8/16/24/32-bit PCM and 32/64-bit float: {fix}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavFormatError(f"{path} has {channels} channels; give a mono or stereo file (e.g. `sox in.wav -c 1 out.wav`).")
    if not 1000 <= rate <= 768000:
        raise WavFormatError(f"{path} claims a sample rate of {rate} Hz; the header is damaged: {fix}")
    dtype, scale = SAMPLE_FORMATS[(audio_format, bits)]
    frame_bytes = channels * bits // 8
    data = data[: len(data) // frame_bytes * frame_bytes]
    if dtype == "i3":  # 24-bit little-endian: widen to 32 bits and shift the sign in
        raw = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        values = ((raw[:, 0] << 8) | (raw[:, 1] << 16) | (raw[:, 2] << 24)) >> 8
    elif dtype == "u1":
        values = np.frombuffer(data, np.uint8).astype(np.float32) - 128.0
    else:
        values = np.frombuffer(data, dtype)
    with np.errstate(over="ignore"):  # a 64-bit float beyond float32's range becomes inf, refused below
        samples = (values.astype(np.float64) / scale).astype(np.float32).reshape(-1, channels)
    if samples.shape[0] == 0:
        raise WavFormatError(f"{path} holds no samples; give a recording of at least a few milliseconds.")
    if audio_format == WAVE_FORMAT_IEEE_FLOAT and not np.isfinite(samples).all():
        raise WavFormatError(f"{path} holds NaN or infinite samples; the file is damaged.")
    kind = "float" if audio_format == WAVE_FORMAT_IEEE_FLOAT else "PCM"
    return WavAudio(samples, rate, f"{bits}-bit {kind}")


def read_wav_16k_mono(path: Path) -> np.ndarray:
    """A 16 kHz mono 16-bit PCM WAV as float32 in [-1, 1), shape (1, samples): what RMVPE consumes. Resample
    elsewhere first. Read by `read_wav`, whose chunk sizes are checked against the file (the standard library's
    `wave` lets a damaged chunk size escape as a bare RuntimeError)."""
    audio = read_wav(path)
    channels = audio.samples.shape[1]
    if audio.sample_rate != 16000 or channels != 1 or audio.encoding != "16-bit PCM":
        raise WavFormatError(
            f"{path} is {audio.sample_rate} Hz, {channels} channel(s), {audio.encoding}; RMVPE needs 16 kHz mono "
            f"16-bit PCM. Convert it first, e.g. `sox {path} -r 16000 -c 1 -b 16 out.wav`."
        )
    return audio.samples.T.copy()


def mix_to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,): stereo as FFmpeg's `ac=1` mixes it for float output, (L + R) / sqrt(2)
    (not the mean), which is how upstream's loaders hand stereo files to the pipeline."""
    if samples.shape[1] == 1:
        return samples[:, 0]
    return ((samples[:, 0].astype(np.float64) + samples[:, 1]) * np.sqrt(0.5)).astype(np.float32)


# The resampler for input at other rates: libsoxr's high quality (HQ) preset, through the `soxr` package.
RESAMPLER = "soxr HQ (libsoxr, via the soxr package)"


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 samples at `rate` -> `target_rate` (unchanged when equal)."""
    if rate == target_rate:
        return np.asarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(samples, dtype=np.float32), rate, target_rate, quality="HQ").astype(np.float32)


def write_wav_int16(path: Path, samples: np.ndarray, rate: int) -> None:
    """Mono int16 samples as a 16-bit PCM WAV, atomically (a temporary file, then a rename)."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"write_wav_int16 takes 1-D int16 samples, not {samples.dtype} {samples.shape}")
    with atomic_output(Path(path)) as tmp:
        with wave.open(str(tmp), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(int(rate))
            wav.writeframes(samples.astype("<i2").tobytes())
