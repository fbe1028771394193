"""The retrieval's stage table: content features -> probed lists -> 8 neighbours -> weights -> retrieved -> blended.

Layouts (upstream's, with the batch axis `feats` has in `Pipeline.vc`): B batch (1), T frames at 50 fps, C
feature channels, P probed lists (nprobe), K neighbours (8). List numbers and ids are int64 as faiss returns
them, and the diff holds integer tensors to exact equality.
"""

from __future__ import annotations

from typing import Any

from ..core.stages import Stage, StageTable, TensorSpec

INDEX_MIN_SNR_DB = 80.0


def index_stage_table(config_like: Any = None, *, min_snr_db: float = INDEX_MIN_SNR_DB) -> StageTable:
    """The same table for every index (sizes live in the tensors' shapes); `config_like` is accepted for the
    kind -> table map's signature and not read."""
    tensors = [TensorSpec("feats", "input", "BTC")]
    stages: list[Stage] = []

    def add_stage(name: str, inputs: list[str], outputs: list[tuple[str, str, str]], role: str = "intermediate") -> None:
        stages.append(Stage(name, tuple(inputs), tuple(out for out, _, _ in outputs), float(min_snr_db)))
        tensors.extend(TensorSpec(out, role, layout, name, dtype) for out, layout, dtype in outputs)

    add_stage("coarse", ["feats"], [("coarse.lists", "BTP", "int64")])
    add_stage("search", ["feats", "coarse.lists"], [("search.ids", "BTK", "int64"), ("search.scores", "BTK", "float32")])
    add_stage("weights", ["search.scores"], [("weights", "BTK", "float32")])
    add_stage("retrieved", ["search.ids", "weights"], [("retrieved", "BTC", "float32")])
    add_stage("blend", ["retrieved", "feats"], [("blended", "BTC", "float32")], role="output")
    return StageTable("index", tuple(stages), tuple(tensors))
