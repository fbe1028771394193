"""Stage tables: the pipeline a golden set records, stage by stage, for each kind of model.

A stage table is the one place that says, for one kind of model, which tensors are inputs or noise, which
stage produces every other tensor from which inputs, each tensor's layout (upstream's axis order), and how
close a port must come (`min_snr_db`). The golden writer, the index, the diff and the plots all read it;
nothing else names stages.

To add a kind (e.g. RMVPE: audio16k -> mel -> encoder -> ... -> salience -> f0), write a function that takes
the model's config and returns a `StageTable`, and add it to `STAGE_TABLE_BUILDERS` at the bottom.

Layout letters name axes: B batch, C channels, T time (frames or samples), H/W image axes. The diff relies on
`T` and `C` to look for time shifts and reversed channel order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Callable

from .checkpoint import CONFIG_FIELDS, FEATURE_DIMS, FLOW_COUNT
from .errors import RvcIosError

ROLES = ("input", "noise", "intermediate", "output")

# What RVC's synthesizer stages must reach against float32 PyTorch; see docs/formats.md.
VOICE_MIN_SNR_DB = 80.0


class StageTableError(RvcIosError):
    """A stage table or golden index whose stages and tensors do not form a pipeline."""


class UnknownModelKindError(RvcIosError):
    """A model kind with no stage table."""


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
        min_snr_db: float | None = None,
    ) -> tuple[str, ...]:
        """Append stage `name` reading `inputs` and writing `outputs` as (tensor name, layout); return their names."""
        names = tuple(output for output, _ in outputs)
        tolerance = self.min_snr_db if min_snr_db is None else float(min_snr_db)
        self.stages.append(Stage(name, tuple(inputs), names, tolerance))
        self.tensors.extend(TensorSpec(output, role, layout, name) for output, layout in outputs)
        return names

    def build(self) -> StageTable:
        return StageTable(self.kind, tuple(self.stages), tuple(self.tensors))


# --- the voice synthesizer (upstream SynthesizerTrnMs256NSFsid / 768NSFsid and their _nono variants) ---


@dataclasses.dataclass(frozen=True)
class VoiceShape:
    """What a voice golden set's tensors depend on, read from whichever config the caller has."""

    f0: bool
    feature_dim: int
    upsample_rates: tuple[int, ...]
    speaker_count: int = 1


def voice_shape(config_like: Any) -> VoiceShape:
    """Read a VoiceShape from a VoiceCheckpoint, a manifest-like dict, or a dict of upstream hyperparameters.

    Accepted: objects with `f0`, `version`/`feature_dim` and a `config` (a `checkpoint.VoiceConfig`, a dict
    of upstream names, or the 18-item upstream list); or one flat dict with `f0`, `version` or `feature_dim`,
    and `upsample_rates`.
    """
    if isinstance(config_like, VoiceShape):
        return config_like
    fields = _flatten_voice_config(config_like)
    missing = [name for name in ("f0", "upsample_rates") if name not in fields]
    if "feature_dim" not in fields and "version" not in fields:
        missing.append("version (v1/v2) or feature_dim")
    if missing:
        raise ModelConfigError(
            f"The voice config lacks {', '.join(missing)}; pass the voice's checkpoint or manifest, "
            "which carry `f0`, `version` and the upstream config."
        )
    try:
        if "feature_dim" in fields:
            feature_dim = int(fields["feature_dim"])
        else:
            feature_dim = FEATURE_DIMS[str(fields["version"])]
        return VoiceShape(
            f0=bool(fields["f0"]),
            feature_dim=feature_dim,
            upsample_rates=tuple(int(rate) for rate in fields["upsample_rates"]),
            speaker_count=int(fields.get("speaker_count", fields.get("spk_embed_dim", 1))),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelConfigError(
            f"The voice config has a value this tool cannot read ({exc!r}); version must be v1 or v2, "
            "upsample_rates a list of integers."
        ) from None


def _flatten_voice_config(config_like: Any) -> dict[str, Any]:
    """Merge top-level flags with the nested upstream config, whatever container carries them."""
    if isinstance(config_like, Mapping):
        fields = dict(config_like)
    else:
        fields = {
            name: getattr(config_like, name)
            for name in ("f0", "version", "rvc_version", "feature_dim", "speaker_count", "config")
            if hasattr(config_like, name)
        }
    if "version" not in fields and "rvc_version" in fields:
        fields["version"] = fields["rvc_version"]
    nested = fields.pop("config", None)
    if isinstance(nested, (list, tuple)) and len(nested) == len(CONFIG_FIELDS):
        nested = dict(zip(CONFIG_FIELDS, nested))
    elif nested is not None and not isinstance(nested, Mapping) and hasattr(nested, "as_dict"):
        nested = nested.as_dict()
    if isinstance(nested, Mapping):
        for name, value in nested.items():
            fields.setdefault(name, value)
    return fields


def voice_stage_table(config_like: Any, *, min_snr_db: float = VOICE_MIN_SNR_DB) -> StageTable:
    """Upstream's inference order: emb_g, enc_p, the prior sample, the flow in reverse, then the NSF decoder."""
    shape = voice_shape(config_like)
    f0 = shape.f0
    table = StageTableBuilder("voice", min_snr_db, [
        TensorSpec("phone", "input", "BTC"),
        TensorSpec("phone_lengths", "input", "B", dtype="int32"),
        *([TensorSpec("pitch", "input", "BT", dtype="int32"), TensorSpec("pitchf", "input", "BT")] if f0 else []),
        TensorSpec("sid", "input", "B", dtype="int32"),
        TensorSpec("noise.z_p", "noise", "BCT"),
        *([TensorSpec("noise.nsf", "noise", "BTC"), TensorSpec("noise.nsf_phase", "noise", "BC")] if f0 else []),
    ])
    table.add("speaker", ["sid"], [("g", "BCT")])
    table.add(
        "text_encoder",
        ["phone", "phone_lengths", *(["pitch"] if f0 else [])],
        [("enc_p.hidden", "BCT"), ("m_p", "BCT"), ("logs_p", "BCT"), ("x_mask", "BCT")],
    )
    # z_p = (m_p + exp(logs_p) * randn * 0.66666) * x_mask, with the randn draw recorded as noise.z_p.
    table.add("prior_sample", ["m_p", "logs_p", "x_mask", "noise.z_p"], [("z_p", "BCT")])
    # The flow runs in reverse: coupling layer flows[6] first (our flow_3), each after its Flip.
    previous = "z_p"
    for index in reversed(range(FLOW_COUNT)):
        previous = table.add(f"flow.flow_{index}", [previous, "x_mask", "g"], [(f"flow.flow_{index}", "BCT")])[0]
    table.add("flow", [previous, "x_mask"], [("z", "BCT")])
    if f0:
        table.add("nsf_source", ["pitchf", "noise.nsf", "noise.nsf_phase"], [("dec.source", "BTC")])
    previous = table.add("dec.conv_pre", ["z", "g"], [("dec.conv_pre", "BCT")])[0]
    for index in range(len(shape.upsample_rates)):
        name = f"dec.up_{index}"
        previous = table.add(name, [previous, *(["dec.source"] if f0 else [])], [(name, "BCT")])[0]
    table.add("audio", [previous], [("audio", "BCT")], role="output")
    return table.build()


# A kind name -> a function from that model's config to its stage table.
def _rmvpe_stage_table(config_like: Any) -> StageTable:
    from .rmvpe_inference import rmvpe_stage_table  # imports mlx: only when an RMVPE table is asked for

    return rmvpe_stage_table(config_like)


STAGE_TABLE_BUILDERS: dict[str, Callable[[Any], StageTable]] = {
    "voice": voice_stage_table,
    "rmvpe": _rmvpe_stage_table,
}


def stage_table_for(kind: str, config_like: Any) -> StageTable:
    try:
        build = STAGE_TABLE_BUILDERS[kind]
    except KeyError:
        raise UnknownModelKindError(
            f"No stage table for model kind {kind!r}; known kinds: {', '.join(sorted(STAGE_TABLE_BUILDERS))}."
        ) from None
    return build(config_like)
