"""Per-tensor parity figures of one run against another (the MLX reference against upstream PyTorch)."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Mapping

import numpy as np

from .diff import pearson_r, snr_db


@dataclasses.dataclass(frozen=True)
class StageFigure:
    """How closely the MLX reference matches upstream on one tensor."""

    name: str
    snr_db: float
    pearson_r: float
    max_abs_error: float

    def __iter__(self) -> Iterator[Any]:  # unpacks as (name, snr, r, maxabs)
        return iter((self.name, self.snr_db, self.pearson_r, self.max_abs_error))


def compare_runs(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> list[StageFigure]:
    figures = []
    for name, ref in reference.items():
        ref64 = np.asarray(ref, dtype=np.float64)
        cand64 = np.asarray(candidate[name], dtype=np.float64)
        if ref64.shape != cand64.shape:
            raise ValueError(f"{name}: reference shape {ref64.shape}, candidate shape {cand64.shape}")
        figures.append(
            StageFigure(name, snr_db(ref64, cand64), pearson_r(ref64, cand64), float(np.max(np.abs(ref64 - cand64))))
        )
    return figures
