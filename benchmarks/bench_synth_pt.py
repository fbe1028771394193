"""Time upstream PyTorch's synthesizer `infer` (CPU, float32, eval) on one voice and input.

Run through `bench_synth.py`, which times MLX the same way in the same process. Upstream's random draws are
replaced by the recorded noise, as in the parity tests, so both sides compute the same audio.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from rvc_ios_tools.voice.upstream import injected_noise, upstream_model


def infer_once(model, f0: bool, inputs, noise) -> torch.Tensor:
    t = {name: torch.from_numpy(value) for name, value in inputs.items()}
    with torch.no_grad(), injected_noise(noise):
        if f0:
            audio, _, _ = model.infer(t["phone"], t["phone_lengths"].long(), t["pitch"].long(), t["pitchf"], t["sid"].long())
        else:
            audio, _, _ = model.infer(t["phone"], t["phone_lengths"].long(), t["sid"].long())
    return audio


def torch_runner(checkpoint, inputs, noise) -> Callable[[], float]:
    """Build upstream's model (weight norm attached, as upstream runs it) and warm up once; the returned
    function times one run in seconds."""
    model = upstream_model(checkpoint)
    infer_once(model, checkpoint.f0, inputs, noise)

    def run() -> float:
        start = time.perf_counter()
        infer_once(model, checkpoint.f0, inputs, noise)
        return time.perf_counter() - start

    return run
