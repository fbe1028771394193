"""Retrieval for 30 s of audio (1500 frames of 768-d features) against a 200 000 x 768 index: the Swift port
(`RVCNativeMac run`, release build) beside the MLX reference (`rvc_ios_tools.index.reference`) and faiss-cpu
with upstream's numpy blend, all on the same index file and the same frames.

    python benchmarks/bench_index.py [--frames 1500] [--rows 200000] [--repeats 3] [--threads N]

Builds the index once into --work-dir (default Demos/.build/bench-index): demo features, 200 000 // 39 = 5128
lists as train_index picks them, the coarse centroids taken from the features instead of trained (faiss's
k-means on 200 000 x 768 takes minutes; the file and the search are the same), written by faiss; then
exports it and records a golden set of the frames. Each repeat runs the three sides in turn, so all see the
same machine load: faiss `index.search(npy, k=8)` + upstream's weights, `big_npy[ix]` sum and blend; the MLX
reference's `retrieval` (the same steps); Swift's search and blend by its own clock (after loading) and as
a whole process. `big_npy` (faiss `reconstruct_n`) is made once, outside the timings, as upstream makes it
once per conversion. --threads (default: all cores) sets faiss's OpenMP and numpy's OpenBLAS threads; the
Swift binary uses every core. Prints best and median times, the ratios (other side / Swift) and how many
frames' 8 ids each side shares with faiss.
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
INDEX_RATE = 0.75
# OpenBLAS's and OpenMP's worker threads keep spinning for a while after a call; each side starts after this
# pause so that none runs beside the previous side's spinning threads.
SETTLE_SECONDS = 0.5


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1500, help="Frames searched (50 per second of audio).")
    parser.add_argument("--rows", type=int, default=200_000, help="Vectors in the index.")
    parser.add_argument("--dim", type=int, default=768, help="Vector width (v2: 768, v1: 256).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=DEMOS / ".build" / "bench-index")
    return parser.parse_args()


ARGS = parse_arguments()
# numpy's OpenBLAS reads its thread count when it loads: set before the first numpy import.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402


def prepare(work: Path, rows: int, dim: int, frames: int, seed: int) -> tuple[Path, str, Path]:
    """(the faiss file, the export's name, the golden set folder), each built once."""
    from rvc_ios_tools.core.manifest import is_current
    from rvc_ios_tools.index import demo
    from rvc_ios_tools.index.export import export_index
    from rvc_ios_tools.index.golden import FRAMES_PER_SECOND, generate_index_golden

    work.mkdir(parents=True, exist_ok=True)
    nlist = demo.ivf_list_count(rows)
    name = f"bench-{rows}x{dim}-seed{seed}"
    index_path = work / f"added_IVF{nlist}_Flat_nprobe_1_{name}_v2.index"
    if not index_path.is_file():
        print(f"building {index_path.name} ...", file=sys.stderr, flush=True)
        features = demo.demo_features(rows, dim, seed=seed)
        centroids = features[np.random.default_rng(seed).choice(rows, nlist, replace=False)]
        demo.build_index_on_centroids(features, centroids, index_path)
    if not is_current(work / f"{name}.manifest.json"):
        export_index(index_path, work, name)
    golden = work / f"golden-{name}-{frames}"
    if not (golden / "index.json").is_file():
        generate_index_golden(work, name, golden, seed=seed, seconds=frames / FRAMES_PER_SECOND, index_rate=INDEX_RATE)
    return index_path, name, golden


def release_binary() -> Path:
    subprocess.run(["swift", "build", "-c", "release", "--product", "RVCNativeMac"], cwd=DEMOS, check=True,
                   stdout=subprocess.DEVNULL)
    return DEMOS / ".build" / "release" / "RVCNativeMac"


def run_swift(binary: Path, work: Path, name: str, golden: Path, out: Path) -> tuple[float, float]:
    """(whole process seconds, search and blend seconds by Swift's clock)."""
    start = time.perf_counter()
    completed = subprocess.run([str(binary), "run", "--assets", str(work), "--model", name, "--inputs", str(golden),
                                "--output", str(out)], check=True, capture_output=True, text=True)
    process = time.perf_counter() - start
    return process, float(re.search(r"search and blend ([\d.]+) s", completed.stdout).group(1))


def main() -> None:
    import faiss
    from safetensors.numpy import load_file

    from rvc_ios_tools.core.diff import snr_db
    from rvc_ios_tools.core.golden import read_golden
    from rvc_ios_tools.index.faiss_file import read_faiss_index
    from rvc_ios_tools.index.reference import SearchIndex, retrieval
    from rvc_ios_tools.index.upstream import faiss_search

    faiss.omp_set_num_threads(ARGS.threads)
    index_path, name, golden_dir = prepare(ARGS.work_dir, ARGS.rows, ARGS.dim, ARGS.frames, ARGS.seed)
    binary = release_binary()
    feats = read_golden(golden_dir).tensors["feats"][0]
    out = ARGS.work_dir / "swift-candidate.safetensors"

    theirs = faiss.read_index(str(index_path))
    big_npy = theirs.reconstruct_n(0, theirs.ntotal)
    ours = SearchIndex.from_file_index(read_faiss_index(index_path))
    ours_big_npy = ours.vectors_by_id()

    def faiss_side():
        score, ix = faiss_search(theirs, feats)
        weight = np.square(1 / score)
        weight /= weight.sum(axis=1, keepdims=True)
        npy = np.sum(big_npy[ix] * np.expand_dims(weight, axis=2), axis=1)
        return ix, npy * np.float32(INDEX_RATE) + np.float32(1 - INDEX_RATE) * feats

    def reference_side():
        done = retrieval(ours, feats, INDEX_RATE, big_npy=ours_big_npy)
        return done.search.ids, done.blended

    def timed(side):
        time.sleep(SETTLE_SECONDS)
        start = time.perf_counter()
        result = side()
        return time.perf_counter() - start, result

    # Warm-up: page the index in, load the binary, fill caches.
    faiss_side(), reference_side(), run_swift(binary, ARGS.work_dir, name, golden_dir, out)
    times: dict[str, list[float]] = {"faiss-cpu + upstream blend": [], "MLX reference": [], "Swift": [],
                                     "Swift (whole process)": []}
    for _ in range(ARGS.repeats):
        seconds, (faiss_ids, faiss_blended) = timed(faiss_side)
        times["faiss-cpu + upstream blend"].append(seconds)
        seconds, (reference_ids, reference_blended) = timed(reference_side)
        times["MLX reference"].append(seconds)
        time.sleep(SETTLE_SECONDS)
        process, swift_seconds = run_swift(binary, ARGS.work_dir, name, golden_dir, out)
        times["Swift"].append(swift_seconds)
        times["Swift (whole process)"].append(process)

    candidate = load_file(str(out))
    swift_ids, swift_blended = candidate["search.ids"][0].astype(np.int64), candidate["blended"][0]
    c = theirs
    print(f"\n{ARGS.frames} frames x {ARGS.dim} against {c.ntotal} vectors in {faiss.extract_index_ivf(c).nlist} lists "
          f"(nprobe {faiss.extract_index_ivf(c).nprobe}), k 8, index_rate {INDEX_RATE}; {ARGS.threads} threads; "
          f"best and median of {ARGS.repeats}\n")
    print("| side | best (s) | median (s) | best / Swift's best |")
    print("|---|---|---|---|")
    swift_best = min(times["Swift"])
    for side, values in times.items():
        print(f"| {side} | {min(values):.4f} | {statistics.median(values):.4f} | {min(values) / swift_best:.2f} |")
    for side, ids, blended in (("MLX reference", reference_ids, reference_blended), ("Swift", swift_ids, swift_blended)):
        same = int(np.all(ids == faiss_ids, axis=1).sum())
        print(f"\n{side}: identical ids to faiss on {same} of {len(ids)} frames; blended features "
              f"{snr_db(faiss_blended, blended):.1f} dB against faiss + upstream's blend", end="")
    print()


if __name__ == "__main__":
    main()
