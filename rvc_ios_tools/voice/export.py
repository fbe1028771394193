"""`rvc-ios export` of a voice: load it, convert it by the rule table, write weights + manifest atomically."""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..core import manifest as manifest_io
from ..core.errors import RvcIosError
from ..core.export import ExportResult, StepReporter, torch_threads, write_weights_and_manifest
from ..core.files import sha256_file
from ..core.rules import plan_conversion, run_conversion
from .checkpoint import load_voice
from .convert import VOICE_RULES


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
