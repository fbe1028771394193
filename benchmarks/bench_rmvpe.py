"""RMVPE pitch extraction: the Swift port (`RVCNativeMac f0`, release build) beside the MLX reference and
upstream PyTorch on CPU: the same demo rmvpe.pt, the same audio, audio -> f0 on every side.

    python benchmarks/bench_rmvpe.py [--seconds 30] [--repeats 3] [--threads N]

Exports the demo rmvpe.pt and writes the audio into --work-dir (default Demos/.build/bench-rmvpe), builds
the release binary if needed, warms every side up once, then runs the three sides in turn --repeats times,
so all see the same machine load (on a shared machine it swings widely): Swift by its own clock (audio ->
f0 after loading) and as a whole process (loading and checksumming 362 MB of weights included), MLX
(`estimate_f0`) and PyTorch (`RMVPE.infer_from_audio`) in this process. The Swift binary uses every core
(`ParallelWork`); --threads (default: all cores) sets torch's and OpenBLAS's threads to match. Prints best
and median times, the ratios of the best times (other side / Swift; above 1 means Swift is faster) and the
f0 agreement of Swift with the MLX reference.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMOS = REPO / "Demos"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from rvc_ios_tools.core import blas  # noqa: E402  (before mlx)


def prepare(work: Path, seconds: float, seed: int) -> tuple[Path, Path]:
    """The exported demo RMVPE (once per seed) and the audio file, as the Swift binary reads them."""
    import numpy as np
    from safetensors.numpy import save_file

    from rvc_ios_tools.core.manifest import is_current
    from rvc_ios_tools.rmvpe.export import export_rmvpe
    from rvc_ios_tools.rmvpe.demo import demo_audio, write_demo_rmvpe

    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / f"rmvpe-seed{seed}.pt"
    if not is_current(work / f"{checkpoint.stem}.manifest.json"):  # exported by this tool version, else again
        write_demo_rmvpe(checkpoint, seed=seed)
        export_rmvpe(checkpoint, work)
    audio_path = work / f"audio-{seconds:g}s-seed{seed}.safetensors"
    audio = demo_audio(int(round(seconds * 16000)), seed=seed)
    save_file({"audio": np.ascontiguousarray(audio[None])}, str(audio_path), metadata={"layout.audio": "BT"})
    return checkpoint, audio_path


def release_binary() -> Path:
    binary = DEMOS / ".build" / "release" / "RVCNativeMac"
    subprocess.run(["swift", "build", "-c", "release", "--product", "RVCNativeMac"], cwd=DEMOS, check=True,
                   stdout=subprocess.DEVNULL)
    return binary


def run_swift(binary: Path, work: Path, model: str, audio_path: Path, out: Path):
    """(process seconds, f0 seconds by Swift's clock, per-stage seconds, peak memory MB or None)."""
    start = time.perf_counter()
    completed = subprocess.run(
        [str(binary), "f0", "--assets", str(work), "--model", model, "--inputs", str(audio_path),
         "--output", str(out)],
        check=True, capture_output=True, text=True)
    process = time.perf_counter() - start
    summary, stages = completed.stdout.strip().splitlines()[-2:]
    f0_seconds = float(re.search(r"f0 ([\d.]+) s", summary).group(1))
    peak = re.search(r"peak memory (\d+) MB", summary)
    split = {name: float(value) for name, value in re.findall(r"([\w +-]+?) ([\d.]+) s", stages.removeprefix("stages: "))}
    return process, f0_seconds, split, float(peak.group(1)) if peak else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=DEMOS / ".build" / "bench-rmvpe")
    parser.add_argument("--skip-pytorch", action="store_true", help="Time Swift and MLX only.")
    args = parser.parse_args()

    import numpy as np
    import torch
    from safetensors.numpy import load_file

    from rvc_ios_tools.rmvpe.demo import demo_audio
    from rvc_ios_tools.rmvpe.reference import estimate_f0, load_rmvpe, log_mel, mel_to_salience
    from rvc_ios_tools.core.pitch_track import f0_agreement

    torch.set_num_threads(args.threads)
    blas.set_num_threads(args.threads)
    checkpoint, audio_path = prepare(args.work_dir, args.seconds, args.seed)
    binary = release_binary()
    audio = demo_audio(int(round(args.seconds * 16000)), seed=args.seed)
    print(f"RMVPE (full size, demo weights), {args.seconds:g} s of 16 kHz audio ({1 + len(audio) // 160} frames); "
          f"Swift on {os.cpu_count()} core(s), torch {torch.get_num_threads()} / OpenBLAS {blas.num_threads()} thread(s)")
    print(f"MLX reference on {blas.kernel_description()}")
    from bench_swift import swift_blas_kernel

    print(f"Swift on {swift_blas_kernel(binary)}")

    out = args.work_dir / "f0-swift.safetensors"
    model = load_rmvpe(args.work_dir / f"{checkpoint.stem}.safetensors")
    sides = {"MLX reference": lambda: estimate_f0(model, audio)}
    if not args.skip_pytorch:
        from rvc.lib.rmvpe import RMVPE

        upstream = RMVPE(str(checkpoint), is_half=False, device="cpu")
        sides["PyTorch upstream"] = lambda: upstream.infer_from_audio(audio, thred=0.03)

    swift_runs = [run_swift(binary, args.work_dir, checkpoint.stem, audio_path, out)]  # warm-up: file cache
    times: dict[str, list[float]] = {"Swift (RVCNative)": [], **{name: [] for name in sides}}
    with torch.no_grad():
        for run in sides.values():
            run()  # warm-up: first-call allocations and library initialisation
        for _ in range(args.repeats):
            for name, run in sides.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
            swift_runs.append(run_swift(binary, args.work_dir, checkpoint.stem, audio_path, out))
            times["Swift (RVCNative)"].append(swift_runs[-1][1])
    process, _, split, peak = min(swift_runs[1:], key=lambda run: run[1])
    swift_seconds = min(times["Swift (RVCNative)"])

    for name, side_times in times.items():
        print(f"{name:18s} best {min(side_times):7.2f} s   median {statistics.median(side_times):7.2f} s   "
              f"({args.seconds / min(side_times):.1f}x real time)")
    print(f"Swift process      {process:7.2f} s (load, XXH64 checks and one run; fastest run's process)"
          + (f", peak memory {peak:.0f} MB" if peak else ""))
    print("Swift stages: " + ", ".join(f"{name} {value:.2f} s" for name, value in split.items()))
    for name in sides:
        print(f"ratio {name} / Swift (best): {min(times[name]) / swift_seconds:.2f}")

    swift_f0 = load_file(str(out))["f0"][0]
    reference_f0 = estimate_f0(model, audio)
    salience = np.array(mel_to_salience(model, log_mel(audio)))[0]
    print("Swift vs MLX f0: " + f0_agreement(reference_f0, swift_f0, salience).summary())


if __name__ == "__main__":
    main()
