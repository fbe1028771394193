"""One PNG per failing stage: golden and candidate overlaid where they differ most, and the difference.

Drawn with matplotlib's object API on the Agg canvas, so no display and no global pyplot state is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .diff import INPUTS_STAGE, ParityReport, align_layout
from .golden import GoldenSet

# The overlay shows this many steps of the time axis around the largest error.
WINDOW = 2000


def plot_failing_stages(
    report: ParityReport,
    golden: GoldenSet,
    candidate: dict[str, np.ndarray],
    layouts: dict[str, str],
    out_dir: Path,
) -> list[Path]:
    """Write `<NN>_<stage>.png` into `out_dir` for each failing stage; return the paths.

    NN is the stage's place in the pipeline, counting from 01 (00 is the inputs pseudo-stage).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    positions = {stage.name: number for number, stage in enumerate(golden.stage_table.stages, start=1)}
    positions[INPUTS_STAGE] = 0
    written = []
    for stage in report.stages:
        failing = [c for c in stage.tensors if not c.passed]
        if not failing:
            continue
        figure = Figure(figsize=(15, 3.2 * len(failing)), layout="constrained")
        axes = figure.subplots(len(failing), 3, squeeze=False)
        for row, comparison in zip(axes, failing):
            aligned = align_layout(comparison.name, np.asarray(candidate[comparison.name]),
                                   comparison.candidate_layout, comparison.golden_layout)
            _plot_tensor(row, comparison.name, golden.tensors[comparison.name], aligned, comparison.golden_layout)
        verdict = "follows from " + ", ".join(stage.follows_from) if stage.follows_from else "divergent"
        figure.suptitle(f"{report.model_name}: stage {stage.name} ({verdict})")
        path = out_dir / f"{positions[stage.name]:02d}_{stage.name}.png"
        FigureCanvasAgg(figure).print_png(str(path))
        written.append(path)
    return written


def as_rows(array: np.ndarray, layout: str) -> tuple[np.ndarray, str]:
    """Batch item 0 as (rows, time): the T axis (or the last) along columns, the other axes flattened into
    rows; also the letters of those row axes (e.g. "C"), for labels."""
    array = np.asarray(array, dtype=np.float64)
    if "B" in layout:
        array = np.take(array, 0, axis=layout.index("B"))
        layout = layout.replace("B", "")
    if array.ndim == 0:
        return array.reshape(1, 1), "row"
    time_axis = layout.index("T") if "T" in layout else array.ndim - 1
    row_axes = layout[:time_axis] + layout[time_axis + 1:]
    return np.moveaxis(array, time_axis, -1).reshape(-1, array.shape[time_axis]), row_axes or "row"


def _plot_tensor(axes, name: str, reference: np.ndarray, candidate: np.ndarray, layout: str) -> None:
    overlay, difference, heatmap = axes
    golden_rows, row_label = as_rows(reference, layout)
    candidate_rows, _ = as_rows(candidate, layout)
    if golden_rows.shape != candidate_rows.shape:
        overlay.plot(golden_rows[0], label="golden", linewidth=0.8)
        overlay.plot(candidate_rows[0], label="candidate", linewidth=0.8, alpha=0.8)
        overlay.set_title(f"{name}: first row of each (shapes differ)")
        overlay.legend(loc="upper right")
        for unused in (difference, heatmap):
            unused.set_axis_off()
        difference.text(0.0, 0.5, f"golden {tuple(reference.shape)}\ncandidate {tuple(candidate.shape)}",
                        transform=difference.transAxes)
        return

    error = candidate_rows - golden_rows
    magnitude = np.where(np.isfinite(error), np.abs(error), np.inf)
    worst_row, worst_step = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    length = golden_rows.shape[1]
    start = max(0, min(int(worst_step) - WINDOW // 2, length - WINDOW))
    steps = np.arange(start, min(start + WINDOW, length))

    overlay.plot(steps, golden_rows[worst_row, steps], label="golden", linewidth=0.8)
    overlay.plot(steps, candidate_rows[worst_row, steps], label="candidate", linewidth=0.8, alpha=0.8)
    overlay.set_title(f"{name}: {row_label} {worst_row} (largest error)")
    overlay.set_xlabel("T" if "T" in layout else "last axis")
    overlay.legend(loc="upper right")

    difference.plot(steps, error[worst_row, steps], color="tab:red", linewidth=0.8)
    difference.set_title(f"{name}: candidate - golden, {row_label} {worst_row}")
    difference.set_xlabel("T" if "T" in layout else "last axis")

    shown = np.where(np.isfinite(error), np.abs(error), np.nan)
    finite = shown[np.isfinite(shown)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    image = heatmap.imshow(shown, aspect="auto", interpolation="nearest", cmap="magma", vmin=0, vmax=top)
    blanks = " (blank = NaN/Inf)" if finite.size < shown.size else ""
    heatmap.set_title(f"{name}: |difference|, every {row_label}{blanks}")
    heatmap.set_ylabel(row_label)
    heatmap.figure.colorbar(image, ax=heatmap)
