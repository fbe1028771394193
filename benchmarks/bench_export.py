"""Time `rvc-ios export` on a full-size voice beside the floor measured in the same run.

The floor is what any exporter must at least do: `torch.load` the voice and `safetensors` save the tensors
it stores. For `--dtype float16` (the voice's own dtype) that is the state dict as loaded; for
`--dtype float32` the same tensors cast to float32 first (twice the bytes to write). Target: export at most
2x its floor. The runs alternate (floor, export, ...), so a busy machine slows both alike.

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

from rvc_ios_tools.voice.demo import write_demo_voice
from rvc_ios_tools.voice.export import export_voice


def floor_once(source: Path, out: Path, dtype: torch.dtype | None = None) -> float:
    start = time.perf_counter()
    payload = torch.load(source, map_location="cpu", weights_only=True)
    weights = payload["weight"].items()
    save_file({k: (v if dtype is None else v.to(dtype)).contiguous() for k, v in weights}, str(out))
    return time.perf_counter() - start


def export_once(source: Path, out_dir: Path, dtype: str) -> float:
    start = time.perf_counter()
    export_voice(source, out_dir, "Bench", dtype=dtype)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v2-48k")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where both sides write (default: /dev/shm, memory-backed, so disk writeback, which varies run to "
             "run on a shared machine, times neither side)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        source = write_demo_voice(folder / "Bench.pth", args.preset, seed=0)
        size_mb = source.stat().st_size / 1e6
        floor_once(source, folder / "warm.safetensors")  # warm the page cache and torch's first-call costs
        floors16, floors32, exports16, exports32 = [], [], [], []
        for _ in range(args.repeats):
            floors16.append(floor_once(source, folder / "floor16.safetensors"))
            exports16.append(export_once(source, folder / "out16", "float16"))
            floors32.append(floor_once(source, folder / "floor32.safetensors", torch.float32))
            exports32.append(export_once(source, folder / "out32", "float32"))
        med = statistics.median
        print(f"voice: {args.preset} fp16, {size_mb:.1f} MB, torch threads {torch.get_num_threads()}, "
              f"files written under {folder.parent}")
        print(f"| step | median of {args.repeats} (s) | best (s) |")
        print("|---|---|---|")
        print(f"| floor fp16: torch.load + safetensors save | {med(floors16):.3f} | {min(floors16):.3f} |")
        print(f"| `rvc-ios export --dtype float16` | {med(exports16):.3f} ({med(exports16) / med(floors16):.2f}x floor) "
              f"| {min(exports16):.3f} ({min(exports16) / min(floors16):.2f}x) |")
        print(f"| floor fp32: torch.load + cast to float32 + safetensors save | {med(floors32):.3f} | {min(floors32):.3f} |")
        print(f"| `rvc-ios export --dtype float32` | {med(exports32):.3f} ({med(exports32) / med(floors32):.2f}x floor) "
              f"| {min(exports32):.3f} ({min(exports32) / min(floors32):.2f}x) |")


if __name__ == "__main__":
    main()
