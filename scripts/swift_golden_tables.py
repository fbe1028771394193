"""Print the README's tables of the Swift port on the committed golden sets: the lowest SNR of every set
(`golden/*`: voices, RMVPE, retrieval, the content encoder and whole conversions) and the tensor that has it,
chained and teacher-forced, then RMVPE tensor by tensor (reflect and constant frame padding) with its f0
agreement.

Builds `RVCNativeMac` (release) in Demos/ first, runs it on each golden set in both modes and diffs the result
against the set. Cells are SNR in dB (inf: bit-identical).

    python scripts/swift_golden_tables.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from rvc_ios_tools.core.diff import compare_golden, load_candidate
from rvc_ios_tools.core.export import StepReporter
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.voice.parity import build_swift, run_swift
from rvc_ios_tools.core.pitch_track import f0_agreement

REPO = Path(__file__).resolve().parent.parent
MODES = ("chained", "teacher-forced")
RMVPE_SETS = ("tiny-rmvpe-reflect", "tiny-rmvpe-constant")


def snr_cell(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.1f}"


def pipeline_args(index: dict) -> list[str]:
    """A pipeline set (`rvc-ios convert --golden`) names the other exports its conversion read; `run` needs them."""
    if index["kind"] != "pipeline":
        return []
    extra = index["extra"]
    names = ["--hubert", extra["hubert"], "--rmvpe", extra["rmvpe"]]
    return names + (["--index", extra["index_name"]] if extra.get("index") else [])


def main() -> int:
    reporter = StepReporter(enabled=True)
    binary = build_swift(REPO / "Demos", reporter)
    sets = sorted(path for path in (REPO / "golden").iterdir() if (path / "index.json").is_file())
    snrs: dict[tuple[str, str], dict[str, float]] = {}
    f0_lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for golden_dir in sets:
            index = json.loads((golden_dir / "index.json").read_text())
            golden = read_golden(golden_dir)
            for mode in MODES:
                out = Path(tmp) / f"{golden_dir.name}-{mode}.safetensors"
                run_swift(binary, REPO / "swift_fixtures", index["model_name"], golden_dir, out, mode, reporter,
                          pipeline_args(index))
                candidate = load_candidate(out)
                report = compare_golden(golden, candidate.tensors, candidate.layouts, candidate_path=str(out))
                if not report.passed:
                    print(f"{golden_dir.name} {mode}: stage {report.first_divergent_stage} fails", file=sys.stderr)
                    return 1
                # Inputs are copied, not computed (inf): they cannot lower a minimum.
                snrs[(golden_dir.name, mode)] = {
                    tensor.name: tensor.snr_db
                    for stage in report.stages for tensor in stage.tensors if tensor.snr_db is not None
                }
                if golden_dir.name in RMVPE_SETS:
                    agreement = f0_agreement(golden.tensors["f0"], candidate.tensors["f0"], golden.tensors["salience"])
                    f0_lines.append(f"f0 ({golden_dir.name}, {mode}): {agreement.summary()}.")

    print("| golden set | lowest SNR, chained | lowest SNR, teacher-forced |")
    print("|---|---|---|")
    for golden_dir in sets:
        cells = []
        for mode in MODES:
            by_tensor = snrs[(golden_dir.name, mode)]
            lowest = min(by_tensor, key=by_tensor.get)
            value = by_tensor[lowest]
            cells.append(snr_cell(value) + ("" if value == float("inf") else f" (`{lowest}`)"))
        print(f"| `{golden_dir.name}` | {cells[0]} | {cells[1]} |")
    print()
    columns = [(name, mode) for name in RMVPE_SETS for mode in MODES]
    print("| tensor | " + " | ".join(f"{name.removeprefix('tiny-rmvpe-')}, {mode}" for name, mode in columns) + " |")
    print("|---" * (1 + len(columns)) + "|")
    names = [name for name in snrs[columns[0]] if name != "audio"]  # the input itself
    for name in names:
        row = " | ".join(snr_cell(snrs[column][name]) if name in snrs[column] else "-" for column in columns)
        print(f"| `{name}` | {row} |")
    print()
    for line in f0_lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
