"""The bug catalogues' diffs, logged for `scripts/bug_catalogue_table.py` (the README's table).

Off unless `RVC_IOS_CATALOGUE_LOG` names a file: then every diff a catalogue test runs appends one JSON line
with the test's name, the first divergent stage, the lowest SNR among that stage's failing tensors and the
signatures the diff recognised there.
"""

from __future__ import annotations

import json
import os

LOG_ENV = "RVC_IOS_CATALOGUE_LOG"


def log_report(report):
    """Record `report` (a `ParityReport`) when logging is on; return it unchanged."""
    path = os.environ.get(LOG_ENV)
    if not path:
        return report
    stage_name = report.first_divergent_stage
    entry = {"test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0], "stage": stage_name}
    if stage_name is not None:
        stage = next(stage for stage in report.stages if stage.name == stage_name)
        failing = [tensor for tensor in stage.tensors if not tensor.passed]
        snrs = [tensor.snr_db for tensor in failing if tensor.snr_db is not None]
        entry["snr_db"] = min(snrs) if snrs else None
        entry["shapes_differ"] = any(tensor.snr_db is None for tensor in failing)
        entry["signatures"] = sorted({signature.kind for tensor in failing for signature in tensor.signatures})
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
    return report
