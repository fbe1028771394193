"""Print the README's bug-catalogue table: each plausible porting mistake, made in the MLX reference by the
catalogue tests, with the stage the golden diff names as first divergent, the SNR there and the signatures
it recognised.

Runs the two catalogue test files with logging on (`tests/catalogue_log.py`); a failing test fails the script.

    python scripts/bug_catalogue_table.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CATALOGUES = {"tests/test_bug_catalogue.py": "", "tests/test_rmvpe_mutations.py": "RMVPE: ",
              "tests/test_index_mutations.py": "Index: ", "tests/test_hubert_mutations.py": "HuBERT: ",
              "tests/test_coreml_mutations.py": "Core ML: ", "tests/test_pipeline_mutations.py": "Pipeline: "}


def mistake(test_id: str) -> str:
    """`tests/test_x.py::test_flip_after_the_coupling_layer_diverges_at_...` -> "flip after the coupling layer"."""
    file, _, name = test_id.partition("::")
    name = name.split("[")[0].removeprefix("test_")
    for verb in ("_diverges_", "_diverge_", "_are_named_", "_is_named_"):
        name = name.split(verb)[0]
    return CATALOGUES.get(file, "") + name.replace("_", " ")


def snr_cell(entry: dict) -> str:
    if entry.get("shapes_differ") and entry.get("snr_db") is None:
        return "shapes differ"
    return "-" if entry.get("snr_db") is None else f"{entry['snr_db']:.1f} dB"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "catalogue.jsonl"
        env = {**os.environ, "RVC_IOS_CATALOGUE_LOG": str(log)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CATALOGUES]
        run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
            print("the catalogue tests failed; no table", file=sys.stderr)
            return 1
        entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    # One row per test: its last diff that found a divergence (the reference-passes tests have none).
    rows: dict[str, dict] = {}
    for entry in entries:
        if entry["stage"] is not None:
            rows[entry["test"]] = entry
    print("| mutation of the reference | first divergent stage named | SNR there | signatures recognised |")
    print("|---|---|---|---|")
    for test_id, entry in rows.items():
        signatures = ", ".join(kind.replace("_", " ") for kind in entry["signatures"]) or "-"
        print(f"| {mistake(test_id)} | `{entry['stage']}` | {snr_cell(entry)} | {signatures} |")
    print(f"\n{len(rows)} mutations, each named at its own stage (`python scripts/bug_catalogue_table.py`).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
