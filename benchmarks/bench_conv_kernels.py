"""Time one stride-1 Conv1d three ways at the same thread count: MLX one matmul per tap
(`models.layers.conv1d`), the native kernel (`native_conv.conv1d`) and PyTorch's CPU conv1d.

    python benchmarks/bench_conv_kernels.py [--threads N] [--repeats 5] [--slope 0.1]

Shapes are the HiFi-GAN decoder's: channels and lengths of its upsampling stages (256 at 10k frames down to
32 at 400k) by the ResBlock kernel sizes and dilations, "same" padding, batch 1. With --slope every
variant also applies the leaky ReLU before the convolution (fused in the native kernel, a separate op
elsewhere), as the decoder's ResBlocks do. Prints the best of --repeats runs in ms and PyTorch / native
(above 1: the native kernel is faster).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

from rvc_ios_tools.core import blas

import mlx.core as mx
import numpy as np
import torch
import torch.nn.functional as F

from rvc_ios_tools.core import native_conv
from rvc_ios_tools.core import layers

CHANNELS_AND_LENGTHS = ((256, 10_000), (128, 100_000), (64, 200_000), (32, 400_000))
KERNELS_AND_DILATIONS = ((3, 1), (3, 5), (7, 3), (11, 1), (11, 5))


def best_ms(run: Callable[[], None], repeats: int) -> float:
    run()  # warm-up: allocations, thread start-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def time_shape(channels: int, length: int, kernel_size: int, dilation: int, slope: float | None, repeats: int):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((1, length, channels), dtype=np.float32)
    w_np = (rng.standard_normal((channels, kernel_size, channels)) / np.sqrt(kernel_size * channels)).astype(np.float32)
    b_np = rng.standard_normal((channels,), dtype=np.float32)
    pad = dilation * (kernel_size - 1) // 2

    x, w, b = mx.array(x_np), mx.array(w_np), mx.array(b_np)
    mx.eval(x, w, b)

    def per_tap() -> None:
        source = x if slope is None else mx.where(x > 0, x, x * slope)
        mx.eval(layers.conv1d(source, w, b, padding=(pad, pad), dilation=dilation))

    def native() -> None:
        mx.eval(native_conv.conv1d(x, w, b, padding=(pad, pad), dilation=dilation, input_slope=slope))

    x_t = torch.from_numpy(x_np[0].T.copy())[None]  # (1, C, L): PyTorch's layout
    w_t = torch.from_numpy(w_np.transpose(0, 2, 1).copy())  # (O, I, K)
    b_t = torch.from_numpy(b_np)

    def pytorch() -> None:
        with torch.inference_mode():
            source = x_t if slope is None else F.leaky_relu(x_t, slope)
            F.conv1d(source, w_t, b_t, padding=pad, dilation=dilation)

    return best_ms(per_tap, repeats), best_ms(native, repeats), best_ms(pytorch, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slope", type=float, default=None, help="leaky ReLU slope before the convolution")
    args = parser.parse_args()
    if not native_conv.available():
        raise SystemExit(native_conv.unavailable_reason())
    torch.set_num_threads(args.threads)
    blas.set_num_threads(args.threads)
    print(f"MLX and the native kernel on {blas.kernel_description()}")
    print(f"threads: torch {torch.get_num_threads()}, OpenBLAS (MLX and native) {blas.num_threads()}; "
          f"input leaky ReLU: {args.slope}; best of {args.repeats}, ms")
    print(f"{'C':>4} {'L':>7} {'K':>3} {'d':>2} | {'per-tap':>8} {'native':>8} {'torch':>8} | {'torch/native':>12}")
    for channels, length in CHANNELS_AND_LENGTHS:
        for kernel_size, dilation in KERNELS_AND_DILATIONS:
            per_tap, native, pytorch = time_shape(channels, length, kernel_size, dilation, args.slope, args.repeats)
            print(f"{channels:>4} {length:>7} {kernel_size:>3} {dilation:>2} | "
                  f"{per_tap:8.1f} {native:8.1f} {pytorch:8.1f} | {pytorch / native:12.2f}", flush=True)


if __name__ == "__main__":
    main()
