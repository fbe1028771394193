"""Print the README's Swift-vs-MLX table from the two reports `rvc-ios parity` writes.

    rvc-ios parity --work-dir parity-out
    python scripts/swift_parity_table.py parity-out
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def tensor_rows(report_path: Path) -> dict[str, dict]:
    report = json.loads(report_path.read_text())
    return {tensor["name"]: tensor for stage in report["stages"] for tensor in stage["tensors"]}


def snr(tensor: dict) -> str:
    value = tensor["snr_db"]
    return value if isinstance(value, str) else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dir", type=Path, help="the --work-dir of a finished `rvc-ios parity` run")
    args = parser.parse_args()
    chained = tensor_rows(args.work_dir / "parity-chained.json")
    forced = tensor_rows(args.work_dir / "parity-teacher-forced.json")
    print("| stage | chained SNR dB | chained max abs | teacher-forced SNR dB | teacher-forced max abs |")
    print("|---|---|---|---|---|")
    for name, row in chained.items():
        other = forced[name]
        print(f"| `{name}` | {snr(row)} | {row['max_abs_error']:.3g} | {snr(other)} | {other['max_abs_error']:.3g} |")


if __name__ == "__main__":
    main()
