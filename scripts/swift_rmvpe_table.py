"""Print the README's RMVPE Swift-vs-MLX table: the Swift port run on the committed tiny RMVPE golden sets
(reflect and constant frame padding), chained and teacher-forced, each diffed against the golden set.

Builds `RVCNativeMac` (release) in Demos/ first. Cells are SNR in dB per golden tensor (inf: bit-identical).

    python scripts/swift_rmvpe_table.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rvc_ios_tools.diff import compare_golden, load_candidate
from rvc_ios_tools.export import StepReporter
from rvc_ios_tools.golden import read_golden
from rvc_ios_tools.parity import build_swift, run_swift
from rvc_ios_tools.rmvpe_inference import f0_agreement

REPO = Path(__file__).resolve().parent.parent
PADS = ("reflect", "constant")
MODES = ("chained", "teacher-forced")


def main() -> int:
    reporter = StepReporter(enabled=True)
    binary = build_swift(REPO / "Demos", reporter)
    columns: dict[tuple[str, str], dict[str, str]] = {}
    f0_lines = []
    names: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for pad in PADS:
            golden_dir = REPO / "golden" / f"tiny-rmvpe-{pad}"
            golden = read_golden(golden_dir)
            for mode in MODES:
                out = Path(tmp) / f"{pad}-{mode}.safetensors"
                run_swift(binary, REPO / "swift_fixtures", "tiny-rmvpe", golden_dir, out, mode, reporter)
                candidate = load_candidate(out)
                report = compare_golden(golden, candidate.tensors, candidate.layouts, candidate_path=str(out))
                if not report.passed:
                    print(f"{pad} {mode}: stage {report.first_divergent_stage} fails", file=sys.stderr)
                    return 1
                cells = {}
                for stage in report.stages:
                    for tensor in stage.tensors:
                        if tensor.snr_db is not None:
                            cells[tensor.name] = "inf" if tensor.snr_db == float("inf") else f"{tensor.snr_db:.1f}"
                            if tensor.name not in names:
                                names.append(tensor.name)
                columns[(pad, mode)] = cells
                agreement = f0_agreement(golden.tensors["f0"], candidate.tensors["f0"], golden.tensors["salience"])
                f0_lines.append(f"f0 ({pad}, {mode}): {agreement.summary()}.")
    header = " | ".join(f"{pad}, {mode}" for pad in PADS for mode in MODES)
    print(f"| tensor | {header} |")
    print("|---" * (1 + len(PADS) * len(MODES)) + "|")
    for name in names:
        if name == "audio":
            continue  # the input itself
        row = " | ".join(columns[(pad, mode)].get(name, "-") for pad in PADS for mode in MODES)
        print(f"| `{name}` | {row} |")
    print()
    for line in f0_lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
