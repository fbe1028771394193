"""Run the MLX reference synthesizer stage by stage, on numpy tensors in upstream's shapes and names.

Every tensor goes in and comes out under its golden name (docs/formats.md) and in upstream's layout
(`BCT` for latents, `BTC` for the NSF source and noise): the stage table (`stages.voice_stage_table`) says
which stages exist, in which order, and each tensor's layout. `run_stage` runs one stage from whatever
tensors it is given, so the same code serves a chained run (`run_voice`: each stage fed by the previous
one) and a teacher-forced run (each stage fed from a golden set).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Callable, Mapping

import numpy as np

from ..core import blas  # noqa: F401  (before mlx)

import mlx.core as mx

from ..core.layers import load_weights_strictly
from ..core.stages import StageTable
from .flow import FLOW_COUNT
from .stages import voice_stage_table
from .synthesizer import Synthesizer

NOISE_NAMES = ("noise.z_p", "noise.nsf", "noise.nsf_phase")


@dataclasses.dataclass(frozen=True)
class VoiceSpec:
    """What the synthesizer's structure depends on: upstream hyperparameters, RVC version, f0 flag."""

    config: Any  # attributes named like upstream's (inter_channels, upsample_rates, sample_rate, ...)
    version: str
    f0: bool

    @property
    def feature_dim(self) -> int:
        return {"v1": 256, "v2": 768}[self.version]

    def stage_table(self) -> StageTable:
        return voice_stage_table(
            {"f0": self.f0, "version": self.version, "upsample_rates": list(self.config.upsample_rates)}
        )


def voice_spec(voice: Any) -> VoiceSpec:
    """A VoiceSpec from a `checkpoint.VoiceCheckpoint`, a voice manifest dict, or a VoiceSpec."""
    if isinstance(voice, VoiceSpec):
        return voice
    if isinstance(voice, Mapping):
        config = voice["config"]
        if isinstance(config, Mapping):
            config = types.SimpleNamespace(**config)
        version = voice.get("version", voice.get("rvc_version"))
        return VoiceSpec(config=config, version=str(version), f0=bool(voice["f0"]))
    return VoiceSpec(config=voice.config, version=str(voice.version), f0=bool(voice.f0))


def build_model(voice: Any, weights: Mapping[str, Any]) -> Synthesizer:
    """The MLX synthesizer for `voice`, with exported (channels-last) weights loaded strictly."""
    spec = voice_spec(voice)
    model = Synthesizer(spec.config, spec.version, spec.f0)
    load_weights_strictly(model, weights)
    mx.eval(model.parameters())
    return model


def draw_noise(voice: Any, inputs: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Every random draw of one upstream inference, from numpy's generator seeded with `seed`.

    Drawn in a fixed order: noise.z_p (B, inter, T) standard normal; for f0 voices noise.nsf (B, T*upp, 1)
    standard normal and noise.nsf_phase (B, 1) uniform with column 0 zeroed as upstream's SineGen does
    (with harmonic_num=0 that is the only column, so the initial phase is always 0).
    """
    spec = voice_spec(voice)
    batch, frames = inputs["phone"].shape[:2]
    rng = np.random.default_rng(seed)
    noise = {"noise.z_p": rng.standard_normal((batch, spec.config.inter_channels, frames)).astype(np.float32)}
    if spec.f0:
        upp = int(np.prod(spec.config.upsample_rates))
        noise["noise.nsf"] = rng.standard_normal((batch, frames * upp, 1)).astype(np.float32)
        phase = rng.random((batch, 1)).astype(np.float32)
        phase[:, 0] = 0.0
        noise["noise.nsf_phase"] = phase
    return noise


# --- layouts: the model is channels-last, golden tensors are in upstream's layout ---


def to_model_layout(array: np.ndarray, layout: str) -> mx.array:
    """`BCT` tensors become (B, T, C); every other layout is already what the model uses."""
    array = np.asarray(array)
    if layout == "BCT":
        array = array.transpose(0, 2, 1)
    return mx.array(np.ascontiguousarray(array))


def to_upstream_layout(array: mx.array, layout: str) -> np.ndarray:
    result = np.asarray(array)
    if layout == "BCT":
        result = result.transpose(0, 2, 1)
    return np.ascontiguousarray(result)


# --- stages: each reads model-layout tensors by golden name and returns its outputs the same way ---

StageFunction = Callable[[Synthesizer, Mapping[str, mx.array]], dict[str, mx.array]]


def _speaker(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
    return {"g": model.speaker(t["sid"])}


def _text_encoder(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
    pitch = t["pitch"] if model.f0 else None
    hidden, m_p, logs_p, x_mask = model.enc_p(t["phone"], pitch, t["phone_lengths"])
    return {"enc_p.hidden": hidden, "m_p": m_p, "logs_p": logs_p, "x_mask": x_mask}


def _prior_sample(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
    return {"z_p": model.prior_sample(t["m_p"], t["logs_p"], t["x_mask"], t["noise.z_p"])}


def _flow_step(k: int) -> StageFunction:
    previous = "z_p" if k == FLOW_COUNT - 1 else f"flow.flow_{k + 1}"

    def run(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
        return {f"flow.flow_{k}": model.flow.reverse_step(k, t[previous], t["x_mask"], t["g"])}

    return run


def _flow_output(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
    # Upstream passes z * x_mask to the decoder; the golden `z` is that product.
    return {"z": t["flow.flow_0"] * t["x_mask"]}


def _nsf_source(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
    return {"dec.source": model.dec.source(t["pitchf"], t["noise.nsf"], t["noise.nsf_phase"])}


def _conv_pre(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
    return {"dec.conv_pre": model.dec.pre(t["z"], t["g"])}


def _upsample_stage(i: int) -> StageFunction:
    previous = "dec.conv_pre" if i == 0 else f"dec.up_{i - 1}"

    def run(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
        source = t["dec.source"] if model.f0 else None
        return {f"dec.up_{i}": model.dec.upsample_stage(i, t[previous], source)}

    return run


def _audio(model: Synthesizer, t: Mapping[str, mx.array]) -> dict[str, mx.array]:
    last = f"dec.up_{model.dec.num_upsamples - 1}"
    return {"audio": model.dec.post(t[last])}


def stage_function(name: str) -> StageFunction:
    fixed: dict[str, StageFunction] = {
        "speaker": _speaker,
        "text_encoder": _text_encoder,
        "prior_sample": _prior_sample,
        "flow": _flow_output,
        "nsf_source": _nsf_source,
        "dec.conv_pre": _conv_pre,
        "audio": _audio,
    }
    if name in fixed:
        return fixed[name]
    if name.startswith("flow.flow_"):
        return _flow_step(int(name.rsplit("_", 1)[1]))
    if name.startswith("dec.up_"):
        return _upsample_stage(int(name.rsplit("_", 1)[1]))
    raise KeyError(f"no MLX reference for stage {name!r}")


def _input_dtype(name: str) -> Any:
    return np.int32 if name in ("phone_lengths", "pitch", "sid") else np.float32


def run_stage(model: Synthesizer, voice: Any, stage: str, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run one stage of the stage table on numpy tensors in upstream layout; return its outputs likewise."""
    table = voice_spec(voice).stage_table()
    spec = table.stage(stage)
    feed = {
        name: to_model_layout(np.asarray(tensors[name], dtype=_input_dtype(name)), table.tensor(name).layout)
        for name in spec.inputs
    }
    outputs = stage_function(stage)(model, feed)
    mx.eval(outputs)
    return {name: to_upstream_layout(outputs[name], table.tensor(name).layout) for name in spec.outputs}


def run_stages(
    model: Synthesizer, voice: Any, tensors: Mapping[str, np.ndarray], stages: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Run `stages` (default: all, in pipeline order), each fed by `tensors` and earlier stages' outputs.

    Returns every produced tensor. Pass a golden set's inputs to start the chain anywhere, e.g. the
    decoder alone from `z`, `g`, `pitchf` and the NSF noise.
    """
    table = voice_spec(voice).stage_table()
    names = [stage.name for stage in table.stages] if stages is None else list(stages)
    available = dict(tensors)
    produced: dict[str, np.ndarray] = {}
    for name in names:
        outputs = run_stage(model, voice, name, available)
        available.update(outputs)
        produced.update(outputs)
    return produced


def run_voice(
    model_or_weights: Synthesizer | Mapping[str, Any],
    config: Any,
    inputs: Mapping[str, np.ndarray],
    noise: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Chained inference: every golden intermediate and the audio, in upstream's shapes and layouts.

    `config` describes the voice (a `VoiceCheckpoint`, a voice manifest dict or a `VoiceSpec`);
    `model_or_weights` is a built `Synthesizer` or the exported weights to build one from.
    """
    model = model_or_weights if isinstance(model_or_weights, Synthesizer) else build_model(config, model_or_weights)
    return run_stages(model, config, {**inputs, **noise})


def synthesize(
    model: Synthesizer, inputs: Mapping[str, np.ndarray], noise: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Audio only, without stage captures (the path the benchmark times): (B, 1, T*upp) float32."""
    def arr(name: str, dtype: Any) -> mx.array | None:
        return mx.array(np.asarray(inputs[name], dtype=dtype)) if name in inputs else None

    audio = model.infer(
        arr("phone", np.float32),
        arr("phone_lengths", np.int32),
        arr("pitch", np.int32) if model.f0 else None,
        arr("pitchf", np.float32) if model.f0 else None,
        arr("sid", np.int32),
        to_model_layout(noise["noise.z_p"], "BCT"),
        mx.array(noise["noise.nsf"]) if model.f0 else None,
        mx.array(noise["noise.nsf_phase"]) if model.f0 else None,
    )
    mx.eval(audio)
    return to_upstream_layout(audio, "BCT")
