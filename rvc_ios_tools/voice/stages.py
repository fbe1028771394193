"""The voice synthesizer's stage table (upstream SynthesizerTrnMs256NSFsid / 768NSFsid and their _nono
variants), and the shape facts a voice golden set depends on."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..core.stages import ModelConfigError, StageTable, StageTableBuilder, TensorSpec
from .checkpoint import CONFIG_FIELDS, FEATURE_DIMS, FLOW_COUNT

# What RVC's synthesizer stages must reach against float32 PyTorch; see docs/formats.md.
VOICE_MIN_SNR_DB = 80.0


@dataclasses.dataclass(frozen=True)
class VoiceShape:
    """What a voice golden set's tensors depend on, read from whichever config the caller has."""

    f0: bool
    feature_dim: int
    upsample_rates: tuple[int, ...]
    speaker_count: int = 1
    inter_channels: int | None = None  # the prior's channel count (noise.z_p), when the config carries it


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
            inter_channels=int(fields["inter_channels"]) if "inter_channels" in fields else None,
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


