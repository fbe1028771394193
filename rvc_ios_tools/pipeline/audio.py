"""The signal processing around the networks in upstream's `Pipeline.pipeline` (rvc 0.3.5,
`rvc/modules/vc/pipeline.py`; RVC WebUI's `infer/modules/vc/pipeline.py` is the same), step for step.

Every step keeps upstream's dtypes and evaluation order, because a port is held to it sample by sample:
- `peak_normalise`: the input is scaled down to a peak of 0.95 when louder (never up), in float32.
- `high_pass`: Butterworth order 5 at 48 Hz, run forwards and backwards (`scipy.signal.filtfilt`, odd extension
  of 18 samples, float64 out); this filtered, unpadded signal is also the RMS envelope's reference.
- `split_points`: where long audio is cut, at the quietest sample (smallest centred 160-sample sum of |x|)
  within `x_query` seconds of every `x_center` seconds; only when the audio is longer than `x_max` seconds.
- `plan_segments`: the reflect-padded signal's slices, each segment's pitch frames and output trim.
- `change_rms`: the output's loudness pulled towards the input's (`rms_mix_rate`), envelopes at 2 points a second.
- `to_int16`: peak limited to 0.99, then truncated towards zero (not rounded).

numpy's "reflect" excludes the edge sample (scipy's and torch's "reflect" agree; numpy's "symmetric" repeats it).
"""

from __future__ import annotations

import dataclasses

import numpy as np

SAMPLE_RATE = 16000
# One pitch / synthesizer frame: 10 ms at 16 kHz (upstream `self.window`).
WINDOW = 160

# scipy.signal.butter(N=5, Wn=48, btype="high", fs=16000), exactly (upstream computes it at import).
HIGH_PASS_B = np.array([
    float.fromhex("0x1.f09eae82f17f2p-1"), -float.fromhex("0x1.36632d11d6ef7p+2"), float.fromhex("0x1.36632d11d6ef7p+3"),
    -float.fromhex("0x1.36632d11d6ef7p+3"), float.fromhex("0x1.36632d11d6ef7p+2"), -float.fromhex("0x1.f09eae82f17f2p-1"),
])
HIGH_PASS_A = np.array([
    1.0, -float.fromhex("0x1.3c189b160d9bbp+2"), float.fromhex("0x1.38406b02c5ae9p+3"),
    -float.fromhex("0x1.347726c291cb2p+3"), float.fromhex("0x1.30bc870194e75p+2"), -float.fromhex("0x1.e1b3a34ba432ap-1"),
])
# filtfilt's default odd extension: 3 * max(len(a), len(b)) samples at each end; shorter audio is refused.
HIGH_PASS_PADDING = 3 * max(len(HIGH_PASS_A), len(HIGH_PASS_B))


@dataclasses.dataclass(frozen=True)
class WindowingConfig:
    """Upstream's long-audio windowing, in seconds (`Config.device_config`); the CPU and fp32 row by default."""

    x_pad: int = 1
    x_query: int = 6
    x_center: int = 38
    x_max: int = 41

    @property
    def t_pad(self) -> int:
        return SAMPLE_RATE * self.x_pad

    @property
    def t_pad2(self) -> int:
        return 2 * self.t_pad

    @property
    def t_query(self) -> int:
        return SAMPLE_RATE * self.x_query

    @property
    def t_center(self) -> int:
        return SAMPLE_RATE * self.x_center

    @property
    def t_max(self) -> int:
        return SAMPLE_RATE * self.x_max

    def t_pad_tgt(self, target_rate: int) -> int:
        return target_rate * self.x_pad


class AudioTooShortError(ValueError):
    """Audio shorter than the high-pass filter's edge extension (19 samples)."""


def peak_normalise(audio: np.ndarray) -> np.ndarray:
    """`audio_max = np.abs(audio).max() / 0.95; if audio_max > 1: audio /= audio_max` (float32, numpy 2 scalars)."""
    audio = np.array(audio, dtype=np.float32)
    audio_max = np.abs(audio).max() / 0.95
    if audio_max > 1:
        audio /= audio_max
    return audio


def high_pass(audio: np.ndarray) -> np.ndarray:
    """`signal.filtfilt(bh, ah, audio)`: float32 in, float64 out, the odd extension taken in the input dtype."""
    from scipy import signal

    if audio.shape[-1] <= HIGH_PASS_PADDING:
        raise AudioTooShortError(
            f"{audio.shape[-1]} samples are too few for the 48 Hz high-pass filter; give at least "
            f"{HIGH_PASS_PADDING + 1} samples (about 1.2 ms at 16 kHz)."
        )
    return signal.filtfilt(HIGH_PASS_B, HIGH_PASS_A, audio)


def split_points(audio: np.ndarray, config: WindowingConfig = WindowingConfig()) -> list[int]:
    """Upstream's `opt_ts`: for each multiple t of t_center inside the audio, the first index of the smallest
    centred 160-sample sum of |x| within t +- t_query. Empty unless the audio is longer than t_max - 160."""
    audio_pad = np.pad(audio, (WINDOW // 2, WINDOW // 2), mode="reflect")
    if audio_pad.shape[0] <= config.t_max:
        return []
    # Accumulated in upstream's order (i = 0..159, float64): a cumulative-sum difference rounds differently
    # and can move the argmin between near-equal quiet samples.
    audio_sum = np.zeros_like(audio)
    for i in range(WINDOW):
        audio_sum += np.abs(audio_pad[i : i - WINDOW])
    points = []
    for t in range(config.t_center, audio.shape[0], config.t_center):
        window = audio_sum[t - config.t_query : t + config.t_query]
        points.append(t - config.t_query + int(np.where(window == window.min())[0][0]))
    return points


def pad_for_segments(filtered: np.ndarray, config: WindowingConfig = WindowingConfig()) -> np.ndarray:
    """`np.pad(audio, (t_pad, t_pad), mode="reflect")`: the signal every segment, and RMVPE, reads from."""
    return np.pad(filtered, (config.t_pad, config.t_pad), mode="reflect")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One synthesizer call: `padded[audio_start:audio_stop]` with pitch frames `[pitch_start:pitch_stop]` of the
    whole padded signal's track (stop None: to the end); its output loses `trim` samples at each end."""

    index: int
    audio_start: int
    audio_stop: int | None
    pitch_start: int
    pitch_stop: int | None


def plan_segments(split_at: list[int], config: WindowingConfig = WindowingConfig()) -> list[Segment]:
    """Upstream's segment loop over the t_pad-padded audio: each split floored to a frame; the audio slice
    carries one extra frame (160 samples) past the pitch slice; the last segment runs to the end."""
    segments, start, t = [], 0, None
    for t in split_at:
        t = t // WINDOW * WINDOW
        segments.append(Segment(len(segments), start, t + config.t_pad2 + WINDOW, start // WINDOW,
                                (t + config.t_pad2) // WINDOW))
        start = t
    last = 0 if t is None else t
    segments.append(Segment(len(segments), last, None, last // WINDOW, None))
    return segments


def change_rms(source: np.ndarray, source_rate: int, output: np.ndarray, output_rate: int, rate: float) -> np.ndarray:
    """Upstream's `change_rms`: `output * (rms_source / rms_output) ** (1 - rate)`, envelopes as librosa >= 0.10
    computes them (centred frames of half a second, zero padding, float32) interpolated linearly by torch to
    every output sample. `source` is the filtered, unpadded 16 kHz input; returns a new float32 array."""
    import torch
    import torch.nn.functional as F

    rms_source = torch.from_numpy(frame_rms(source, source_rate // 2 * 2, source_rate // 2))
    rms_output = torch.from_numpy(frame_rms(output, output_rate // 2 * 2, output_rate // 2))
    rms_source = F.interpolate(rms_source.unsqueeze(0), size=output.shape[0], mode="linear").squeeze()
    rms_output = F.interpolate(rms_output.unsqueeze(0), size=output.shape[0], mode="linear").squeeze()
    rms_output = torch.max(rms_output, torch.zeros_like(rms_output) + 1e-6)
    gain = torch.pow(rms_source, torch.tensor(1 - rate)) * torch.pow(rms_output, torch.tensor(rate - 1))
    mixed = np.array(output, dtype=np.float32)
    mixed *= gain.numpy()
    return mixed


def frame_rms(signal: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """`librosa.feature.rms(y=signal, frame_length=..., hop_length=...)` (librosa >= 0.10), shape (1, frames):
    the same strided frame view and the same numpy reductions, so the float32 pairwise sums match."""
    padded = np.pad(signal, (frame_length // 2, frame_length // 2), mode="constant")
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(padded.shape[0] - frame_length + 1, frame_length), strides=padded.strides * 2, writeable=False
    )
    frames = np.moveaxis(frames, -1, -2)[:, ::hop_length]
    power = np.mean(np.square(frames, dtype=np.float32), axis=-2, keepdims=True)
    return np.sqrt(power)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """`audio_max = max|x| / 0.99; max_int16 = 32768 / audio_max if audio_max > 1; (x * max_int16).astype(int16)`:
    a float32 product truncated towards zero."""
    audio = np.asarray(audio, dtype=np.float32)
    audio_max = np.abs(audio).max() / 0.99
    max_int16 = 32768
    if audio_max > 1:
        max_int16 /= audio_max
    return (audio * max_int16).astype(np.int16)
