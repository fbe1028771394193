"""Every kind of golden set this package writes, and the function that builds its stage table.

The composition root for stage tables: the core never imports a network, so the one map from a kind's name to
its network lives here, beside the CLI.
"""

from __future__ import annotations

from typing import Any, Callable

from .core.errors import RvcIosError
from .core.stages import StageTable
from .hubert.stages import hubert_stage_table
from .index.stages import index_stage_table
from .pipeline.stages import pipeline_stage_table
from .rmvpe.stages import rmvpe_stage_table
from .voice.stages import voice_stage_table


class UnknownModelKindError(RvcIosError):
    """A model kind with no stage table."""


# A kind name -> a function from that model's config to its stage table.
STAGE_TABLE_BUILDERS: dict[str, Callable[[Any], StageTable]] = {
    "voice": voice_stage_table,
    "rmvpe": rmvpe_stage_table,
    "index": index_stage_table,
    "hubert": hubert_stage_table,
    "pipeline": pipeline_stage_table,
}


def stage_table_for(kind: str, config_like: Any) -> StageTable:
    try:
        build = STAGE_TABLE_BUILDERS[kind]
    except KeyError:
        raise UnknownModelKindError(
            f"No stage table for model kind {kind!r}; known kinds: {', '.join(sorted(STAGE_TABLE_BUILDERS))}."
        ) from None
    return build(config_like)
