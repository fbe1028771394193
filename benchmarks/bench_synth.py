"""MLX reference vs upstream PyTorch on CPU: one full-size voice, the same input, the same thread count.

    python benchmarks/bench_synth.py [--preset v2-40k] [--seconds 10] [--threads N] [--repeats 3]

Prints each side's best and median time per run and the ratio (PyTorch time / MLX time; above 1 means the
reference is faster). The two sides alternate run by run, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rvc_ios_tools.core import blas  # noqa: E402  (before mlx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="v2-40k")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from bench_synth_mx import mlx_runner
    from bench_synth_pt import torch_runner
    from rvc_ios_tools.voice.convert import convert_voice
    from rvc_ios_tools.voice.inputs import synthesize_voice_inputs
    from rvc_ios_tools.voice.reference import draw_noise
    from rvc_ios_tools.voice.upstream import demo_checkpoint

    torch.set_num_threads(args.threads)
    blas.set_num_threads(args.threads)
    checkpoint = demo_checkpoint(args.preset, args.seed)
    inputs = synthesize_voice_inputs(checkpoint, args.seed, args.seconds)
    noise = draw_noise(checkpoint, inputs, args.seed)

    print(f"{args.preset}, {args.seconds:g} s of audio, {args.threads} thread(s) "
          f"(torch {torch.get_num_threads()}, OpenBLAS {blas.num_threads()})")
    print(f"MLX reference on {blas.kernel_description()}")
    mlx_run = mlx_runner(checkpoint, convert_voice(checkpoint), inputs, noise)
    torch_run = torch_runner(checkpoint, inputs, noise)
    mlx_times, torch_times = [], []
    for _ in range(args.repeats):
        mlx_times.append(mlx_run())
        torch_times.append(torch_run())
    for name, times in (("MLX reference", mlx_times), ("PyTorch upstream", torch_times)):
        print(f"{name:17s} best {min(times):7.2f} s   median {statistics.median(times):7.2f} s   "
              f"({args.seconds / min(times):.2f}x real time)")
    print(f"ratio PyTorch/MLX (best): {min(torch_times) / min(mlx_times):.2f}")


if __name__ == "__main__":
    main()
