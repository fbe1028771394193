"""`rvc-ios`: thin command line over the package. Parses, calls, prints; user mistakes exit non-zero."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

from . import __version__
from .errors import RvcIosError

app = typer.Typer(
    help=(
        "Take RVC voice models from PyTorch to Swift and prove the port computes what the original computes, "
        "stage by stage.\n\nTypical flow: `rvc-ios inspect Drake.pth`, `rvc-ios export --model-name Drake "
        "--output-dir Assets`, `rvc-ios golden generate ...`, then `rvc-ios golden diff` on your port's output "
        "(or `rvc-ios parity` to do it all against the bundled Swift port)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def user_errors(command: Callable) -> Callable:
    """Print an `RvcIosError` as one sentence on stderr and exit with its code; our bugs keep tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RvcIosError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; nothing partial was written.", err=True)
            raise typer.Exit(130) from None

    return wrapper


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rvc-ios-tools {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True, help="Print the version."),
) -> None:
    pass


@app.command()
@user_errors
def inspect(
    file: Path = typer.Argument(..., help="An RVC voice file (.pth) from RVC WebUI or Applio."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a summary."),
) -> None:
    """Load a voice safely (no pickle code runs) and show what it is: flavor, version, rate, f0, config."""
    from .checkpoint import load_voice

    voice = load_voice(file)
    summary = {
        "file": str(file),
        "flavor": voice.flavor,
        "rvc_version": voice.version,
        "sample_rate": voice.sample_rate,
        "f0": voice.f0,
        "feature_dim": voice.feature_dim,
        "speaker_count": voice.speaker_count,
        "parameter_count": voice.parameter_count,
        "tensor_count": len(voice.state_dict),
        "dtype": ",".join(voice.dtypes),
        "upsample_factor": voice.config.upsample_factor,
        "config": voice.config.as_dict(),
        "metadata": voice.metadata,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"{file}")
    for key in ("flavor", "rvc_version", "sample_rate", "f0", "feature_dim", "speaker_count", "parameter_count",
                "tensor_count", "dtype", "upsample_factor"):
        typer.echo(f"  {key:<18} {summary[key]}")
    typer.echo("  config:")
    for key, value in summary["config"].items():
        typer.echo(f"    {key:<26} {value}")


@app.command()
@user_errors
def export(
    model_name: Optional[str] = typer.Option(
        None, "--model-name", help="Voice to export: NAME.pth or NAME/ (one .pth inside) in the models folder."
    ),
    output_dir: Path = typer.Option(Path("Assets"), "--output-dir", help="Folder for NAME.safetensors + NAME.manifest.json."),
    models_dir: Optional[Path] = typer.Option(
        None, "--models-dir", help="Where voices live. Default: $RVC_MODELS_DIR, else ./assets/weights (RVC WebUI's folder)."
    ),
    dtype: str = typer.Option("float32", "--dtype", help="Stored dtype of the weights: float32 or float16."),
    rmvpe: Optional[Path] = typer.Option(
        None, "--rmvpe", help="Also (or only) export an RMVPE pitch model (rmvpe.pt) to rmvpe.safetensors."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Convert a voice to Swift-named, channels-last safetensors plus a schema-checked JSON manifest.

    Weight norm is folded exactly as PyTorch does, every tensor is renamed by one rule table, and any tensor
    no rule knows is an error. Nothing partial is left behind on failure.
    """
    from .export import StepReporter, export_voice, find_model
    from .export import models_dir as resolve_models_dir

    if model_name is None and rmvpe is None:
        raise RvcIosError("Nothing to export: give --model-name NAME (a voice) and/or --rmvpe PATH.")
    reporter = StepReporter(enabled=not quiet)
    if model_name is not None:
        source = find_model(model_name, resolve_models_dir(models_dir))
        typer.echo(f"Exporting {source} -> {output_dir}/", err=True)
        result = export_voice(source, output_dir, model_name, dtype, reporter)
        typer.echo(
            f"wrote {result.weights_path} ({result.tensor_count} tensors, {result.dropped_count} dropped by rule) "
            f"and {result.manifest_path}"
        )
    if rmvpe is not None:
        from .rmvpe_convert import export_rmvpe

        typer.echo(f"Exporting RMVPE {rmvpe} -> {output_dir}/", err=True)
        weights_path, manifest_path = export_rmvpe(rmvpe, output_dir, dtype)
        typer.echo(f"wrote {weights_path} and {manifest_path}")


@app.command("demo-model")
@user_errors
def demo_model(
    preset: str = typer.Option("v2-40k", "--preset", help="Voice preset, e.g. v2-40k, v1-48k-nof0, v2-32k-tiny. `--list` shows all."),
    name: Optional[str] = typer.Option(None, "--name", help="File stem to write (default: demo-<preset>)."),
    output_dir: Path = typer.Option(Path("assets/weights"), "--output-dir", help="Folder to write NAME.pth into."),
    seed: int = typer.Option(0, "--seed", help="Seed for every parameter."),
    flavor: str = typer.Option("rvc-webui", "--flavor", help="File format: rvc-webui or applio."),
    list_presets: bool = typer.Option(False, "--list", help="List presets and exit."),
) -> None:
    """Write a deterministic demo voice in the real upstream (or Applio) format, from upstream's model code.

    Same preset, seed and flavor give a byte-identical file. Needs the upstream `rvc` package (installed by the
    README's set-up command).
    """
    from .demo import PRESETS, write_demo_voice

    if list_presets:
        for key, spec in sorted(PRESETS.items()):
            typer.echo(f"{key:<20} {spec.version} {spec.sample_rate_tag} f0={int(spec.f0)}")
        return
    path = Path(output_dir) / f"{name or 'demo-' + preset}.pth"
    with_progress = sys.stderr.isatty()
    if with_progress:
        typer.echo(f"building {preset} from upstream RVC code ...", err=True)
    write_demo_voice(path, preset, seed, flavor)
    typer.echo(f"wrote {path}")


if __name__ == "__main__":  # pragma: no cover
    app()
