"""Time the MLX reference synthesizer (audio only, no stage captures) on one voice and input.

Run through `bench_synth.py`, which times PyTorch the same way in the same process.
"""

from __future__ import annotations

import time
from typing import Callable

from rvc_ios_tools.core import blas  # noqa: F401  (before mlx)

from rvc_ios_tools.voice.reference import build_model, synthesize


def mlx_runner(checkpoint, weights, inputs, noise) -> Callable[[], float]:
    """Build the model and warm up once; the returned function times one run in seconds."""
    model = build_model(checkpoint, weights)
    synthesize(model, inputs, noise)

    def run() -> float:
        start = time.perf_counter()
        synthesize(model, inputs, noise)
        return time.perf_counter() - start

    return run
