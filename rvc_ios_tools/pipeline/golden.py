"""`rvc-ios convert --golden DIR`: every stage of one conversion written as a golden set of kind `pipeline`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import __version__
from ..core.golden import GoldenSet, write_golden
from .stages import pipeline_stage_table


def pipeline_config(stages: Mapping[str, Any]) -> dict[str, Any]:
    """What the stage table of this run depends on: its segment count, f0 and index."""
    segments = 1 + int(np.asarray(stages["split_points"]).size)
    return {"segments": segments, "f0": "f0" in stages, "index": "segment.0.blended" in stages}


def write_pipeline_golden(out_dir: Path, stages: Mapping[str, Any], *, model_name: str, source_sha256: str,
                          options: Any, extra: Mapping[str, Any] | None = None) -> GoldenSet:
    config = pipeline_config(stages)
    table = pipeline_stage_table(config)
    tensors = {spec.name: stages[spec.name] for spec in table.tensors}
    return write_golden(
        Path(out_dir), "pipeline", tensors, table, model_name=model_name, manifest_sha256=source_sha256,
        seed=int(options.seed), tool_version=__version__,
        extra={
            **config,
            "options": {key: value for key, value in dataclasses.asdict(options).items() if key != "windowing"},
            # Upstream's CPU configuration (rvc 0.3.5 `Config` with is_half False).
            "windowing": dataclasses.asdict(options.windowing),
            "output_rate": int(stages["output_rate"]),
            "noise_sources": dict(stages["noise_sources"]),
            **dict(extra or {}),
        },
    )
