"""WAV files in and out."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from .errors import RvcIosError


def read_wav_16k_mono(path: Path) -> np.ndarray:
    """A 16 kHz mono 16-bit PCM WAV as float32 in [-1, 1): what RMVPE consumes. Resample elsewhere first."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width, frames = wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()
            data = wav.readframes(frames)
    except (OSError, EOFError, wave.Error) as exc:
        raise RvcIosError(f"{path} is not a readable WAV file ({exc}).") from None
    if rate != 16000 or channels != 1 or width != 2:
        raise RvcIosError(
            f"{path} is {rate} Hz, {channels} channel(s), {8 * width}-bit; RMVPE needs 16 kHz mono 16-bit PCM. "
            f"Convert it first, e.g. `sox {path} -r 16000 -c 1 -b 16 out.wav`."
        )
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)[None, :]
