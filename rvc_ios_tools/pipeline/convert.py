"""The whole conversion in the MLX reference: 16 kHz audio in, the voice's int16 audio out, as upstream's
`Pipeline.pipeline` (rvc 0.3.5) computes it, every stage recorded under its golden name.

Networks: RMVPE on the whole padded signal (once), the content encoder and the index per segment, the
synthesizer per segment with that segment's own random draws (`segment.K.noise.*`, given or drawn from the
seed). Everything around them is `audio.py` and `segment.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..core.errors import RvcIosError
from ..core.manifest import load_exported
from ..hubert.reference import build_hubert, extract_features
from ..index.convert import search_index_from_export
from ..index.reference import SearchIndex, retrieval
from ..rmvpe.reference import THRESHOLD, build_rmvpe, log_mel, mel_to_salience, rmvpe_from_export, salience_to_f0
from ..voice.reference import build_model, draw_noise, synthesize
from . import audio as dsp
from .segment import shift_pitch, synthesizer_inputs

RMVPE_PAD_MODES = ("constant", "reflect")
Progress = Callable[[str], None]


class PipelineInputError(RvcIosError):
    """Options or assets that cannot make a conversion."""


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """Upstream's options with its defaults (`vc_single`); the windowing is the CPU row (`x_pad 1 ...`)."""

    pitch: float = 0.0  # semitones (f0_up_key)
    index_rate: float = 0.75
    protect: float = 0.33
    rms_mix_rate: float = 0.25
    resample_sr: int = 0
    sid: int = 0
    seed: int = 0
    # How RMVPE pads its log-mel to a multiple of 32 frames: zeros as the rvc 0.3.5 package, or reflect as Applio.
    rmvpe_pad_mode: str = "constant"
    windowing: dsp.WindowingConfig = dsp.WindowingConfig()

    def check(self) -> None:
        if not 0 <= self.index_rate <= 1:
            raise PipelineInputError(f"--index-rate must lie in 0..1, not {self.index_rate}.")
        if not 0 <= self.protect <= 0.5:
            raise PipelineInputError(f"--protect must lie in 0..0.5 (0.5 switches it off), not {self.protect}.")
        if not 0 <= self.rms_mix_rate <= 1:
            raise PipelineInputError(f"--rms-mix-rate must lie in 0..1, not {self.rms_mix_rate}.")
        if self.rmvpe_pad_mode not in RMVPE_PAD_MODES:
            raise PipelineInputError(f"--rmvpe-pad-mode must be constant or reflect, not {self.rmvpe_pad_mode!r}.")
        if not -48 <= self.pitch <= 48:
            raise PipelineInputError(f"--pitch is in semitones; {self.pitch} is beyond four octaves.")


@dataclasses.dataclass
class Networks:
    """The MLX reference of every network a conversion uses."""

    voice: Any  # what `voice_spec` reads: a voice manifest or checkpoint
    target_rate: int
    version: str
    f0: bool
    feature_dim: int
    speaker_count: int
    synthesizer: Any
    content_encoder: Any
    rmvpe: Any | None  # None for a voice without f0
    index: SearchIndex | None

    def check_index(self, where: str) -> None:
        if self.index is not None and self.index.vectors.shape[1] != self.feature_dim:
            raise PipelineInputError(
                f"The index {where} holds {self.index.vectors.shape[1]}-d features; the voice takes {self.feature_dim}-d "
                f"({self.version}). Use the index trained for this voice."
            )


def check_content_encoder(architecture: Mapping[str, Any], version: str, feature_dim: int, where: str) -> None:
    """The content encoder gives the features the voice takes: v1 voices final_proj's (256), v2 the last
    layer's (768); a mismatch would otherwise surface as a shape error inside the synthesizer."""
    width = architecture["final_proj_dim"] if version == "v1" else architecture["hidden_size"]
    if width != feature_dim:
        gives = f"gives {width}-d {version} features" if width else "has no final_proj, so it gives no v1 features"
        raise PipelineInputError(
            f"The content encoder {where} {gives}; the voice takes {feature_dim}-d ({version}). Use the content "
            "encoder the voice was trained with (RVC's hubert_base.pt, or ContentVec)."
        )


def load_networks(assets: Path, voice: str, hubert: str, rmvpe: str | None, index: str | None) -> Networks:
    """Every export by name from one assets folder, each checked against its manifest."""
    voice_manifest, voice_weights = load_exported(assets, voice, kind="voice")
    hubert_manifest, hubert_weights = load_exported(assets, hubert, kind="hubert")
    check_content_encoder(hubert_manifest["hubert"]["architecture"], str(voice_manifest["rvc_version"]),
                          int(voice_manifest["feature_dim"]), f"{hubert} in {assets}")
    pitch_model = None
    if voice_manifest["f0"]:
        if rmvpe is None:
            raise PipelineInputError(f"The voice {voice} uses pitch; export RMVPE (`rvc-ios export --rmvpe rmvpe.pt`) "
                                     "and pass its name.")
        rmvpe_manifest, rmvpe_weights = load_exported(assets, rmvpe, kind="rmvpe")
        pitch_model = rmvpe_from_export(rmvpe_manifest, rmvpe_weights, f"{rmvpe} in {assets}")
    search = None
    if index is not None:
        index_manifest, index_tensors = load_exported(assets, index, kind="index")
        search = search_index_from_export(index_manifest["index"], index_tensors, f"{index} in {assets}")
    networks = Networks(
        voice=voice_manifest, target_rate=int(voice_manifest["sample_rate"]), version=str(voice_manifest["rvc_version"]),
        f0=bool(voice_manifest["f0"]), feature_dim=int(voice_manifest["feature_dim"]),
        speaker_count=int(voice_manifest["speaker_count"]),
        synthesizer=build_model(voice_manifest, voice_weights),
        content_encoder=build_hubert(hubert_weights, hubert_manifest["hubert"]["architecture"]),
        rmvpe=pitch_model, index=search,
    )
    networks.check_index(f"{index} in {assets}")
    return networks


def networks_from_sources(voice: Path, hubert: Path, rmvpe: Path | None, index: Path | None,
                          progress: Progress | None = None) -> Networks:
    """Every network straight from the files users have (the voice .pth, hubert_base.pt or a Hugging Face
    folder, rmvpe.pt, the .index), loaded as strictly as `rvc-ios export` loads them."""
    from ..hubert.convert import convert_hubert, load_hubert
    from ..index.faiss_file import read_faiss_index
    from ..rmvpe.convert import convert_rmvpe_state_dict, load_rmvpe_checkpoint
    from ..voice.checkpoint import load_voice
    from ..voice.convert import convert_voice

    say = progress or (lambda message: None)
    say(f"loading {voice.name}")
    checkpoint = load_voice(voice)
    say(f"loading {hubert.name}")
    encoder_checkpoint = load_hubert(hubert)
    check_content_encoder(encoder_checkpoint.architecture, str(checkpoint.version), int(checkpoint.feature_dim),
                          str(hubert))
    pitch_model = None
    if checkpoint.f0:
        if rmvpe is None or not Path(rmvpe).is_file():
            raise PipelineInputError(f"{voice.name} uses pitch, so RMVPE is needed: pass --rmvpe PATH to rmvpe.pt "
                                     f"(looked for {rmvpe}).")
        say(f"loading {rmvpe.name}")
        converted, _, architecture = convert_rmvpe_state_dict(load_rmvpe_checkpoint(rmvpe), "float32", rmvpe.name)
        pitch_model = build_rmvpe({key: t.array for key, t in converted.items()}, architecture)
    search = None
    if index is not None:
        say(f"loading {index.name}")
        search = SearchIndex.from_file_index(read_faiss_index(index))
    networks = Networks(
        voice=checkpoint, target_rate=int(checkpoint.sample_rate), version=str(checkpoint.version), f0=bool(checkpoint.f0),
        feature_dim=int(checkpoint.feature_dim), speaker_count=int(checkpoint.speaker_count),
        synthesizer=build_model(checkpoint, convert_voice(checkpoint)),
        content_encoder=build_hubert(convert_hubert(encoder_checkpoint), encoder_checkpoint.architecture),
        rmvpe=pitch_model, index=search,
    )
    networks.check_index(str(index))
    return networks


def segment_noise(networks: Networks, index: int, inputs: Mapping[str, np.ndarray], given: Mapping[str, np.ndarray],
                  seed: int, noise_source: str = "The noise file") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Segment `index`'s draws: each from `given` (`segment.K.noise.*`, read from `noise_source`) when there,
    else from (seed, K)."""
    drawn = draw_noise(networks.voice, inputs, int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))
    noise, sources = {}, {}
    for name, array in drawn.items():
        key = f"segment.{index}.{name}"
        if key in given:
            if tuple(given[key].shape) != array.shape or given[key].dtype != np.float32:
                raise PipelineInputError(
                    f"{noise_source}: `{key}` is {given[key].dtype} {tuple(given[key].shape)}; this segment needs "
                    f"float32 {array.shape}. Record the draws of this input and voice again, or leave the noise out."
                )
            noise[name], sources[key] = np.array(given[key]), "noise file"
        else:
            noise[name], sources[key] = array, f"seed {seed}"
    return noise, sources


class StageClock:
    """Seconds spent per network, summed over segments; the rest of the conversion is `other`."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextlib.contextmanager
    def timing(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - start

    def totals(self, whole: float) -> dict[str, float]:
        return {**self.spent, "other": whole - sum(self.spent.values()), "whole": whole}


def whole_signal_f0(networks: Networks, padded: np.ndarray, options: ConvertOptions) -> np.ndarray:
    """RMVPE's f0 of the whole padded signal, once: `infer_from_audio` takes it as float32, and its f0 stays
    float64 (the cents are float64), which the key shift and coarse pitch then use."""
    mel = log_mel(padded.astype(np.float32)[None])
    return salience_to_f0(np.array(mel_to_salience(networks.rmvpe, mel, options.rmvpe_pad_mode)), THRESHOLD)[0]


def pitch_of_segment(networks: Networks, options: ConvertOptions, audio0: np.ndarray, pitch: np.ndarray | None,
                     pitchf: np.ndarray | None, segment: dsp.Segment) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The segment's slice of the whole signal's pitch track (upstream never runs RMVPE per segment: its
    BiGRU would see other context and give other f0)."""
    if pitch is None or pitchf is None:
        return None, None
    return pitch[segment.pitch_start : segment.pitch_stop], pitchf[segment.pitch_start : segment.pitch_stop]


def finish_conversion(segment_audio: list[np.ndarray], filtered: np.ndarray, target_rate: int,
                      options: ConvertOptions) -> dict[str, Any]:
    """Upstream's pipeline after the synthesizer: each segment's audio trimmed by t_pad_tgt at both ends and
    concatenated, RMS mixing against the filtered input, optional resampling, int16. Stages by golden name."""
    trim = options.windowing.t_pad_tgt(target_rate)
    output = np.concatenate([audio[trim:-trim] for audio in segment_audio])
    stages: dict[str, Any] = {"concatenated": output}
    if options.rms_mix_rate != 1:
        output = dsp.change_rms(filtered, dsp.SAMPLE_RATE, output, target_rate, options.rms_mix_rate)
    stages["rms_mixed"] = output
    output_rate = target_rate
    if target_rate != options.resample_sr >= 16000:
        from ..core.wav import resample

        output = resample(output, target_rate, options.resample_sr)
        output_rate = options.resample_sr
    stages["resampled"] = output
    stages["output"] = dsp.to_int16(output)
    stages["output_rate"] = output_rate
    return stages


def convert(networks: Networks, audio: np.ndarray, options: ConvertOptions = ConvertOptions(),
            noise: Mapping[str, np.ndarray] | None = None, progress: Progress | None = None,
            noise_source: str = "The noise file") -> dict[str, Any]:
    """Run the conversion on 16 kHz mono float audio; returns every stage's tensors by golden name
    (`output` is the int16 audio at `output_rate`), plus `split_points` and `noise_sources`. `noise_source`
    names where `noise` came from, for the errors that refuse it."""
    options.check()
    if not 0 <= options.sid < networks.speaker_count:
        raise PipelineInputError(f"--sid {options.sid} is out of range; this voice has {networks.speaker_count} speaker(s).")
    started, seconds = time.perf_counter(), StageClock()
    given = dict(noise or {})
    config = options.windowing
    say = progress or (lambda message: None)
    stages: dict[str, Any] = {"input": np.asarray(audio, dtype=np.float32), "sid": np.array([options.sid], dtype=np.int32)}
    normalised = dsp.peak_normalise(stages["input"])
    stages["normalised"] = normalised
    filtered = dsp.high_pass(normalised)
    stages["filtered"] = filtered
    points = dsp.split_points(filtered, config)
    stages["split_points"] = np.array(points, dtype=np.int64)
    padded = dsp.pad_for_segments(filtered, config)
    stages["padded"] = padded
    p_len = padded.shape[0] // dsp.WINDOW
    pitch = pitchf = None
    if networks.f0:
        say("pitch (RMVPE) on the whole signal")
        with seconds.timing("pitch"):
            f0 = whole_signal_f0(networks, padded, options)
        stages["f0"] = f0
        pitch, pitchf = shift_pitch(f0, options.pitch)
        pitch, pitchf = pitch[:p_len], pitchf[:p_len]
        stages["pitch"], stages["pitchf"] = pitch, pitchf
    segment_audio, sources = [], {}
    segments = dsp.plan_segments(points, config)
    for segment in segments:
        say(f"segment {segment.index + 1} of {len(segments)}")
        prefix = f"segment.{segment.index}."
        audio0 = padded[segment.audio_start : segment.audio_stop]
        with seconds.timing("content_features"):
            feats = extract_features(networks.content_encoder, audio0.astype(np.float32), networks.version)[0]
        stages[prefix + "features"] = feats
        retrieved = None
        if networks.index is not None and options.index_rate != 0:
            with seconds.timing("retrieval"):
                found = retrieval(networks.index, feats, options.index_rate)
            stages[prefix + "retrieved"] = found.retrieved
            retrieved = stages[prefix + "blended"] = found.blended
        segment_pitch, segment_pitchf = pitch_of_segment(networks, options, audio0, pitch, pitchf, segment)
        call = synthesizer_inputs(feats, audio0.shape[0], segment_pitch, segment_pitchf, options.protect, retrieved)
        inputs = {"phone": call.phone, "phone_lengths": call.phone_lengths.astype(np.int32), "sid": stages["sid"]}
        if call.pitch is not None:
            inputs["pitch"], inputs["pitchf"] = call.pitch.astype(np.int32), call.pitchf
        draws, drawn_from = segment_noise(networks, segment.index, inputs, given, options.seed, noise_source)
        sources.update(drawn_from)
        for name, array in {**inputs, **draws}.items():
            if name != "sid":
                stages[prefix + name] = array
        with seconds.timing("synthesizer"):
            synthesized = synthesize(networks.synthesizer, inputs, draws)[0, 0]
        stages[prefix + "audio"] = synthesized
        segment_audio.append(synthesized)
    unknown = sorted(set(given) - set(sources))
    if unknown:
        raise PipelineInputError(f"{noise_source} holds {', '.join(unknown)}, which this run never draws "
                                 f"({len(segments)} segment(s)); record the draws of this input and voice.")
    stages.update(finish_conversion(segment_audio, filtered, networks.target_rate, options))
    stages["noise_sources"] = sources
    stages["seconds"] = seconds.totals(time.perf_counter() - started)
    return stages
