"""Time `rvc-ios export` on a full-size voice beside the floor measured in the same run.

The floor is what any exporter must at least do: `torch.load` the voice and `safetensors` save its tensors.
Target: export at most 2x the floor.

    python benchmarks/bench_export.py [--preset v2-48k] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from rvc_ios_tools.demo import write_demo_voice
from rvc_ios_tools.export import export_voice


def floor_once(source: Path, out: Path) -> float:
    start = time.perf_counter()
    payload = torch.load(source, map_location="cpu", weights_only=True)
    save_file({k: v.contiguous() for k, v in payload["weight"].items()}, str(out))
    return time.perf_counter() - start


def export_once(source: Path, out_dir: Path, dtype: str) -> float:
    start = time.perf_counter()
    export_voice(source, out_dir, "Bench", dtype=dtype)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v2-48k")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = write_demo_voice(folder / "Bench.pth", args.preset, seed=0)
        size_mb = source.stat().st_size / 1e6
        floor_once(source, folder / "warm.safetensors")  # warm the page cache and torch's first-call costs
        floors, exports, exports16 = [], [], []
        for _ in range(args.repeats):
            floors.append(floor_once(source, folder / "floor.safetensors"))
            exports.append(export_once(source, folder / "out32", "float32"))
            exports16.append(export_once(source, folder / "out16", "float16"))
        floor, export = statistics.median(floors), statistics.median(exports)
        export16 = statistics.median(exports16)
        print(f"voice: {args.preset} fp16, {size_mb:.1f} MB, torch threads {torch.get_num_threads()}")
        print(f"| step | median of {args.repeats} (s) |")
        print("|---|---|")
        print(f"| floor: torch.load + safetensors save | {floor:.3f} |")
        print(f"| rvc-ios export --dtype float16 (same bytes as the floor) | {export16:.3f} ({export16 / floor:.2f}x floor) |")
        print(f"| rvc-ios export --dtype float32 (twice the bytes) | {export:.3f} ({export / floor:.2f}x floor) |")


if __name__ == "__main__":
    main()
