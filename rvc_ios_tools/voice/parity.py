"""`rvc-ios parity`: the whole proof in one command.

export -> golden set from the MLX reference -> build the Swift package -> run RVCNativeMac chained and
teacher-forced -> golden diff of each -> one table per mode. With no voice named, the embedded full-size demo
voice (v2 40k, built from upstream's code with seed 0) is used.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..core.diff import compare_golden, load_candidate, render_report_table, write_report_json
from ..core.errors import RvcIosError
from ..core.export import StepReporter
from ..core.locate import find_model
from .export import export_voice
from .golden import generate_voice_golden

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_VOICE_NAME = "rvc-ios-demo"
DEMO_VOICE_PRESET = "v2-40k"
MODES = ("chained", "teacher-forced")


class SwiftBuildError(RvcIosError):
    """The Swift package did not build or RVCNativeMac failed."""


@dataclasses.dataclass
class ParityOutcome:
    mode: str
    passed: bool
    first_divergent_stage: str | None
    table: str
    report_path: Path
    min_snr_db: float


def ensure_demo_voice(models_dir: Path, reporter: StepReporter) -> Path:
    from .demo import write_demo_voice

    path = models_dir / f"{DEMO_VOICE_NAME}.pth"
    if not path.is_file():
        with reporter.step(f"building the embedded demo voice ({DEMO_VOICE_PRESET}, seed 0) from upstream code"):
            write_demo_voice(path, DEMO_VOICE_PRESET, seed=0)
    return path


def build_swift(demos_dir: Path, reporter: StepReporter) -> Path:
    if not (demos_dir / "Package.swift").is_file():
        raise SwiftBuildError(
            f"No Swift package at {demos_dir}. Run from a clone of rvc-ios-tools or pass --demos-dir."
        )
    if shutil.which("swift") is None:
        raise SwiftBuildError("`swift` is not on PATH; install the Swift toolchain (6.x) to build Demos/.")
    with reporter.step("swift build -c release (Demos)"):
        completed = subprocess.run(
            ["swift", "build", "-c", "release", "--product", "RVCNativeMac"],
            cwd=demos_dir, capture_output=True, text=True,
        )
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise SwiftBuildError(f"swift build failed in {demos_dir}:\n{tail}")
    binary = demos_dir / ".build" / "release" / "RVCNativeMac"
    if not binary.is_file():
        raise SwiftBuildError(f"swift build succeeded but {binary} is missing.")
    return binary


def run_swift(binary: Path, assets: Path, model_name: str, golden_dir: Path, out: Path, mode: str,
              reporter: StepReporter, extra_args: Sequence[str] = ()) -> None:
    """`RVCNativeMac run` on a golden set; `extra_args` are passed on (a pipeline set's --hubert, --rmvpe, --index)."""
    command = [str(binary), "run", "--assets", str(assets), "--model", model_name, "--inputs", str(golden_dir),
               "--output", str(out), *extra_args]
    if mode == "teacher-forced":
        command.append("--teacher-forced")
    with reporter.step(f"RVCNativeMac run ({mode})"):
        completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SwiftBuildError(
            f"RVCNativeMac failed ({mode}, exit {completed.returncode}): {(completed.stderr or completed.stdout).strip()}"
        )


def run_parity(
    *,
    model_name: str | None,
    models_dir: Path,
    work_dir: Path,
    demos_dir: Path,
    seconds: float,
    seed: int,
    modes: tuple[str, ...] = MODES,
    quiet: bool = False,
) -> list[ParityOutcome]:
    reporter = StepReporter(enabled=not quiet)
    started = time.perf_counter()
    if model_name is None:
        model_name = DEMO_VOICE_NAME
        source = ensure_demo_voice(models_dir, reporter)
    else:
        source = find_model(model_name, models_dir)
    assets = work_dir / "Assets"
    export_voice(source, assets, model_name, "float32", reporter)
    golden_dir = work_dir / "golden" / model_name
    with reporter.step(f"golden set from the MLX reference ({seconds:g} s of audio, seed {seed})"):
        golden = generate_voice_golden(assets, model_name, golden_dir, seed=seed, seconds=seconds)
    binary = build_swift(demos_dir, reporter)
    outcomes = []
    for mode in modes:
        candidate_path = work_dir / f"swift-{mode}.safetensors"
        run_swift(binary, assets, model_name, golden_dir, candidate_path, mode, reporter)
        candidate = load_candidate(candidate_path)
        report = compare_golden(golden, candidate.tensors, candidate.layouts, candidate_path=str(candidate_path),
                                candidate_metadata=candidate.metadata)
        report_path = work_dir / f"parity-{mode}.json"
        write_report_json(report, report_path)
        snrs = [t.snr_db for stage in report.stages for t in stage.tensors if t.snr_db is not None]
        outcomes.append(ParityOutcome(
            mode=mode,
            passed=report.passed,
            first_divergent_stage=report.first_divergent_stage,
            table=render_report_table(report),
            report_path=report_path,
            min_snr_db=min(snrs) if snrs else float("nan"),
        ))
    if not quiet:
        print(f"  total {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return outcomes
