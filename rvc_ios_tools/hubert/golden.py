"""`rvc-ios golden generate --kind hubert`: run the MLX content encoder on exported weights, write a golden set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import naming_file
from ..core.files import sha256_file
from ..core.golden import GoldenSet
from ..core.manifest import load_exported
from ..core.wav import read_wav_16k_mono
from .demo import demo_speech_like


def generate_hubert_golden(
    assets_dir: Path,
    model_name: str,
    out_dir: Path,
    *,
    audio_file: Path | None = None,
    seed: int = 0,
    seconds: float = 1.0,
    samples: int | None = None,
    v1_convention: str = "rvc",
) -> GoldenSet:
    """Content-encoder golden set on a 16 kHz WAV file, or on a speech-like test signal drawn from `seed`
    (`samples` long, else `seconds`)."""
    from .reference import AudioTooShortError, build_hubert, write_hubert_golden  # imports mlx

    manifest, weights = load_exported(assets_dir, model_name, kind="hubert")
    if audio_file is not None:
        audio = read_wav_16k_mono(audio_file)
        source = Path(audio_file).name
    else:
        audio = demo_speech_like(samples if samples is not None else round(seconds * 16000), seed).reshape(1, -1)
        source = f"test signal, seed {seed}"
    with naming_file(audio_file, AudioTooShortError):
        return write_hubert_golden(
            out_dir, build_hubert(weights, manifest["hubert"]["architecture"]), np.asarray(audio, np.float32),
            model_name=model_name,
            manifest_sha256=sha256_file(Path(assets_dir) / f"{model_name}.manifest.json"),
            seed=seed,
            v1_convention=v1_convention,
            audio_source=source,
        )
