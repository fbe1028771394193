"""Log-mel spectrogram as RMVPE sees it (upstream `rvc.lib.rmvpe.MelSpectrogram`).

Upstream builds it from `torch.stft(center=True)` (reflect padding, periodic Hann window), takes the
magnitude (not the power), applies librosa's mel filterbank (`htk=True`, Slaney area normalisation) and
takes `log(max(x, 1e-5))`. The constants below are the ones `RMVPE.__init__` passes.
"""

from __future__ import annotations

from ..core import blas  # noqa: F401  (loads OpenBLAS before mlx binds its BLAS)

import mlx.core as mx
import numpy as np

SAMPLE_RATE = 16000
N_FFT = 1024
WIN_LENGTH = 1024
HOP_LENGTH = 160
N_MELS = 128
MEL_FMIN = 30.0
MEL_FMAX = 8000.0
LOG_CLAMP = 1e-5


def hz_to_mel_htk(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def mel_to_hz_htk(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = MEL_FMIN,
    fmax: float = MEL_FMAX,
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangles on the HTK mel scale, each scaled to unit area
    (librosa's `norm="slaney"`), as `librosa.filters.mel(..., htk=True)` returns them."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    # n_mels + 2 edges evenly spaced in mel: band i rises from edge i to edge i+1 and falls to edge i+2.
    edges_hz = mel_to_hz_htk(np.linspace(hz_to_mel_htk(fmin), hz_to_mel_htk(fmax), n_mels + 2))
    widths_hz = np.diff(edges_hz)
    distance = edges_hz[:, None] - fft_hz[None, :]
    rising = -distance[:-2] / widths_hz[:-1, None]
    falling = distance[2:] / widths_hz[1:, None]
    # librosa stores the triangles in float32 before scaling them; rounding at the same point keeps
    # the two filterbanks bit-identical.
    triangles = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    area_norm = 2.0 / (edges_hz[2:] - edges_hz[:-2])
    return (triangles * area_norm[:, None]).astype(np.float32)


def periodic_hann_window(length: int) -> np.ndarray:
    """`torch.hann_window(length)` (periodic: the window of a length+1 symmetric Hann, minus the last point)."""
    n = np.arange(length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def frame_count(n_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Frames `torch.stft(center=True)` produces for `n_samples` samples."""
    return 1 + n_samples // hop_length


def log_mel_spectrogram(audio: mx.array) -> mx.array:
    """(B, N) float32 audio at 16 kHz -> (B, 128, 1 + N // 160) log-mel, upstream's layout (`BCT`)."""
    if audio.ndim != 2:
        raise ValueError(f"audio must be (batch, samples), got shape {tuple(audio.shape)}")
    n_samples = audio.shape[1]
    half = N_FFT // 2
    if n_samples <= half:
        # torch.stft's reflect padding needs more samples than it pads; upstream fails the same way.
        raise ValueError(f"audio has {n_samples} samples; the RMVPE STFT needs more than {half}")
    padded = mx.pad(audio, [(0, 0), (half, half)], mode="reflect")
    n_frames = frame_count(n_samples)
    starts = mx.arange(n_frames) * HOP_LENGTH
    frames = padded[:, starts[:, None] + mx.arange(N_FFT)[None, :]]  # (B, T, n_fft)
    spectrum = mx.fft.rfft(frames * mx.array(periodic_hann_window(WIN_LENGTH)), axis=-1)
    magnitude = mx.abs(spectrum)  # (B, T, n_fft // 2 + 1)
    mel = magnitude @ mx.array(mel_filterbank()).T  # (B, T, n_mels)
    return mx.log(mx.maximum(mel, LOG_CLAMP)).transpose(0, 2, 1)
