"""Stage tables: the pipeline a golden set records, stage by stage, for each kind of model.

A stage table is the one place that says, for one kind of model, which tensors are inputs or noise, which
stage produces every other tensor from which inputs, each tensor's layout (upstream's axis order), and how
close a port must come (`min_snr_db`). The golden writer, the index, the diff and the plots all read it;
nothing else names stages.

Each network builds its own table from its config (`voice.stages.voice_stage_table`,
`rmvpe.reference.rmvpe_stage_table`) with `StageTableBuilder`; `rvc_ios_tools.kinds` maps kind names to them.

Layout letters name axes: B batch, C channels, T time (frames or samples), H/W image axes. The diff relies on
`T` and `C` to look for time shifts and reversed channel order.
"""

from __future__ import annotations

import dataclasses
import math

from .errors import RvcIosError

ROLES = ("input", "noise", "intermediate", "output")

class StageTableError(RvcIosError):
    """A stage table or golden index whose stages and tensors do not form a pipeline."""


class ModelConfigError(RvcIosError):
    """A config that lacks what a stage table or input synthesis needs."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a golden set. `stage` is the stage producing it (None for inputs and noise)."""

    name: str
    role: str
    layout: str
    stage: str | None = None
    dtype: str = "float32"


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    min_snr_db: float
    # Integer outputs must be equal, unless the stage allows this much difference (the pipeline's int16: a float
    # rounding that crosses a truncation boundary moves a sample by 1 LSB).
    max_integer_difference: int = 0


@dataclasses.dataclass(frozen=True)
class StageTable:
    """Stages in pipeline order (every stage's inputs come from inputs, noise, or earlier stages)."""

    kind: str
    stages: tuple[Stage, ...]
    tensors: tuple[TensorSpec, ...]

    def __post_init__(self) -> None:
        check_stage_table(self)

    @property
    def tensor_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.tensors)

    def tensor(self, name: str) -> TensorSpec:
        for spec in self.tensors:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def upstream_tensors(self, stage_name: str) -> set[str]:
        """Every tensor feeding `stage_name`, directly or through earlier stages (inputs and noise included)."""
        seen: set[str] = set()
        pending = list(self.stage(stage_name).inputs)
        while pending:
            name = pending.pop()
            if name not in seen:
                seen.add(name)
                producer = self.tensor(name).stage
                if producer is not None:
                    pending.extend(self.stage(producer).inputs)
        return seen


def is_layout(layout: str) -> bool:
    """One distinct capital letter per axis, e.g. BCT."""
    return layout.isalpha() and layout.isupper() and len(set(layout)) == len(layout)


def check_stage_table(table: StageTable) -> None:
    """Raise StageTableError unless the table is a pipeline: unique names, roles, layouts, producers in order."""
    problems: list[str] = []
    names = [spec.name for spec in table.tensors]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f"tensor names listed twice: {', '.join(duplicates)}")
    stage_names = [stage.name for stage in table.stages]
    if len(set(stage_names)) != len(stage_names):
        problems.append("stage names listed twice")
    specs = {spec.name: spec for spec in table.tensors}
    for spec in table.tensors:
        if spec.role not in ROLES:
            problems.append(f"tensor `{spec.name}` has role `{spec.role}`, not one of {', '.join(ROLES)}")
        if not is_layout(spec.layout):
            problems.append(f"tensor `{spec.name}` has layout `{spec.layout}`; use distinct axis letters like BCT")
        produced = spec.role in ("intermediate", "output")
        if produced and spec.stage is None:
            problems.append(f"{spec.role} tensor `{spec.name}` names no producing stage")
        if not produced and spec.stage is not None:
            problems.append(f"{spec.role} tensor `{spec.name}` must not name a producing stage")
    available = {spec.name for spec in table.tensors if spec.role in ("input", "noise")}
    for stage in table.stages:
        for name in stage.inputs:
            if name not in specs:
                problems.append(f"stage `{stage.name}` reads `{name}`, which is not a listed tensor")
            elif name not in available:
                problems.append(f"stage `{stage.name}` reads `{name}` before any earlier stage produces it")
        for name in stage.outputs:
            if name not in specs:
                problems.append(f"stage `{stage.name}` writes `{name}`, which is not a listed tensor")
            elif specs[name].stage != stage.name:
                problems.append(f"stage `{stage.name}` writes `{name}`, but that tensor names `{specs[name].stage}`")
        if not stage.outputs:
            problems.append(f"stage `{stage.name}` has no outputs")
        if not (isinstance(stage.min_snr_db, (int, float)) and math.isfinite(stage.min_snr_db)):
            problems.append(f"stage `{stage.name}` has min_snr_db {stage.min_snr_db!r}; use a finite number of dB")
        available.update(stage.outputs)
    for spec in table.tensors:
        if spec.stage is not None and spec.stage not in stage_names:
            problems.append(f"tensor `{spec.name}` names stage `{spec.stage}`, which is not in the table")
        elif spec.stage is not None and spec.name not in table.stage(spec.stage).outputs:
            problems.append(f"tensor `{spec.name}` names stage `{spec.stage}`, which does not list it as an output")
    if problems:
        raise StageTableError(f"The {table.kind!r} stage table is inconsistent: " + "; ".join(problems) + ".")


class StageTableBuilder:
    """Collects stages in pipeline order; each stage's outputs become tensors it produces."""

    def __init__(self, kind: str, min_snr_db: float, inputs: list[TensorSpec]) -> None:
        self.kind = kind
        self.min_snr_db = float(min_snr_db)
        self.tensors = list(inputs)
        self.stages: list[Stage] = []

    def add(
        self, name: str, inputs: list[str], outputs: list[tuple[str, str]], *, role: str = "intermediate",
        min_snr_db: float | None = None, max_integer_difference: int = 0,
    ) -> tuple[str, ...]:
        """Append stage `name` reading `inputs` and writing `outputs` as (tensor name, layout); return their names."""
        names = tuple(output for output, _ in outputs)
        tolerance = self.min_snr_db if min_snr_db is None else float(min_snr_db)
        self.stages.append(Stage(name, tuple(inputs), names, tolerance, int(max_integer_difference)))
        self.tensors.extend(TensorSpec(output, role, layout, name) for output, layout in outputs)
        return names

    def build(self) -> StageTable:
        return StageTable(self.kind, tuple(self.stages), tuple(self.tensors))
