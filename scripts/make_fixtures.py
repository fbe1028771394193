"""Regenerate the committed fixtures shared by Python and Swift tests.

For each tiny demo voice: the upstream-format .pth is built from upstream's code (not committed), exported to
`swift_fixtures/<name>.safetensors` + `.manifest.json`, and its golden set written to `golden/<name>/`.
For the RMVPE pitch model: a tiny demo rmvpe.pt (`rmvpe.convert.TINY_ARCHITECTURE`) exported to
`swift_fixtures/tiny-rmvpe.*`, and one golden set per frame padding mode, `golden/tiny-rmvpe-<mode>/`.
For retrieval: a tiny faiss index built as RVC's train_index builds one (`swift_fixtures/tiny-index.index`),
its export `swift_fixtures/tiny-index.*` and its golden set `golden/tiny-index/`.
For the content encoder: a tiny demo HuBERT (`hubert.convert.TINY_ARCHITECTURE`) written as a fairseq training
dict like hubert_base.pt (not committed), exported to `swift_fixtures/tiny-hubert.*`, its golden set in
`golden/tiny-hubert/`.
For the whole conversion: a tiny v1 32k voice, a v1 content encoder and the tiny RMVPE on 0.5 s of the test
signal, `golden/tiny-pipeline/` (kind pipeline, every stage of `rvc-ios convert`); the same with a small
retrieval index (`swift_fixtures/tiny-index-v1.*`, its faiss file not committed), `golden/tiny-pipeline-index/`.
For the Swift resampler: a sweep and the voice-like signal at 44.1 and 48 kHz as 16-bit PCM, with the
reference's soxr HQ output at 16 kHz, `swift_fixtures/soxr-hq.safetensors`.

    python scripts/make_fixtures.py            # rewrite all fixtures
    (tests/test_fixtures.py regenerates them into a temporary folder and compares)
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Fixture:
    name: str
    preset: str
    flavor: str
    seed: int
    seconds: float


# Together these cover v1 and v2, 32k/40k/48k (including v1 48k's five upsampling stages), f0 and no-f0,
# and both file flavors (weight_g/weight_v and parametrizations).
FIXTURES = (
    Fixture("tiny-v2-40k", "v2-40k-tiny", "rvc-webui", seed=1, seconds=0.5),
    Fixture("tiny-v1-48k-nof0", "v1-48k-nof0-tiny", "rvc-webui", seed=2, seconds=0.4),
    Fixture("tiny-v2-32k-applio", "v2-32k-tiny", "applio", seed=3, seconds=0.3),
)


@dataclasses.dataclass(frozen=True)
class RmvpeFixture:
    name: str  # the golden set's folder
    model_name: str  # the exported model in swift_fixtures/
    preset: str
    model_seed: int
    audio_seed: int
    samples: int
    pad_mode: str


# The tiny RMVPE with weight seed 4 has voiced and unvoiced frames on this audio. 8000 samples are 51 frames,
# reflect-padded to 64; 10080 samples are exactly 64 frames, a multiple of 32, so nothing is padded.
RMVPE_FIXTURES = (
    RmvpeFixture("tiny-rmvpe-reflect", "tiny-rmvpe", "tiny", model_seed=4, audio_seed=1, samples=8000,
                 pad_mode="reflect"),
    RmvpeFixture("tiny-rmvpe-constant", "tiny-rmvpe", "tiny", model_seed=4, audio_seed=1, samples=10080,
                 pad_mode="constant"),
)


def make_rmvpe_fixture(fixture: RmvpeFixture, assets_dir: Path, golden_root: Path, sources_dir: Path) -> None:
    from rvc_ios_tools.rmvpe.golden import generate_rmvpe_golden
    from rvc_ios_tools.rmvpe.export import export_rmvpe
    from rvc_ios_tools.rmvpe.demo import write_demo_rmvpe

    source = write_demo_rmvpe(sources_dir / f"{fixture.model_name}.pt", fixture.model_seed, preset=fixture.preset)
    export_rmvpe(source, assets_dir)
    generate_rmvpe_golden(assets_dir, fixture.model_name, golden_root / fixture.name, seed=fixture.audio_seed,
                          seconds=fixture.samples / 16000, pad_mode=fixture.pad_mode)


@dataclasses.dataclass(frozen=True)
class IndexFixture:
    name: str  # the export in swift_fixtures/ and the golden set's folder
    rows: int
    dim: int
    seed: int
    frames: int


# 400 content-like vectors of 32 channels: train_index's N // 39 = 10 lists, each longer than the 8 neighbours
# searched (so every result is a real one), 56 kB per copy. 40 frames of features (0.8 s at 50 fps). The search
# is the same at RVC's 256 and 768 channels, held to faiss there by tests/test_index_search.py.
INDEX_FIXTURES = (IndexFixture("tiny-index", rows=400, dim=32, seed=5, frames=40),)


def make_index_fixture(fixture: IndexFixture, assets_dir: Path, golden_root: Path) -> None:
    from rvc_ios_tools.index.demo import build_index, demo_features
    from rvc_ios_tools.index.export import export_index
    from rvc_ios_tools.index.golden import FRAMES_PER_SECOND, generate_index_golden

    source = build_index(demo_features(fixture.rows, fixture.dim, fixture.seed), assets_dir / f"{fixture.name}.index",
                         seed=fixture.seed)
    export_index(source, assets_dir, fixture.name)
    generate_index_golden(assets_dir, fixture.name, golden_root / fixture.name, seed=fixture.seed,
                          seconds=fixture.frames / FRAMES_PER_SECOND)


@dataclasses.dataclass(frozen=True)
class HubertFixture:
    name: str  # the export in swift_fixtures/ and the golden set's folder
    preset: str
    model_seed: int
    audio_seed: int
    samples: int


# 8123 samples: 25 frames, and (N - 400) % 320 = 43, so the last samples feed no frame. The audio is the
# deterministic speech-like test signal (espeak-ng's output may differ between its versions).
HUBERT_FIXTURES = (HubertFixture("tiny-hubert", "tiny", model_seed=6, audio_seed=6, samples=8123),)


def make_hubert_fixture(fixture: HubertFixture, assets_dir: Path, golden_root: Path, sources_dir: Path) -> None:
    from rvc_ios_tools.hubert.demo import write_demo_fairseq
    from rvc_ios_tools.hubert.export import export_hubert
    from rvc_ios_tools.hubert.golden import generate_hubert_golden

    source = write_demo_fairseq(sources_dir / f"{fixture.name}.pt", seed=fixture.model_seed, preset=fixture.preset)
    export_hubert(source, assets_dir, model_name=fixture.name)
    generate_hubert_golden(assets_dir, fixture.name, golden_root / fixture.name, seed=fixture.audio_seed,
                           samples=fixture.samples)


@dataclasses.dataclass(frozen=True)
class PipelineFixture:
    name: str  # the golden set's folder
    voice: str  # the voice export in swift_fixtures/
    preset: str
    voice_seed: int
    hubert: str  # the content encoder export (v1: final_proj to 256)
    hubert_seed: int
    rmvpe: str  # the RMVPE export, the one RMVPE_FIXTURES make
    rmvpe_seed: int
    audio_seed: int
    samples: int
    seed: int  # the synthesizer's draws
    index: str | None = None  # the index export in swift_fixtures/ (its faiss file is built, not committed)
    index_rows: int = 0
    index_seed: int = 0


# A whole conversion kept small: v1 (256-channel features) at 32 kHz with f0, no index, 0.5 s of the voice-like
# test signal scaled to a peak of 1.2 so the peak normalisation scales it. Every segment is padded by a second of
# reflected audio at each end (upstream's x_pad), so the golden set is ~1.5 MB even for this short input.
# The same voice with retrieval on 0.25 s: 160 rows of the content encoder's own features of other audio (so
# each query falls among them), train_index's 160 // 39 = 4 lists of about 40, longer than the 8 neighbours.
# Audio seed 3 leaves 84 of the 224 frames unvoiced, so protect blends the retrieved features with the raw ones.
PIPELINE_FIXTURES = (
    PipelineFixture("tiny-pipeline", voice="tiny-v1-32k", preset="v1-32k-tiny", voice_seed=7, hubert="tiny-hubert-v1",
                    hubert_seed=8, rmvpe="tiny-rmvpe", rmvpe_seed=4, audio_seed=9, samples=8000, seed=10),
    PipelineFixture("tiny-pipeline-index", voice="tiny-v1-32k", preset="v1-32k-tiny", voice_seed=7,
                    hubert="tiny-hubert-v1", hubert_seed=8, rmvpe="tiny-rmvpe", rmvpe_seed=4, audio_seed=3,
                    samples=4000, seed=12, index="tiny-index-v1", index_rows=160, index_seed=13),
)


def make_pipeline_fixture(fixture: PipelineFixture, assets_dir: Path, golden_root: Path, sources_dir: Path) -> None:
    import numpy as np

    from rvc_ios_tools.core.files import sha256_file
    from rvc_ios_tools.hubert.export import export_hubert
    from rvc_ios_tools.hubert.reference import extract_features
    from rvc_ios_tools.index.demo import build_index
    from rvc_ios_tools.index.export import export_index
    from rvc_ios_tools.pipeline.convert import ConvertOptions, convert, load_networks
    from rvc_ios_tools.pipeline.demo import content_encoder_architecture, write_hf_content_encoder
    from rvc_ios_tools.pipeline.golden import write_pipeline_golden
    from rvc_ios_tools.rmvpe.demo import demo_audio, write_demo_rmvpe
    from rvc_ios_tools.rmvpe.export import export_rmvpe
    from rvc_ios_tools.voice.demo import write_demo_voice
    from rvc_ios_tools.voice.export import export_voice

    voice = write_demo_voice(sources_dir / f"{fixture.voice}.pth", fixture.preset, fixture.voice_seed)
    export_voice(voice, assets_dir, fixture.voice)
    hubert_folder = sources_dir / fixture.hubert
    write_hf_content_encoder(hubert_folder, content_encoder_architecture("tiny", "v1"), seed=fixture.hubert_seed)
    export_hubert(hubert_folder, assets_dir, model_name=fixture.hubert)
    export_rmvpe(write_demo_rmvpe(sources_dir / f"{fixture.rmvpe}.pt", fixture.rmvpe_seed, preset="tiny"), assets_dir)
    audio = demo_audio(fixture.samples, fixture.audio_seed)
    audio = (audio * np.float32(1.2 / np.abs(audio).max())).astype(np.float32)
    if fixture.index is not None:
        # One frame per 320 samples after the first 400 (the content encoder's receptive field).
        other = demo_audio(400 + 320 * (fixture.index_rows - 1), fixture.index_seed)
        networks = load_networks(assets_dir, fixture.voice, fixture.hubert, fixture.rmvpe, None)
        rows = extract_features(networks.content_encoder, other, networks.version)[0]
        source = build_index(rows, sources_dir / f"{fixture.index}.index", seed=fixture.index_seed)
        export_index(source, assets_dir, fixture.index)
    networks = load_networks(assets_dir, fixture.voice, fixture.hubert, fixture.rmvpe, fixture.index)
    options = ConvertOptions(seed=fixture.seed)
    stages = convert(networks, audio, options)
    write_pipeline_golden(golden_root / fixture.name, stages, model_name=fixture.voice,
                          source_sha256=sha256_file(assets_dir / f"{fixture.voice}.manifest.json"), options=options,
                          extra={"voice": fixture.voice, "hubert": fixture.hubert, "rmvpe": fixture.rmvpe,
                                 **({"index_name": fixture.index} if fixture.index else {})})


@dataclasses.dataclass(frozen=True)
class ResamplerFixture:
    name: str  # the file in swift_fixtures/
    rates: tuple[int, ...]
    samples: int  # at 16 kHz, the output's length
    seed: int


# 0.25 s each: a logarithmic sweep 50 Hz -> 7 kHz at -6 dBFS, and the voice-like test signal low-passed at
# 6.8 kHz (its noise floor is white), both inside soxr HQ's passband (flat to about 7.35 kHz at 16 kHz), where
# the Swift resampler is specified to agree with it; faded in and out over 20 ms (an abrupt start or end is a
# broadband click, whose part between the passband and Nyquist the two resamplers shape differently), and
# quantised to 16-bit PCM as a WAV file holds them.
RESAMPLER_FIXTURES = (ResamplerFixture("soxr-hq", rates=(44100, 48000), samples=4000, seed=14),)


def resampler_signals(rate: int, samples: int, seed: int) -> dict[str, "np.ndarray"]:
    import numpy as np
    from scipy import signal

    from rvc_ios_tools.rmvpe.demo import demo_audio

    n = samples * rate // 16000
    t = np.arange(n) / rate
    seconds, low, high = n / rate, 50.0, 7000.0
    k = np.log(high / low) / seconds
    sweep = 0.5 * np.sin(2 * np.pi * low * (np.exp(k * t) - 1) / k)
    taps = signal.firwin(1001, 6800, fs=rate, window=("kaiser", 12.0))
    voice = np.convolve(demo_audio(n, seed, sample_rate=rate).astype(np.float64), taps, mode="same")
    fade = np.ones(n)
    ramp = np.sin(0.5 * np.pi * np.arange(rate // 50) / (rate // 50)) ** 2
    fade[: len(ramp)], fade[n - len(ramp):] = ramp, ramp[::-1]
    return {name: np.clip(np.round(x * fade * 32767), -32768, 32767).astype(np.int16)
            for name, x in (("sweep", sweep), ("voice", voice))}


def make_resampler_fixture(fixture: ResamplerFixture, assets_dir: Path) -> None:
    import numpy as np

    from rvc_ios_tools.core.files import write_safetensors
    from rvc_ios_tools.core.wav import RESAMPLER, resample

    tensors = {}
    for rate in fixture.rates:
        for name, pcm in resampler_signals(rate, fixture.samples, fixture.seed).items():
            tensors[f"{name}.{rate}"] = pcm
            tensors[f"{name}.{rate}.soxr"] = resample(pcm.astype(np.float32) / np.float32(32768), rate, 16000)
    write_safetensors(assets_dir / f"{fixture.name}.safetensors", tensors, {"producer": RESAMPLER})


def make_fixture(fixture: Fixture, assets_dir: Path, golden_root: Path, voices_dir: Path) -> None:
    from rvc_ios_tools.voice.demo import write_demo_voice
    from rvc_ios_tools.voice.export import export_voice
    from rvc_ios_tools.voice.golden import generate_voice_golden

    source = write_demo_voice(voices_dir / f"{fixture.name}.pth", fixture.preset, fixture.seed, fixture.flavor)
    export_voice(source, assets_dir, fixture.name)
    generate_voice_golden(assets_dir, fixture.name, golden_root / fixture.name, seed=fixture.seed,
                          seconds=fixture.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="Regenerate one fixture by name.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for fixture in FIXTURES:
            if args.only and fixture.name != args.only:
                continue
            make_fixture(fixture, REPO / "swift_fixtures", REPO / "golden", Path(tmp))
            print(f"wrote swift_fixtures/{fixture.name}.* and golden/{fixture.name}/")
        for rmvpe_fixture in RMVPE_FIXTURES:
            if args.only and rmvpe_fixture.name != args.only:
                continue
            make_rmvpe_fixture(rmvpe_fixture, REPO / "swift_fixtures", REPO / "golden", Path(tmp))
            print(f"wrote swift_fixtures/{rmvpe_fixture.model_name}.* and golden/{rmvpe_fixture.name}/")
        for index_fixture in INDEX_FIXTURES:
            if args.only and index_fixture.name != args.only:
                continue
            make_index_fixture(index_fixture, REPO / "swift_fixtures", REPO / "golden")
            print(f"wrote swift_fixtures/{index_fixture.name}.* and golden/{index_fixture.name}/")
        for hubert_fixture in HUBERT_FIXTURES:
            if args.only and hubert_fixture.name != args.only:
                continue
            make_hubert_fixture(hubert_fixture, REPO / "swift_fixtures", REPO / "golden", Path(tmp))
            print(f"wrote swift_fixtures/{hubert_fixture.name}.* and golden/{hubert_fixture.name}/")
        for pipeline_fixture in PIPELINE_FIXTURES:
            if args.only and pipeline_fixture.name != args.only:
                continue
            make_pipeline_fixture(pipeline_fixture, REPO / "swift_fixtures", REPO / "golden", Path(tmp))
            print(f"wrote swift_fixtures/{pipeline_fixture.voice}.*, {pipeline_fixture.hubert}.* and golden/{pipeline_fixture.name}/")
        for resampler_fixture in RESAMPLER_FIXTURES:
            if args.only and resampler_fixture.name != args.only:
                continue
            make_resampler_fixture(resampler_fixture, REPO / "swift_fixtures")
            print(f"wrote swift_fixtures/{resampler_fixture.name}.safetensors")


if __name__ == "__main__":
    main()
