"""`rvc-ios golden diff`: compare a candidate with a golden set, print the table, write the report and plots."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from .diff import (
    EXIT_BAD_INPUT, EXIT_DIVERGENCE, EXIT_PASS, compare_golden, load_candidate, render_report_table, write_report_json,
)
from .errors import RvcIosError
from .golden import read_golden


def run_diff_command(
    golden_dir: Path,
    candidate_path: Path,
    json_out: Path | None = None,
    plot_dir: Path | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """`rvc-ios golden diff`: print the table; 0 all pass, 1 a stage diverges, 2 bad input."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        golden = read_golden(golden_dir)
        candidate = load_candidate(candidate_path)
        report = compare_golden(
            golden, candidate.tensors, candidate.layouts,
            candidate_path=str(candidate_path), candidate_metadata=candidate.metadata,
        )
    except RvcIosError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_BAD_INPUT
    print(render_report_table(report), file=stdout)
    try:
        if json_out is not None:
            write_report_json(report, json_out)
            print(f"report: {json_out}", file=stdout)
        if plot_dir is not None and not report.passed:
            from .plots import plot_failing_stages  # matplotlib only when plots are asked for

            for path in plot_failing_stages(report, golden, candidate.tensors, candidate.layouts, plot_dir):
                print(f"plot: {path}", file=stdout)
    except OSError as exc:
        print(f"error: cannot write the report or plots ({exc}); choose a writable path.", file=stderr)
        return EXIT_BAD_INPUT
    return EXIT_PASS if report.passed else EXIT_DIVERGENCE
