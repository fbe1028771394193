"""Core ML exports of the tiny demo networks, made once per test process and shared by the Core ML test files
(each export converts three packages; the default suite stays fast)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from rvc_ios_tools.cli import app

ROOT = Path(__file__).resolve().parent.parent
# The committed golden sets these exports are held to: tiny-v2-40k is the demo voice v2-40k-tiny with seed 1
# (0.5 s, 50 frames), tiny-rmvpe-reflect the tiny demo RMVPE with seed 4 (scripts/make_fixtures.py).
VOICE_GOLDEN = ROOT / "golden" / "tiny-v2-40k"
RMVPE_GOLDEN = ROOT / "golden" / "tiny-rmvpe-reflect"
VOICE_NAME = "tiny-v2-40k"
RMVPE_NAME = "tiny-rmvpe"
FRAME_BUCKETS = "32,64"


@functools.lru_cache(maxsize=1)
def _work_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="rvc-ios-coreml-tests-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def invoke(args: list[str]):
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0 and result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


@functools.lru_cache(maxsize=None)
def voice_source() -> Path:
    from rvc_ios_tools.voice.demo import write_demo_voice

    return write_demo_voice(_work_dir() / f"{VOICE_NAME}.pth", "v2-40k-tiny", 1)


def voice_assets(precision: str = "float32") -> Path:
    """`rvc-ios export --coreml` of the tiny voice at `precision`, through the CLI (once per precision)."""
    return _voice_assets(precision)  # one cache key whether or not the default is spelled out


@functools.lru_cache(maxsize=None)
def _voice_assets(precision: str) -> Path:
    assets = _work_dir() / f"voice-{precision}"
    source = voice_source()
    invoke(["export", "--coreml", "--model-name", source.stem, "--models-dir", str(source.parent),
            "--output-dir", str(assets), "--frames", FRAME_BUCKETS, "--compute-precision", precision, "--quiet"])
    return assets


@functools.lru_cache(maxsize=None)
def rmvpe_source() -> Path:
    from rvc_ios_tools.rmvpe.demo import write_demo_rmvpe

    return write_demo_rmvpe(_work_dir() / f"{RMVPE_NAME}.pt", seed=4, preset="tiny")


@functools.lru_cache(maxsize=None)
def rmvpe_assets() -> Path:
    assets = _work_dir() / "rmvpe"
    invoke(["export", "--coreml", "--rmvpe", str(rmvpe_source()), "--output-dir", str(assets), "--quiet"])
    return assets


HUBERT_GOLDEN = ROOT / "golden" / "tiny-hubert"
HUBERT_NAME = "tiny-hubert"


@functools.lru_cache(maxsize=None)
def hubert_source() -> Path:
    from rvc_ios_tools.hubert.demo import write_demo_fairseq

    return write_demo_fairseq(_work_dir() / f"{HUBERT_NAME}.pt", seed=6, preset="tiny")  # as make_fixtures.py


@functools.lru_cache(maxsize=None)
def hubert_assets() -> Path:
    assets = _work_dir() / "hubert"
    invoke(["export", "--coreml", "--hubert", str(hubert_source()), "--output-dir", str(assets), "--quiet"])
    return assets
