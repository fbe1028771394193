"""What every network's export shares: progress lines, and weights + manifest written atomically together."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
import concurrent.futures
import contextlib
from typing import Callable, Iterator

import numpy as np

from . import manifest as manifest_io
from .files import SafetensorsWriter, atomic_output, xxh64_tensor


class StepReporter:
    """Progress on stderr for steps that can take over a second: a line when a step starts and ends."""

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self._stream = stream

    @property
    def stream(self):
        # Looked up when used, not when defined: a caller (or a test runner) may have replaced sys.stderr.
        return self._stream if self._stream is not None else sys.stderr

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        start = time.perf_counter()
        if self.enabled:
            print(f"  {title} ...", end="", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            if self.enabled:
                print(" failed", file=self.stream, flush=True)
            raise
        if self.enabled:
            print(f" done ({time.perf_counter() - start:.1f} s)", file=self.stream, flush=True)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to `count`, then restore it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclasses.dataclass(frozen=True)
class ExportResult:
    weights_path: Path
    manifest_path: Path
    tensor_count: int
    dropped_count: int


# The weights file's only metadata entry names its producer; the manifest carries everything else.
WEIGHTS_METADATA = {"format": "rvc-ios-tools"}

# `fill(put)` calls `put(key, array)` once per declared tensor, from any thread.
Filler = Callable[[Callable[[str, np.ndarray], None]], None]


def write_weights_and_manifest(
    out_dir: Path,
    model_name: str,
    specs: dict[str, tuple[np.dtype, tuple[int, ...]]],
    fill: Filler,
    manifest_for: Callable[[list[dict], str], dict],
) -> tuple[Path, Path]:
    """Save tensors + manifest; both land together or neither does (temporary files, then renames).

    `specs` declares every tensor's dtype and shape; `fill(put)` hands over the tensors (from worker threads
    too), and each is checksummed as it arrives. Then the weights file is written on a helper thread (one
    gathered write, which releases the GIL) while this thread builds and schema-checks the manifest (pure
    Python, so the two overlap). A manifest that fails its schema leaves no file behind.
    """
    weights_path = out_dir / f"{model_name}.safetensors"
    manifest_path = out_dir / f"{model_name}.manifest.json"
    arrays: dict[str, np.ndarray] = {}
    checksums: dict[str, str] = {}

    def put(key: str, array: np.ndarray) -> None:
        checksums[key] = xxh64_tensor(array)
        arrays[key] = array

    fill(put)
    # Inner block renames first: the weights land, then the manifest that vouches for them.
    with atomic_output(manifest_path) as tmp_manifest, atomic_output(weights_path) as tmp_weights:
        with SafetensorsWriter(tmp_weights, specs, WEIGHTS_METADATA) as writer:
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                written = pool.submit(writer.write_all, arrays)
                try:
                    rows = [
                        {"key": key, "shape": list(specs[key][1]), "dtype": str(np.dtype(specs[key][0])), "xxh64": checksums[key]}
                        for key in sorted(specs)
                    ]
                    document = manifest_for(rows, weights_path.name)
                finally:
                    written.result()
        tmp_manifest.write_bytes(manifest_io.dumps(document))
    return weights_path, manifest_path
