"""The content encoder's stage table: audio -> conv front end -> projection -> positional conv -> layers ->
features, in upstream's layouts (the front end channels-first as fairseq and transformers keep it)."""

from __future__ import annotations

from typing import Any

from ..core.stages import StageTable, StageTableBuilder, TensorSpec
from .convert import ARCHITECTURE, check_architecture

# Some content-encoder port bugs (LayerNorm eps 1e-12, tanh GELU, an unbiased GroupNorm variance) sit at 70 to
# 95 dB against the original, so every stage is held to 100 dB, not the synthesizer's 80.
HUBERT_MIN_SNR_DB = 100.0

# How RVC and Applio read v1 (256-d) features: RVC's pipeline takes final_proj(layer 9) (fairseq
# `output_layer=9`); Applio's takes final_proj(last_hidden_state), i.e. layer 12.
V1_CONVENTIONS = ("rvc", "applio")


def architecture_of(config_like: Any) -> dict[str, Any]:
    """The architecture block of a model, a manifest, an architecture dict, or HuBERT-base's (None)."""
    if hasattr(config_like, "architecture"):
        return check_architecture(config_like.architecture)
    if config_like is None:
        return dict(ARCHITECTURE)
    block = config_like["hubert"]["architecture"] if "hubert" in config_like else config_like
    return check_architecture(block)


def v1_layer_for(architecture: dict[str, Any], v1_convention: str = "rvc") -> int:
    if v1_convention not in V1_CONVENTIONS:
        raise ValueError(f"v1_convention must be one of {', '.join(V1_CONVENTIONS)}, not {v1_convention!r}")
    return architecture["v1_layer"] if v1_convention == "rvc" else architecture["num_layers"]


def hubert_stage_table(config_like: Any = None, *, v1_convention: str = "rvc",
                       min_snr_db: float = HUBERT_MIN_SNR_DB) -> StageTable:
    """audio -> conv_0 .. conv_6 -> features -> projected -> pos_conv -> layer_0 .. layer_12 -> v1, v2.

    `layer_k` is transformers' `hidden_states[k]` (fairseq `output_layer=k`; `layer_0` is the encoder input,
    LN(x + pos_conv(x))); `v2` is the last layer (RVC v2 features); `v1` is final_proj(layer 9), or of the last
    layer with `v1_convention="applio"`, present only when the model has a final_proj.
    """
    a = architecture_of(config_like)
    table = StageTableBuilder("hubert", min_snr_db, [TensorSpec("audio", "input", "BT")])
    previous = "audio"
    for i in range(len(a["conv_layers"])):
        (previous,) = table.add(f"conv_{i}", [previous], [(f"conv_{i}", "BCT")])
    table.add("features", [previous], [("features", "BTC")])
    table.add("projected", ["features"], [("projected", "BTC")])
    table.add("pos_conv", ["projected"], [("pos_conv", "BTC")])
    table.add("layer_0", ["projected", "pos_conv"], [("layer_0", "BTC")])
    for n in range(1, a["num_layers"] + 1):
        table.add(f"layer_{n}", [f"layer_{n - 1}"], [(f"layer_{n}", "BTC")])
    if a["final_proj_dim"] is not None:
        table.add("v1", [f"layer_{v1_layer_for(a, v1_convention)}"], [("v1", "BTC")], role="output")
    table.add("v2", [f"layer_{a['num_layers']}"], [("v2", "BTC")], role="output")
    return table.build()
