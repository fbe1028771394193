"""`rvc-ios export`: find a voice by name, convert it, write weights + manifest atomically."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
import concurrent.futures
import contextlib
from typing import Callable, Iterator

import numpy as np

from . import manifest as manifest_io
from .checkpoint import load_voice
from .convert import VOICE_RULES, plan_conversion, run_conversion
from .errors import ModelNotFoundError, RvcIosError
from .files import SafetensorsWriter, atomic_output, sha256_file, xxh64_tensor

# RVC WebUI keeps its voices in assets/weights/; we look there unless told otherwise.
DEFAULT_MODELS_DIR = Path("assets/weights")
MODELS_DIR_ENV = "RVC_MODELS_DIR"


def models_dir(explicit: Path | None) -> Path:
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(MODELS_DIR_ENV):
        return Path(os.environ[MODELS_DIR_ENV])
    return DEFAULT_MODELS_DIR


def available_models(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    names = {p.stem for p in folder.glob("*.pth")}
    names |= {p.name for p in folder.iterdir() if p.is_dir() and len(list(p.glob("*.pth"))) == 1}
    return sorted(names)


def find_model(name: str, folder: Path) -> Path:
    """`NAME.pth`, or a folder `NAME/` holding exactly one `.pth` (how Applio and most downloads ship voices)."""
    direct = folder / f"{name}.pth"
    if direct.is_file():
        return direct
    nested = folder / name
    if nested.is_dir():
        candidates = sorted(nested.glob("*.pth"))
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise ModelNotFoundError(
                f"{nested} holds {len(candidates)} .pth files ({', '.join(c.name for c in candidates)}); "
                "keep one voice per folder or pass the file's stem as the model name."
            )
    found = available_models(folder)
    listing = ", ".join(found) if found else "none"
    raise ModelNotFoundError(
        f"No voice named {name!r} in {folder} (looked for {name}.pth and {name}/*.pth). "
        f"Voices found there: {listing}. Use --models-dir or ${MODELS_DIR_ENV} to look elsewhere."
    )


class StepReporter:
    """Progress on stderr for steps that can take over a second: a line when a step starts and ends."""

    def __init__(self, enabled: bool = True, stream=sys.stderr):
        self.enabled = enabled
        self.stream = stream

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


def export_voice(
    source: Path, out_dir: Path, model_name: str, dtype: str = "float32", reporter: StepReporter | None = None
) -> ExportResult:
    reporter = reporter or StepReporter(enabled=False)
    if dtype not in ("float32", "float16"):
        raise RvcIosError(f"--dtype must be float32 or float16, not {dtype!r}.")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # hashlib releases the GIL for the whole file: the source is checksummed on another core while the
        # main thread unpickles it.
        source_sha_future = pool.submit(sha256_file, source)
        with reporter.step(f"loading {source.name}"):
            checkpoint = load_voice(source)
        plan = plan_conversion(checkpoint.state_dict, VOICE_RULES)
        source_sha = source_sha_future.result()
    layouts = {item.key: item.layout.layout for item in plan.tensors}

    def manifest_for(rows: list[dict], weights_file: str) -> dict:
        return manifest_io.voice_manifest(
            model_name=model_name,
            source_file=source.name,
            source_sha256=source_sha,
            flavor=checkpoint.flavor,
            rvc_version=checkpoint.version,
            f0=checkpoint.f0,
            config=checkpoint.config,
            raw_config=checkpoint.raw_config,
            speaker_count=checkpoint.speaker_count,
            feature_dim=checkpoint.feature_dim,
            dtype=dtype,
            weights_file=weights_file,
            tensors=[{**row, "layout": layouts[row["key"]]} for row in rows],
            dropped=[{"key": d.source_key, "why": d.why} for d in plan.dropped],
        )

    def fill(put: Callable[[str, np.ndarray], None]) -> None:
        # One thread per core, each with a single-threaded torch (torch's own idle workers would spin on
        # the cores the other threads need): fold, layout copy and checksum, tensor by tensor.
        with torch_threads(1):
            run_conversion(plan, dtype, put, workers=os.cpu_count() or 2)

    specs = {item.key: (np.dtype(dtype), item.shape) for item in plan.tensors}
    weights_file = Path(out_dir) / f"{model_name}.safetensors"
    with reporter.step(f"folding weight norm, converting to channels-last, writing {weights_file}"):
        weights_path, manifest_path = write_weights_and_manifest(Path(out_dir), model_name, specs, fill, manifest_for)
    return ExportResult(weights_path, manifest_path, len(plan.tensors), len(plan.dropped))
