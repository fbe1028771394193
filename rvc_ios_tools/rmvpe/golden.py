"""`rvc-ios golden generate --kind rmvpe`: run the MLX RMVPE on exported weights and write a golden set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import naming_file
from ..core.files import sha256_file
from ..core.golden import GoldenSet
from ..core.manifest import load_exported
from ..core.wav import read_wav_16k_mono
from .demo import demo_audio


def generate_rmvpe_golden(
    assets_dir: Path,
    model_name: str,
    out_dir: Path,
    *,
    audio_file: Path | None = None,
    seed: int = 0,
    seconds: float = 3.0,
    pad_mode: str = "reflect",
) -> GoldenSet:
    """RMVPE golden set on a WAV file, or on a voice-like test signal synthesised from `seed`."""
    from .reference import AudioTooShortError, rmvpe_from_export, write_rmvpe_golden  # imports mlx

    manifest, weights = load_exported(assets_dir, model_name, kind="rmvpe")
    if audio_file is not None:
        audio = read_wav_16k_mono(audio_file)
    else:
        audio = np.asarray(demo_audio(round(seconds * 16000), seed), dtype=np.float32).reshape(1, -1)
    with naming_file(audio_file, AudioTooShortError):
        return write_rmvpe_golden(
            out_dir, rmvpe_from_export(manifest, weights, f"{model_name} in {assets_dir}"), audio,
            model_name=model_name,
            manifest_sha256=sha256_file(Path(assets_dir) / f"{model_name}.manifest.json"),
            seed=seed,
            pad_mode=pad_mode,
        )
