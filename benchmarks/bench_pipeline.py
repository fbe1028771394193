"""The whole conversion: the MLX reference (`rvc-ios convert`'s pipeline) against upstream's own
`Pipeline.pipeline` (rvc 0.3.5), same threads, alternating, on 16 kHz speech (espeak-ng), with full-size demo
networks: a v2 40k voice, RMVPE, a HuBERT-base content encoder and an index of 100 000 x 768.

    python benchmarks/bench_pipeline.py [--seconds 30 60] [--repeats 1] [--threads 2]

Prints, per length: seconds and real-time factor (compute seconds per second of audio) per stage and whole,
for each side, their ratio, and each side's peak resident memory growth.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rvc_ios_tools.core import blas  # noqa: E402  (before mlx)

import numpy as np  # noqa: E402

INDEX_ROWS = 100_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[30.0, 60.0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "rvc-ios-bench-pipeline")
    args = parser.parse_args()

    import safetensors.numpy
    import torch

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
    print(f"v2 40k voice, full RMVPE and content encoder, index {INDEX_ROWS} x 768; {args.threads} thread(s); "
          f"MLX reference on {blas.kernel_description()}")

    for seconds in args.seconds:
        speech = synthesized_speech(int(seconds * 16000))
        ours_runs, theirs_runs = [], []
        for _ in range(args.repeats):
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
            ("pitch (RMVPE)", ours.get("pitch", 0.0), times["f0"]),
            ("content features + retrieval", ours.get("content_features", 0.0) + ours.get("retrieval", 0.0), times["npy"]),
            ("synthesizer", ours.get("synthesizer", 0.0), times["infer"]),
            ("whole", ours["whole"], theirs_whole),
        ]
        print("| stage | MLX reference (s) | RTF | upstream (s) | RTF | upstream / MLX |")
        print("|---|---|---|---|---|---|")
        for name, mine, upstream_seconds in rows:
            print(f"| {name} | {mine:.2f} | {mine / seconds:.3f} | {upstream_seconds:.2f} | {upstream_seconds / seconds:.3f} | "
                  f"{upstream_seconds / mine:.2f}x |")
        print(f"peak resident memory of this process so far: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
