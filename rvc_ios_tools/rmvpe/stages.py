"""RMVPE's stage table: the audio -> f0 pipeline a golden set records, in upstream's layouts."""

from __future__ import annotations

from typing import Any

from ..core.stages import Stage, StageTable, TensorSpec
from .convert import ARCHITECTURE, check_architecture

RMVPE_MIN_SNR_DB = 80.0


def encoder_levels(config_like: Any) -> int:
    """The U-Net's depth (one skip per level) of a model, a manifest, an architecture block, or rmvpe.pt's (None)."""
    if hasattr(config_like, "unet"):  # an E2E model
        return config_like.unet.encoder.n_encoders
    if config_like is None:
        return ARCHITECTURE["en_de_layers"]
    architecture = config_like["rmvpe"]["architecture"] if "rmvpe" in config_like else config_like
    return check_architecture(architecture)["en_de_layers"]


def rmvpe_stage_table(config_like: Any = None, *, min_snr_db: float = RMVPE_MIN_SNR_DB) -> StageTable:
    """audio -> mel -> padded_mel -> encoder -> intermediate -> decoder -> cnn -> gru -> salience -> f0.

    Layouts are upstream's: `BCTF` is its NCHW image with H = time frames, W = mel bins (F). The encoder's
    skips (one per U-Net level: 5 for rmvpe.pt) feed the decoder, so they are recorded too. `gru` and
    everything before it has the padded frame count; `salience` and `f0` are cropped back to the audio's
    frames as `mel2hidden` returns them. `config_like`: see `encoder_levels`.
    """
    skips = [f"unet.encoder.skip_{i}" for i in range(encoder_levels(config_like))]
    tensors = [TensorSpec("audio", "input", "BT")]
    stages: list[Stage] = []

    def add_stage(name: str, inputs: list[str], outputs: list[tuple[str, str]], role: str = "intermediate") -> None:
        stages.append(Stage(name, tuple(inputs), tuple(out for out, _ in outputs), float(min_snr_db)))
        tensors.extend(TensorSpec(out, role, layout, name) for out, layout in outputs)

    add_stage("mel", ["audio"], [("mel", "BCT")])
    add_stage("padded_mel", ["mel"], [("padded_mel", "BCT")])
    add_stage("encoder", ["padded_mel"], [("unet.encoder", "BCTF"), *((s, "BCTF") for s in skips)])
    add_stage("intermediate", ["unet.encoder"], [("unet.intermediate", "BCTF")])
    add_stage("decoder", ["unet.intermediate", *skips], [("unet.decoder", "BCTF")])
    add_stage("cnn", ["unet.decoder"], [("cnn", "BCTF")])
    add_stage("gru", ["cnn"], [("fc.gru", "BTC")])
    add_stage("salience", ["fc.gru"], [("salience", "BTC")])
    add_stage("f0", ["salience"], [("f0", "BT")], role="output")
    return StageTable("rmvpe", tuple(stages), tuple(tensors))
