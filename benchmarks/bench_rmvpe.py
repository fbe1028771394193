"""RMVPE pitch extraction, MLX reference vs upstream PyTorch on CPU: the same demo rmvpe.pt, the same audio,
the same thread count, audio -> f0 on both sides (log-mel, E2E, decoding).

    python benchmarks/bench_rmvpe.py [--seconds 30] [--threads N] [--repeats 3]

Prints each side's best and median time per run, the split of the MLX run into stages, and the ratio
(PyTorch time / MLX time; above 1 means the reference is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rvc_ios_tools import blas  # noqa: E402  (before mlx)


def time_runs(run, repeats: int) -> list[float]:
    run()  # warm-up: first-call allocations and library initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def mlx_stage_seconds(model, audio) -> dict[str, float]:
    """One MLX run split at the stage boundaries (each stage evaluated before the clock stops)."""
    import mlx.core as mx
    import numpy as np

    from rvc_ios_tools.rmvpe_inference import log_mel, pad_frames, salience_to_f0

    seconds: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str, value):
        nonlocal start
        mx.eval(value)
        now = time.perf_counter()
        seconds[name] = now - start
        start = now
        return value

    mel = lap("log-mel", log_mel(audio))
    image = model.mel_to_image(pad_frames(mel))
    x = lap("U-Net", model.unet(image))
    x = lap("cnn", model.flatten_cnn(model.cnn(x)))
    x = lap("BiGRU", model.fc.gru(x))
    salience = lap("linear + sigmoid", mx.sigmoid(model.fc.linear(x))[:, : mel.shape[-1]])
    salience_to_f0(np.array(salience))
    seconds["decode"] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from rvc.lib.rmvpe import RMVPE

    from rvc_ios_tools.rmvpe_convert import export_rmvpe
    from rvc_ios_tools.rmvpe_demo import demo_audio, write_demo_rmvpe
    from rvc_ios_tools.rmvpe_inference import estimate_f0, load_rmvpe

    torch.set_num_threads(args.threads)
    blas.set_num_threads(args.threads)
    audio = demo_audio(int(args.seconds * 16000), seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = write_demo_rmvpe(Path(tmp) / "rmvpe.pt", seed=args.seed)
        upstream = RMVPE(str(checkpoint), is_half=False, device="cpu")
        model = load_rmvpe(export_rmvpe(checkpoint, Path(tmp) / "export")[0])

    print(f"RMVPE, {args.seconds:g} s of 16 kHz audio ({1 + len(audio) // 160} frames), {args.threads} thread(s) "
          f"(torch {torch.get_num_threads()}, OpenBLAS {blas.num_threads()}, openblas loaded: {blas.openblas_loaded()})")
    mlx_times = time_runs(lambda: estimate_f0(model, audio), args.repeats)
    with torch.no_grad():
        torch_times = time_runs(lambda: upstream.infer_from_audio(audio, thred=0.03), args.repeats)
    for name, times in (("MLX reference", mlx_times), ("PyTorch upstream", torch_times)):
        print(f"{name:17s} best {min(times):7.2f} s   median {statistics.median(times):7.2f} s   "
              f"({args.seconds / min(times):.2f}x real time)")
    print(f"ratio PyTorch/MLX (best): {min(torch_times) / min(mlx_times):.2f}")
    split = mlx_stage_seconds(model, audio)
    print("MLX stages: " + ", ".join(f"{name} {value:.2f} s" for name, value in split.items()))


if __name__ == "__main__":
    main()
