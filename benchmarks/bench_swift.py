"""Swift RVCNativeMac vs the MLX reference vs upstream PyTorch on CPU: one full-size demo voice, same input and noise.

    python benchmarks/bench_swift.py [--preset v2-40k] [--seconds 10] [--repeats 3] [--threads N]
    python benchmarks/bench_swift.py --preset v2-48k --seconds 30 --skip-torch --skip-mlx   # memory run

Builds the release binary, exports the demo voice and writes the inputs into --work-dir (default
Demos/.build/bench), then alternates Swift, MLX and PyTorch runs so all see the same machine load. Swift is
timed as a whole process (`RVCNativeMac synthesize`: loading, checksums and synthesis) and by its own
synthesis clock; MLX and PyTorch by `bench_synth_mx.py` / `bench_synth_pt.py` (model in memory, warmed up;
PyTorch with weight norm attached, as upstream runs it). Prints real-time factors (seconds of compute per
second of audio; below 1 is faster than real time), the ratios, the Swift process's peak resident memory,
and the SNR of the Swift audio against PyTorch's.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMOS = REPO / "Demos"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from rvc_ios_tools.core import blas  # noqa: E402,F401  (OpenBLAS before mlx)


def prepare(work: Path, preset: str, seconds: float, seed: int):
    """Export the demo voice and write inputs + noise (golden names and layouts) once per setting."""
    import numpy as np
    from safetensors.numpy import save_file

    from rvc_ios_tools.voice.demo import write_demo_voice
    from rvc_ios_tools.voice.export import export_voice
    from rvc_ios_tools.core.manifest import is_current
    from rvc_ios_tools.voice.inputs import synthesize_voice_inputs
    from rvc_ios_tools.voice.reference import draw_noise
    from rvc_ios_tools.voice.upstream import demo_checkpoint

    work.mkdir(parents=True, exist_ok=True)
    name = f"demo-{preset}-seed{seed}"
    if not is_current(work / f"{name}.manifest.json"):  # exported by this tool version, else again
        source = work / f"{name}.pth"
        write_demo_voice(source, preset, seed, "rvc-webui")
        export_voice(source, work, name)
    checkpoint = demo_checkpoint(preset, seed)
    inputs = synthesize_voice_inputs(checkpoint, seed, seconds)
    noise = draw_noise(checkpoint, inputs, seed)
    inputs_path = work / f"inputs-{preset}-{seconds:g}s-seed{seed}.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in {**inputs, **noise}.items()}, str(inputs_path))
    return checkpoint, name, inputs, noise, inputs_path


def run_swift(binary: Path, work: Path, name: str, inputs_path: Path, out: Path, chunk: int) -> tuple[float, float, float, float]:
    """(process seconds, synthesis seconds, synthesis CPU seconds, peak memory MB) as the binary reports them."""
    start = time.perf_counter()
    completed = subprocess.run(
        [str(binary), "synthesize", "--assets", str(work), "--model", name, "--inputs", str(inputs_path),
         "--output", str(out), "--chunk-frames", str(chunk)],
        capture_output=True, text=True)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"RVCNativeMac failed: {completed.stderr.strip() or completed.stdout.strip()}")
    report = re.search(r"synthesis ([0-9.]+) s \(CPU ([0-9.]+) s\), peak memory ([0-9.]+) MB", completed.stdout)
    return wall, float(report.group(1)), float(report.group(2)), float(report.group(3))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def swift_blas_kernel(binary: Path) -> str:
    """RVCNativeMac's own account of the OpenBLAS kernel it runs (after any start-up switch)."""
    done = subprocess.run([str(binary), "blas-kernel", "--verbose"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="v2-40k")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk-frames", type=int, default=1000)
    parser.add_argument("--work-dir", type=Path, default=DEMOS / ".build" / "bench")
    parser.add_argument("--skip-torch", action="store_true", help="Do not time upstream PyTorch.")
    parser.add_argument("--skip-mlx", action="store_true", help="Do not time the MLX reference.")
    args = parser.parse_args()

    subprocess.run(["swift", "build", "-c", "release", "--product", "RVCNativeMac"], cwd=DEMOS, check=True,
                   stdout=subprocess.DEVNULL)
    binary = DEMOS / ".build" / "release" / "RVCNativeMac"
    checkpoint, name, inputs, noise, inputs_path = prepare(args.work_dir, args.preset, args.seconds, args.seed)
    out = args.work_dir / "swift-audio.safetensors"

    model = None
    if not args.skip_torch:
        import torch

        from bench_synth_pt import infer_once
        from rvc_ios_tools.voice.upstream import upstream_model

        torch.set_num_threads(args.threads)
        model = upstream_model(checkpoint)
        reference = infer_once(model, checkpoint.f0, inputs, noise).numpy().reshape(-1)  # warm-up

    mlx_run = None
    if not args.skip_mlx:
        from bench_synth_mx import mlx_runner
        from rvc_ios_tools.voice.convert import convert_voice

        blas.set_num_threads(args.threads)
        mlx_run = mlx_runner(checkpoint, convert_voice(checkpoint), inputs, noise)

    swift_runs, torch_times, torch_cpu, mlx_times = [], [], [], []
    for _ in range(args.repeats):
        swift_runs.append(run_swift(binary, args.work_dir, name, inputs_path, out, args.chunk_frames))
        if mlx_run is not None:
            mlx_times.append(mlx_run())
        if model is not None:
            start, cpu_start = time.perf_counter(), cpu_seconds()
            infer_once(model, checkpoint.f0, inputs, noise)
            torch_times.append(time.perf_counter() - start)
            torch_cpu.append(cpu_seconds() - cpu_start)

    print(f"{args.preset}, {args.seconds:g} s of audio, {args.threads} core(s), decoder chunk {args.chunk_frames} frames")
    print(f"Swift on {swift_blas_kernel(binary)}; MLX reference on {blas.kernel_description()}")
    walls, syntheses, swift_cpu, peaks = zip(*swift_runs)
    print(f"Swift process     best {min(walls):7.2f} s   median {statistics.median(walls):7.2f} s   (load + verify + synthesis)")
    print(f"Swift synthesis   best {min(syntheses):7.2f} s   median {statistics.median(syntheses):7.2f} s   "
          f"CPU best {min(swift_cpu):7.2f} s   peak memory {max(peaks):.0f} MB")
    rtf = lambda seconds: seconds / args.seconds  # noqa: E731
    print(f"real-time factor (best): Swift synthesis {rtf(min(syntheses)):.3f}, Swift whole process {rtf(min(walls)):.3f}"
          + (f", MLX reference {rtf(min(mlx_times)):.3f}" if mlx_times else "")
          + (f", PyTorch {rtf(min(torch_times)):.3f}" if torch_times else ""))
    if mlx_times:
        print(f"MLX reference     best {min(mlx_times):7.2f} s   median {statistics.median(mlx_times):7.2f} s")
        print(f"speed-up MLX/Swift synthesis, best wall: {min(mlx_times) / min(syntheses):.2f}x")
    if torch_times:
        import numpy as np
        from safetensors.numpy import load_file

        print(f"PyTorch upstream  best {min(torch_times):7.2f} s   median {statistics.median(torch_times):7.2f} s   "
              f"CPU best {min(torch_cpu):7.2f} s")
        print(f"speed-up PyTorch/Swift synthesis, best wall: {min(torch_times) / min(syntheses):.2f}x, "
              f"best CPU: {min(torch_cpu) / min(swift_cpu):.2f}x; whole Swift process (wall): {min(torch_times) / min(walls):.2f}x")
        audio = load_file(str(out))["audio"].reshape(-1).astype(np.float64)
        error = audio - reference
        print(f"Swift vs PyTorch audio: SNR {10 * np.log10((reference ** 2).sum() / (error ** 2).sum()):.1f} dB")


if __name__ == "__main__":
    main()
