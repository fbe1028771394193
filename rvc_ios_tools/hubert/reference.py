"""The content encoder with the MLX reference: raw 16 kHz audio -> RVC's v1 / v2 features, every stage on request.

As RVC's pipeline feeds fairseq (`Pipeline.vc`): the waveform is not normalised, no padding mask is passed, v2
features are layer 12 and v1 features final_proj(layer 9) (`V1_CONVENTIONS` offers Applio's final_proj(layer 12)).
"""

from __future__ import annotations

from ..core import blas  # noqa: F401  (loads OpenBLAS before mlx binds its BLAS)

from pathlib import Path
from typing import Any, Mapping

import mlx.core as mx
import numpy as np

from ..core.errors import RvcIosError
from ..core.layers import load_weights_strictly
from .convert import ARCHITECTURE, SAMPLE_RATE, check_architecture, frame_count
from .model import HubertModel
from .stages import hubert_stage_table, v1_layer_for


class AudioTooShortError(RvcIosError):
    """Audio shorter than the front end's receptive field (400 samples for HuBERT-base): no frame at all."""


class NoFinalProjError(RvcIosError):
    """v1 features asked of an encoder whose file has no final_proj."""


def pipeline_config(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """What the Swift port needs beyond the weights, as the manifest records it."""
    a = architecture
    receptive_field, hop = 1, 1
    for _, kernel, stride in a["conv_layers"]:
        receptive_field += (kernel - 1) * hop
        hop *= stride
    return {
        "sample_rate": SAMPLE_RATE,
        "input_normalization": "none",
        "frames": f"(samples - {receptive_field}) // {hop} + 1",
        "receptive_field": receptive_field,
        "hop_length": hop,
        "activation": "gelu_erf",
        "conv_0_norm": "group_norm_over_time",
        "transformer_norm": "post_ln",
        "pos_conv_drop": "last_frame",
        "attention_scaling": (a["hidden_size"] // a["num_heads"]) ** -0.5,
        "feature_layers": {"v2": a["num_layers"], "v1": a["v1_layer"], "v1_applio": a["num_layers"]},
    }


def build_hubert(weights: Mapping[str, np.ndarray], architecture: Mapping[str, Any] | None = None) -> HubertModel:
    """An inference HubertModel of `architecture` (a manifest's `hubert.architecture`; default HuBERT-base)
    holding exported weights, computing in float32; every key used, none missing, every shape equal."""
    model = HubertModel(check_architecture(architecture or ARCHITECTURE))
    load_weights_strictly(model, weights)
    return model.eval()


def load_hubert_export(assets_dir: Path, model_name: str) -> HubertModel:
    """The MLX reference from `rvc-ios export --hubert` output (manifest and weights checked against each other)."""
    from ..core.manifest import load_exported

    manifest, weights = load_exported(assets_dir, model_name, kind="hubert")
    return build_hubert(weights, manifest["hubert"]["architecture"])


def audio_batch(audio: np.ndarray, architecture: Mapping[str, Any]) -> np.ndarray:
    """(N,) or (B, N) float audio -> (B, N) float32; AudioTooShortError when no frame fits."""
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    if frame_count(audio.shape[-1], architecture) < 1:
        needed = pipeline_config(architecture)["receptive_field"]
        raise AudioTooShortError(
            f"The content encoder needs at least {needed} samples of 16 kHz audio ({needed / SAMPLE_RATE * 1000:.0f} ms) "
            f"for one frame; got {audio.shape[-1]}. Pass longer audio."
        )
    return audio


def extract_features(model: HubertModel, audio: np.ndarray, version: str = "v2", v1_convention: str = "rvc") -> np.ndarray:
    """RVC's content features: (N,) or (B, N) audio -> (B, T, 768) for v2, (B, T, 256) for v1."""
    audio = audio_batch(audio, model.architecture)
    if version == "v2":
        return np.array(model(mx.array(audio)))
    if version != "v1":
        raise RvcIosError(f"version must be v1 or v2, not {version!r}.")
    if not model.has_final_proj:
        raise NoFinalProjError("This content encoder has no final_proj, so it gives v2 (768-d) features only.")
    hidden = model(mx.array(audio), output_layer=v1_layer_for(model.architecture, v1_convention))
    return np.array(model.final_proj(hidden))


def _bct(x: mx.array) -> np.ndarray:
    return np.array(x.transpose(0, 2, 1))


def hubert_golden_tensors(model: HubertModel, audio: np.ndarray, v1_convention: str = "rvc") -> dict[str, np.ndarray]:
    """Every tensor of `hubert_stage_table(model)` for one run, float32, in upstream's shapes and layouts."""
    a = model.architecture
    audio = audio_batch(audio, a)
    out: dict[str, np.ndarray] = {"audio": audio}
    x = mx.array(audio)[..., None]
    for i in range(len(a["conv_layers"])):
        x = model.feature_extractor.layer(i, x)
        out[f"conv_{i}"] = _bct(x)
    x = model.feature_projection.layer_norm(x)
    out["features"] = np.array(x)
    x = model.feature_projection.projection(x)
    out["projected"] = np.array(x)
    positional = model.encoder.pos_conv(x)
    out["pos_conv"] = np.array(positional)
    x = model.encoder.layer_norm(x + positional)
    out["layer_0"] = np.array(x)
    hidden = {0: x}
    for n in range(a["num_layers"]):
        x = model.encoder.layer(n)(x)
        hidden[n + 1] = x
        out[f"layer_{n + 1}"] = np.array(x)
    if model.has_final_proj:
        out["v1"] = np.array(model.final_proj(hidden[v1_layer_for(a, v1_convention)]))
    out["v2"] = out[f"layer_{a['num_layers']}"].copy()
    return out


def write_hubert_golden(
    out_dir: Path,
    model: HubertModel,
    audio: np.ndarray,
    *,
    model_name: str,
    manifest_sha256: str,
    seed: int,
    v1_convention: str = "rvc",
    audio_source: str = "test signal",
):
    """Run the reference on `audio` and write the golden set (`golden.write_golden`, kind "hubert")."""
    from .. import __version__
    from ..core.golden import write_golden

    tensors = hubert_golden_tensors(model, audio, v1_convention)
    a = model.architecture
    return write_golden(
        Path(out_dir), "hubert", tensors, hubert_stage_table(model, v1_convention=v1_convention),
        model_name=model_name, manifest_sha256=manifest_sha256, seed=seed, tool_version=__version__,
        extra={"samples": int(tensors["audio"].shape[-1]), "sample_rate": SAMPLE_RATE,
               "frames": int(tensors["v2"].shape[1]), "v1_convention": v1_convention,
               "v1_layer": v1_layer_for(a, v1_convention) if model.has_final_proj else None,
               "audio_source": audio_source},
    )
