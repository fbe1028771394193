"""The content encoder, 30 s of speech to layer 12 (RVC v2 features): the Swift port (`RVCNativeMac features`,
release build) beside the MLX reference and transformers' `HubertModel` on CPU, the same full-size random
encoder and the same audio (espeak-ng speech) on every side.

    python benchmarks/bench_hubert.py [--seconds 30] [--repeats 1] [--threads N] [--memory-seconds 60]

Writes the demo encoder (fairseq format, as hubert_base.pt), its export and the speech into --work-dir (default
Demos/.build/bench-hubert), builds the release binary if needed, warms every side up once, then runs the three
sides in turn --repeats times (default one run), so all see the same machine load: Swift by its own clock
(audio -> features after loading, `--repeats 1` inside the process) and as a whole process, MLX
(`reference.extract_features`) and transformers (`model(audio).last_hidden_state`, no_grad, eval) in this
process. The Swift binary uses every core (`ParallelWork`); --threads (default: all cores) sets torch's and
OpenBLAS's threads to match. Then Swift's peak memory on --memory-seconds of speech (0: skip). Prints the
times, the ratios (other side / side; above 1 means the side is faster) and Swift's and MLX's agreement
with transformers (SNR of the v2 features).
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

SEED = 0
MODEL = "hubert-bench"


def prepare(work: Path, seconds: float) -> tuple[Path, Path]:
    """The exported demo encoder (once) and a speech file of `seconds`, as the Swift binary reads it."""
    import numpy as np
    from safetensors.numpy import save_file

    from rvc_ios_tools.core.manifest import is_current
    from rvc_ios_tools.hubert.demo import synthesized_speech, write_demo_fairseq
    from rvc_ios_tools.hubert.export import export_hubert

    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / f"{MODEL}.pt"
    if not is_current(work / f"{MODEL}.manifest.json"):
        write_demo_fairseq(checkpoint, seed=SEED)
        export_hubert(checkpoint, work, model_name=MODEL)
    audio_path = work / f"speech-{seconds:g}s.safetensors"
    audio = synthesized_speech(int(round(seconds * 16000)))
    save_file({"audio": np.ascontiguousarray(audio[None])}, str(audio_path), metadata={"layout.audio": "BT"})
    return checkpoint, audio_path


def run_swift(binary: Path, work: Path, audio_path: Path, out: Path) -> tuple[float, float, float | None]:
    """(process seconds, features seconds by Swift's clock, peak memory MB or None)."""
    start = time.perf_counter()
    completed = subprocess.run(
        [str(binary), "features", "--assets", str(work), "--model", MODEL, "--inputs", str(audio_path), "--output", str(out)],
        check=True, capture_output=True, text=True)
    process = time.perf_counter() - start
    summary = completed.stdout.strip().splitlines()[-1]
    seconds = float(re.search(r"features ([\d.]+) s", summary).group(1))
    peak = re.search(r"peak memory (\d+) MB", summary)
    return process, seconds, float(peak.group(1)) if peak else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--memory-seconds", type=float, default=60.0, help="Swift peak memory on this much speech (0: skip).")
    parser.add_argument("--work-dir", type=Path, default=DEMOS / ".build" / "bench-hubert")
    parser.add_argument("--skip-swift", action="store_true")
    args = parser.parse_args()

    import torch
    from safetensors.numpy import load_file

    from bench_rmvpe import release_binary
    from rvc_ios_tools.core.diff import snr_db
    from rvc_ios_tools.hubert.convert import convert_hubert, load_hubert
    from rvc_ios_tools.hubert.demo import demo_architecture, random_hubert_state_dict, synthesized_speech
    from rvc_ios_tools.hubert.reference import build_hubert, extract_features
    from rvc_ios_tools.hubert.upstream import load_upstream_hubert

    torch.set_num_threads(args.threads)
    blas.set_num_threads(args.threads)
    checkpoint, audio_path = prepare(args.work_dir, args.seconds)
    audio = synthesized_speech(int(round(args.seconds * 16000)))
    architecture = demo_architecture("full")
    loaded = load_hubert(checkpoint)
    ours = build_hubert(convert_hubert(loaded), loaded.architecture)
    upstream = load_upstream_hubert(random_hubert_state_dict(SEED, architecture), architecture)
    frames = (len(audio) - 400) // 320 + 1
    print(f"Content encoder (HuBERT-base size, random weights), {args.seconds:g} s of espeak-ng speech ({frames} frames) "
          f"to layer 12; torch {torch.get_num_threads()} / OpenBLAS {blas.num_threads()} thread(s), Swift on "
          f"{os.cpu_count()} core(s)")
    print(f"MLX reference on {blas.kernel_description()}")

    def transformers_run():
        with torch.no_grad():
            return upstream(torch.from_numpy(audio[None])).last_hidden_state.numpy()

    sides = {"MLX reference": lambda: extract_features(ours, audio), "transformers (PyTorch)": transformers_run}
    binary = None if args.skip_swift else release_binary()
    out = args.work_dir / "features-swift.safetensors"
    swift_runs = []
    times: dict[str, list[float]] = {name: [] for name in sides}
    results = {name: run() for name, run in sides.items()}  # warm-up: first-call allocations, library set-up
    if binary is not None:
        from bench_swift import swift_blas_kernel

        print(f"Swift on {swift_blas_kernel(binary)}")
        run_swift(binary, args.work_dir, audio_path, out)  # warm-up: file cache
        times["Swift (RVCNative)"] = []
    for _ in range(args.repeats):
        for name, run in sides.items():
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
        if binary is not None:
            swift_runs.append(run_swift(binary, args.work_dir, audio_path, out))
            times["Swift (RVCNative)"].append(swift_runs[-1][1])

    for name, side_times in times.items():
        print(f"{name:24s} best {min(side_times):7.2f} s   median {statistics.median(side_times):7.2f} s   "
              f"({args.seconds / min(side_times):.1f}x real time)")
    reference = results["transformers (PyTorch)"]
    for name in times:
        if name != "transformers (PyTorch)":
            print(f"ratio transformers / {name} (best): {min(times['transformers (PyTorch)']) / min(times[name]):.2f}")
    print(f"MLX vs transformers, v2 features: {snr_db(reference, results['MLX reference']):.1f} dB")
    if binary is not None:
        process, _, peak = min(swift_runs, key=lambda run: run[1])
        print(f"Swift process {process:.2f} s (load, XXH64 checks and one run)" + (f", peak memory {peak:.0f} MB" if peak else ""))
        print(f"Swift vs transformers, v2 features: {snr_db(reference, load_file(str(out))['features']):.1f} dB")
        if args.memory_seconds > 0:
            _, long_path = prepare(args.work_dir, args.memory_seconds)
            _, seconds, peak = run_swift(binary, args.work_dir, long_path, args.work_dir / "features-long.safetensors")
            print(f"Swift on {args.memory_seconds:g} s of speech: features {seconds:.2f} s, peak memory "
                  + (f"{peak:.0f} MB" if peak else "unknown"))


if __name__ == "__main__":
    main()
