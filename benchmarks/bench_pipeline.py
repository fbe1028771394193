"""The whole conversion: the Swift port (`RVCNativeMac convert`, release build) and the MLX reference
(`rvc-ios convert`'s pipeline) against upstream's own `Pipeline.pipeline` (rvc 0.3.5), same threads, one after
the other, on 16 kHz speech (espeak-ng, quantised to int16 as a WAV file carries it, so every side converts the
same samples), with full-size demo networks: a v2 40k voice, RMVPE, a HuBERT-base content encoder and an index
of 100 000 x 768.

    python benchmarks/bench_pipeline.py [--seconds 30 60] [--repeats 1] [--threads 2] [--skip-swift]

Prints, per length: seconds and real-time factor (compute seconds per second of audio) per stage and whole,
for each side, the ratios (upstream / side: above 1 means the side is faster), and peak memory: the Swift
process's own peak resident set (it runs alone in a child process, loading included), and this process's peak
so far (upstream and the MLX reference share it).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from rvc_ios_tools.core import blas  # noqa: E402  (before mlx)

import numpy as np  # noqa: E402

INDEX_ROWS = 100_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_swift_conversion(binary: Path, assets: Path, wav: Path, out: Path) -> tuple[float, dict[str, float], float]:
    """(conversion seconds by Swift's clock, its per-stage seconds, the child's peak resident memory in MB)."""
    command = [str(binary), "convert", "--assets", str(assets), "--model", "voice", "--hubert", "hubert",
               "--rmvpe", "rmvpe", "--index", "index", "--input", str(wav), "--output", str(out)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait4 gives this child's own peak, where RUSAGE_CHILDREN would give the largest of every child so far.
    _, status, usage = os.wait4(child.pid, 0)
    stdout, stderr = child.stdout.read(), child.stderr.read()
    if status != 0:
        raise SystemExit(f"RVCNativeMac convert failed:\n{stdout}{stderr}")
    whole = float(re.search(r"conversion ([\d.]+) s", stdout).group(1))
    stages_line = next((line for line in stdout.splitlines() if line.startswith("stages: ")), "")
    stages = {name.strip(): float(value) for name, value in re.findall(r"([\w ]+?) ([\d.]+) s", stages_line.removeprefix("stages: "))}
    if "features" in stages:
        stages["features"] += stages.get("retrieval", 0.0)  # upstream times the two together
    # The process's own VmHWM, which it prints: Linux folds the parent's high-water mark into the child's ru_maxrss
    # across (v)fork and exec, and this parent holds gigabytes of upstream's and the reference's networks by then.
    peak = re.search(r"peak memory ([\d.]+) MB", stdout)
    return whole, stages, float(peak.group(1)) if peak else usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[30.0, 60.0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "rvc-ios-bench-pipeline")
    parser.add_argument("--skip-swift", action="store_true", help="Do not build or time the Swift port.")
    args = parser.parse_args()

    import safetensors.numpy
    import torch

    from bench_rmvpe import release_binary
    from bench_swift import swift_blas_kernel
    from rvc_ios_tools.core.wav import write_wav_int16
    from rvc_ios_tools.hubert.demo import synthesized_speech
    from rvc_ios_tools.hubert.upstream import load_upstream_hubert
    from rvc_ios_tools.index.demo import build_index
    from rvc_ios_tools.index.export import export_index
    from rvc_ios_tools.pipeline.convert import ConvertOptions, convert, load_networks
    from rvc_ios_tools.pipeline.demo import write_demo_assets
    from rvc_ios_tools.pipeline.upstream import TransformersContentEncoder, run_upstream_pipeline
    from rvc_ios_tools.rmvpe.convert import DEMO_ARCHITECTURES
    from rvc_ios_tools.rmvpe.upstream import load_upstream_rmvpe
    from rvc_ios_tools.voice.checkpoint import load_voice
    from rvc_ios_tools.voice.upstream import upstream_model

    torch.set_num_threads(args.threads)
    blas.set_num_threads(args.threads)
    assets = write_demo_assets(args.work_dir, "v2-40k", "full", with_index=False)
    index_path = args.work_dir / "added_IVF1264_Flat_nprobe_1_voice_v2.index"
    if not index_path.exists():
        rng = np.random.default_rng(0)
        build_index((rng.standard_normal((INDEX_ROWS, 768)) * 0.5).astype(np.float32), index_path)
    export_index(index_path, assets.exports, "index")
    networks = load_networks(assets.exports, "voice", "hubert", "rmvpe", "index")
    checkpoint = load_voice(assets.voice)
    state = safetensors.numpy.load_file(str(assets.hubert / "model.safetensors"))
    encoder = TransformersContentEncoder(load_upstream_hubert(state, assets.hubert_architecture), assets.hubert_architecture)
    rmvpe = load_upstream_rmvpe(assets.rmvpe, DEMO_ARCHITECTURES["full"])
    net_g = upstream_model(checkpoint)
    options = ConvertOptions()
    binary = None if args.skip_swift else release_binary()
    print(f"v2 40k voice, full RMVPE and content encoder, index {INDEX_ROWS} x 768; {args.threads} thread(s); "
          f"MLX reference on {blas.kernel_description()}")
    if binary is not None:
        print(f"Swift on {swift_blas_kernel(binary)}")

    for seconds in args.seconds:
        # The samples a 16-bit WAV carries, so the Swift port (which reads the file) converts what the others do.
        quantised = np.clip(np.round(synthesized_speech(int(seconds * 16000)) * 32768), -32768, 32767).astype(np.int16)
        speech = quantised.astype(np.float32) / np.float32(32768)
        wav = args.work_dir / f"speech-{seconds:g}s.wav"
        write_wav_int16(wav, quantised, 16000)
        ours_runs, theirs_runs, swift_runs = [], [], []
        for _ in range(args.repeats):
            if binary is not None:
                swift_runs.append(run_swift_conversion(binary, assets.exports, wav, args.work_dir / "swift-out.wav"))
            run = None
            start = time.perf_counter()
            run = run_upstream_pipeline(net_g, encoder, rmvpe, target_rate=40000, version="v2", f0=True, audio=speech,
                                        index_path=index_path, options=options)
            theirs_runs.append((time.perf_counter() - start, run))
            stages = convert(networks, speech, options, noise=run["noise"])
            ours_runs.append(stages["seconds"])
        theirs_whole, theirs_run = min(theirs_runs, key=lambda pair: pair[0])
        times = theirs_run["times"]
        ours = min(ours_runs, key=lambda s: s["whole"])
        print(f"\n{seconds:g} s of speech ({1 + len(stages['split_points'])} segment(s)), best of {args.repeats}:")
        # Upstream times f0, then content features with retrieval together ("npy"), then the synthesizer.
        rows = [
            ("pitch (RMVPE)", "pitch", ours.get("pitch", 0.0), times["f0"]),
            ("content features + retrieval", "features", ours.get("content_features", 0.0) + ours.get("retrieval", 0.0),
             times["npy"]),
            ("synthesizer", "synthesizer", ours.get("synthesizer", 0.0), times["infer"]),
            ("whole", "whole", ours["whole"], theirs_whole),
        ]
        swift = min(swift_runs, key=lambda run: run[0]) if swift_runs else None

        def swift_cells(key: str, upstream_seconds: float) -> str:
            if swift is None:
                return ""
            value = swift[0] if key == "whole" else swift[1].get(key)
            if value is None:
                return " - | - | - |"
            return f" {value:.2f} | {value / seconds:.3f} | {upstream_seconds / value:.2f}x |"

        swift_header = " Swift (s) | RTF | upstream / Swift |" if swift else ""
        print(f"| stage | upstream (s) | RTF | MLX reference (s) | RTF | upstream / MLX |{swift_header}")
        print("|---|---|---|---|---|---|" + ("---|---|---|" if swift else ""))
        for name, key, mine, upstream_seconds in rows:
            print(f"| {name} | {upstream_seconds:.2f} | {upstream_seconds / seconds:.3f} | {mine:.2f} | {mine / seconds:.3f} | "
                  f"{upstream_seconds / mine:.2f}x |{swift_cells(key, upstream_seconds)}")
        if swift is not None:
            print(f"Swift process peak resident memory (loading included): {swift[2]:.0f} MB")
        print(f"peak resident memory of this process so far (upstream and MLX reference): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
