"""`rvc-ios`: thin command line over the package. Parses, calls, prints; user mistakes exit non-zero."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

from . import __version__
from .core.errors import RvcIosError

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
        except OSError as exc:
            # The file system refused (missing or read-only folder, disk full): the user's to fix, not our bug.
            typer.echo(f"error: {describe_os_error(exc)}", err=True)
            raise typer.Exit(OS_ERROR_EXIT) from None

    return wrapper


# Exit code when the operating system refuses a read or write: the same as for a file or option we refuse.
OS_ERROR_EXIT = 2


def describe_os_error(exc: OSError) -> str:
    """One sentence: what failed, on which path, and what to check. Outputs are written to temporary files
    and renamed, so a failed write leaves nothing partial behind."""
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    return (
        f"the system refused{where}: {reason}. Check that the folder exists (or can be created), is writable "
        "and has free space; nothing partial was left behind."
    )


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rvc-ios-tools {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="First print which OpenBLAS kernel the MLX "
                                 "reference runs on, and why (a generic fallback on a newer CPU is replaced)."),
) -> None:
    if verbose:
        from .core import blas

        typer.echo(blas.kernel_description(), err=True)


@app.command()
@user_errors
def inspect(
    file: Path = typer.Argument(..., help="An RVC voice file (.pth) from RVC WebUI or Applio, or a content encoder "
                                "(hubert_base.pt, or a Hugging Face folder with config.json)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a summary."),
) -> None:
    """Load a voice or content encoder safely (no pickle code runs) and show what it is: flavor, version, rate,
    f0, config; for a content encoder its format and architecture."""
    from .core.errors import CorruptFileError
    from .hubert.convert import is_hubert_source
    from .voice.checkpoint import load_voice

    if is_hubert_source(file):
        inspect_hubert(file, as_json)
        return
    if file.is_dir():
        raise CorruptFileError(f"{file} is a folder without config.json: pass a voice .pth, a content encoder .pt, or "
                               "a Hugging Face folder holding config.json and model.safetensors.")
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


def inspect_hubert(source: Path, as_json: bool) -> None:
    from .hubert.convert import load_hubert, plan_hubert_conversion

    checkpoint = load_hubert(source)
    # Checked as strictly as `export --hubert` checks it: every tensor the config implies, with its shape.
    plan_hubert_conversion(checkpoint.state_dict, checkpoint.architecture, str(checkpoint.weights_file))
    summary = {
        "file": str(source),
        "kind": "hubert",
        "flavor": checkpoint.flavor,
        "weights_file": checkpoint.weights_file.name,
        "parameter_count": checkpoint.parameter_count,
        "tensor_count": len(checkpoint.state_dict),
        "dtype": ",".join(checkpoint.dtypes),
        "features": "v1 (final_proj) and v2" if checkpoint.architecture["final_proj_dim"] else "v2 only (no final_proj)",
        "architecture": checkpoint.architecture,
        "not_weights": list(checkpoint.dropped_entries),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"{source}")
    for key in ("kind", "flavor", "weights_file", "parameter_count", "tensor_count", "dtype", "features"):
        typer.echo(f"  {key:<18} {summary[key]}")
    if summary["not_weights"]:
        typer.echo(f"  {'not weights':<18} {', '.join(summary['not_weights'])} (dropped on export)")
    typer.echo("  architecture:")
    for key, value in summary["architecture"].items():
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
    index: Optional[Path] = typer.Option(
        None, "--index", help="Also (or only) export a retrieval index (RVC's added_IVF..._Flat_....index). With "
        "--model-name and no --index, an .index beside the voice is found as RVC WebUI finds it."
    ),
    index_dtype: str = typer.Option("float32", "--index-dtype", help="Stored dtype of the index vectors: float32 or "
                                    "float16 (half the size; its effect on retrieval is measured and printed)."),
    hubert: Optional[Path] = typer.Option(
        None, "--hubert", help="Also (or only) export a content encoder: a fairseq file (hubert_base.pt, ContentVec) or a "
        "Hugging Face folder (config.json + model.safetensors or pytorch_model.bin); named after the file or folder."
    ),
    coreml: bool = typer.Option(False, "--coreml", help="Also write Core ML .mlpackages of the voice, --rmvpe and/or --hubert, "
                                "with a kind-coreml manifest (NAME.voice.coreml.json); see the README's Core ML section."),
    compute_precision: str = typer.Option("float32", "--compute-precision", help="With --coreml: float32, float16 or "
                                          "mixed (convolutions in fp16). Inputs and outputs stay float32."),
    frames: str = typer.Option("200,400,800,1600", "--frames", help="With --coreml: the text encoder and flow's frame "
                               "buckets (100 frames a second), one function each in one package."),
    compress: str = typer.Option("none", "--compress", help="With --coreml: none, int8 (linear) or palette6 (k-means)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Convert a voice to Swift-named, channels-last safetensors plus a schema-checked JSON manifest.

    Weight norm is folded exactly as PyTorch does, every tensor is renamed by one rule table, and any tensor
    no rule knows is an error. Nothing partial is left behind on failure.
    """
    from .core.export import StepReporter
    from .core.locate import find_model
    from .core.locate import models_dir as resolve_models_dir
    from .voice.export import export_voice

    if model_name is None and rmvpe is None and index is None and hubert is None:
        raise RvcIosError("Nothing to export: give --model-name NAME (a voice), --rmvpe PATH, --index PATH and/or "
                          "--hubert PATH.")
    reporter = StepReporter(enabled=not quiet)
    if coreml:
        from .coreml.export import export_coreml

        source = find_model(model_name, resolve_models_dir(models_dir)) if model_name is not None else None
        for line in export_coreml(source, model_name, rmvpe, output_dir, dtype=dtype, precision=compute_precision,
                                  frames=frames, compression=compress, reporter=reporter, hubert=hubert):
            typer.echo(line)
        return
    from .core.files import staged_outputs

    # Every export lands in a staging folder first and moves into place only once all have succeeded, so a bad
    # index after a good voice leaves neither behind; what was written is printed once it has landed.
    written: list[str] = []
    with staged_outputs(output_dir) as staging:
        def landed(path: Path) -> Path:
            return output_dir / Path(path).name

        if model_name is not None:
            source = find_model(model_name, resolve_models_dir(models_dir))
            typer.echo(f"Exporting {source} -> {output_dir}/", err=True)
            result = export_voice(source, staging, model_name, dtype, reporter)
            written.append(f"wrote {landed(result.weights_path)} ({result.tensor_count} tensors, {result.dropped_count} "
                           f"dropped by rule) and {landed(result.manifest_path)}")
        if model_name is not None or index is not None:
            from .core import manifest as manifest_io
            from .index.export import export_index, find_index_beside

            index_source = index if index is not None else find_index_beside(source, model_name)
            if index_source is None:
                typer.echo(f"no .index beside {source} names {model_name!r}; exported the voice without retrieval", err=True)
            else:
                index_name = f"{model_name}.index" if model_name is not None else Path(index_source).stem
                typer.echo(f"Exporting index {index_source} -> {output_dir}/", err=True)
                # The index's vectors are the voice's content features: 256 wide for v1, 768 for v2.
                voice_dim = manifest_io.read_manifest(result.manifest_path)["feature_dim"] if model_name is not None else None
                exported = export_index(index_source, staging, index_name, index_dtype, reporter, feature_dim=voice_dim)
                written.append(f"wrote {landed(exported.weights_path)} ({exported.index.ntotal} vectors of "
                               f"{exported.index.d}, {exported.index.nlist} lists, nprobe {exported.index.nprobe}) and "
                               f"{landed(exported.manifest_path)}")
                if exported.float16_effect is not None:
                    written.append(exported.float16_effect.summary())
        if rmvpe is not None:
            from .rmvpe.export import export_rmvpe

            typer.echo(f"Exporting RMVPE {rmvpe} -> {output_dir}/", err=True)
            weights_path, manifest_path = export_rmvpe(rmvpe, staging, dtype, reporter)
            written.append(f"wrote {landed(weights_path)} and {landed(manifest_path)}")
        if hubert is not None:
            from .hubert.export import export_hubert

            typer.echo(f"Exporting content encoder {hubert} -> {output_dir}/", err=True)
            weights_path, manifest_path = export_hubert(hubert, staging, dtype, reporter)
            written.append(f"wrote {landed(weights_path)} and {landed(manifest_path)}")
    for line in written:
        typer.echo(line)


@app.command("demo-model")
@user_errors
def demo_model(
    preset: str = typer.Option("v2-40k", "--preset", help="Voice preset, e.g. v2-40k, v1-48k-nof0, v2-32k-tiny. `--list` shows all."),
    name: Optional[str] = typer.Option(None, "--name", help="File stem to write (default: demo-<preset>)."),
    output_dir: Path = typer.Option(Path("assets/weights"), "--output-dir", help="Folder to write NAME.pth into."),
    seed: int = typer.Option(0, "--seed", help="Seed for every parameter."),
    flavor: str = typer.Option("rvc-webui", "--flavor", help="File format: rvc-webui or applio."),
    list_presets: bool = typer.Option(False, "--list", help="List presets and exit."),
    rmvpe: bool = typer.Option(False, "--rmvpe", help="Write a seeded RMVPE pitch model (rmvpe.pt format) instead."),
    rmvpe_preset: str = typer.Option("full", "--rmvpe-preset", help="With --rmvpe: full (rmvpe.pt's network) or tiny."),
    hubert: Optional[str] = typer.Option(None, "--hubert", help="Write a seeded content encoder instead, as `fairseq` "
                                         "(NAME.pt like hubert_base.pt) or `huggingface` (folder NAME/ with config.json)."),
    hubert_preset: str = typer.Option("full", "--hubert-preset", help="With --hubert: full (HuBERT-base) or tiny."),
    index_for: Optional[str] = typer.Option(None, "--index-for", help="Write a seeded retrieval index for voice NAME "
                                            "instead (added_IVF..._NAME_v2.index, as RVC's train_index builds one)."),
    index_version: str = typer.Option("v2", "--index-version", help="With --index-for: v1 (256-d) or v2 (768-d)."),
) -> None:
    """Write a deterministic demo voice in the real upstream (or Applio) format, from upstream's model code.

    Same preset, seed and flavor give a byte-identical file. Needs the upstream `rvc` package (installed by the
    README's set-up command).
    """
    from .voice.demo import PRESETS, write_demo_voice

    if list_presets:
        for key, spec in sorted(PRESETS.items()):
            typer.echo(f"{key:<20} {spec.version} {spec.sample_rate_tag} f0={int(spec.f0)}")
        return
    if rmvpe:
        from .rmvpe.demo import write_demo_rmvpe

        from .rmvpe.demo import DEMO_ARCHITECTURES

        if rmvpe_preset not in DEMO_ARCHITECTURES:
            raise RvcIosError(f"--rmvpe-preset must be one of {', '.join(DEMO_ARCHITECTURES)}, not {rmvpe_preset!r}.")
        path = write_demo_rmvpe(Path(output_dir) / f"{name or 'rmvpe'}.pt", seed=seed, preset=rmvpe_preset)
        typer.echo(f"wrote {path}")
        return
    if hubert is not None:
        from .hubert.demo import DEMO_ARCHITECTURES as HUBERT_PRESETS
        from .hubert.demo import write_demo_fairseq, write_demo_hf_folder

        if hubert_preset not in HUBERT_PRESETS:
            raise RvcIosError(f"--hubert-preset must be one of {', '.join(HUBERT_PRESETS)}, not {hubert_preset!r}.")
        if hubert == "fairseq":
            path = write_demo_fairseq(Path(output_dir) / f"{name or 'hubert_base'}.pt", seed=seed, preset=hubert_preset)
        elif hubert == "huggingface":
            path = write_demo_hf_folder(Path(output_dir) / (name or "hubert_base"), seed=seed, preset=hubert_preset)
        else:
            raise RvcIosError(f"--hubert must be fairseq or huggingface, not {hubert!r}.")
        typer.echo(f"wrote {path}")
        return
    if index_for is not None:
        import numpy as np

        from .index.demo import build_index, ivf_list_count

        dims = {"v1": 256, "v2": 768}
        if index_version not in dims:
            raise RvcIosError(f"--index-version must be v1 or v2, not {index_version!r}.")
        rows = 3000
        features = (np.random.default_rng(seed).standard_normal((rows, dims[index_version])) * 0.5).astype(np.float32)
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        target = Path(output_dir) / f"added_IVF{ivf_list_count(rows)}_Flat_nprobe_1_{index_for}_{index_version}.index"
        typer.echo(f"wrote {build_index(features, target, seed=seed)}")
        return
    path = Path(output_dir) / f"{name or 'demo-' + preset}.pth"
    with_progress = sys.stderr.isatty()
    if with_progress:
        typer.echo(f"building {preset} from upstream RVC code ...", err=True)
    write_demo_voice(path, preset, seed, flavor)
    typer.echo(f"wrote {path}")


@app.command()
@user_errors
def verify(
    model_name: str = typer.Option(..., "--model-name", help="Exported model: NAME.manifest.json + its weights file."),
    assets: Path = typer.Option(Path("Assets"), "--assets", help="Folder holding the export (`export --output-dir`)."),
    source: Optional[Path] = typer.Option(
        None, "--source", help="Also check that the export was made from this .pth / rmvpe.pt (its sha256)."
    ),
) -> None:
    """Check an export before shipping it: manifest, every tensor's shape, dtype and checksum.

    The manifest is checked against its schema and format version, then every tensor of the weights file
    against its row (key, shape, dtype, XXH64 of its bytes), with no tensor on one side only. Exit 0 when
    everything matches, 2 with the first problem otherwise.
    """
    from .core.errors import CorruptFileError, ManifestError
    from .core.files import sha256_file
    from .core.manifest import load_exported

    document, tensors = load_exported(assets, model_name)
    if source is not None:
        if not source.is_file():
            raise CorruptFileError(f"{source} does not exist or is not a file; check the --source path.")
        expected = document["source"]["sha256"]
        if sha256_file(source) != expected:
            raise ManifestError(
                f"{assets / (model_name + '.manifest.json')} was exported from a file with sha256 {expected} "
                f"({document['source']['file_name']}), not from {source}. Export {source} again."
            )
    total = sum(array.nbytes for array in tensors.values())
    typer.echo(f"{assets / document['weights_file']}: OK")
    typer.echo(f"  {'kind':<14} {document['kind']}")
    typer.echo(f"  {'tensors':<14} {len(tensors)} ({total / 1e6:.1f} MB of {document['dtype']}), every XXH64 checked")
    typer.echo(f"  {'source':<14} {document['source']['file_name']} (sha256 {document['source']['sha256'][:16]}...)"
               + (", matches --source" if source is not None else ""))
    typer.echo(f"  {'format':<14} manifest {document['format_version']}, written by rvc-ios-tools {document['tool']['version']}")


golden_app = typer.Typer(
    help="Golden sets (every input, noise draw and intermediate of one reference run) and the diff against them.",
    no_args_is_help=True,
)
app.add_typer(golden_app, name="golden")


@golden_app.command("generate")
@user_errors
def golden_generate(
    assets: Path = typer.Option(Path("Assets"), "--assets", help="Folder with NAME.safetensors + NAME.manifest.json (from `rvc-ios export`)."),
    model_name: str = typer.Option(..., "--model-name", help="Exported model to run."),
    output: Path = typer.Option(..., "--output", help="Golden set folder to write (golden.safetensors + index.json)."),
    inputs: Optional[Path] = typer.Option(
        None, "--inputs", help="Inputs file (.safetensors/.npz with phone, phone_lengths, pitch, pitchf, sid, and "
        "optionally the random draws noise.z_p (1, inter, T), noise.nsf (1, T*upp, 1), noise.nsf_phase (1, 1), e.g. "
        "from `rvc-ios capture-upstream`). Default: synthesised from --seed."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for synthesised inputs and for every noise draw the inputs file "
                             "does not hold."),
    seconds: float = typer.Option(2.0, "--seconds", help="Length of synthesised inputs (voice: 100 frames per second)."),
    kind: str = typer.Option("voice", "--kind", help="voice (synthesizer), rmvpe (pitch model exported with --rmvpe), "
                             "hubert (content encoder exported with --hubert) or index (retrieval index exported with --index)."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="rmvpe, hubert: a 16 kHz mono 16-bit WAV (default: a test "
                                         "signal from --seed)."),
    v1_convention: str = typer.Option("rvc", "--v1-convention", help="hubert: v1 features as RVC reads them, "
                                      "final_proj(layer 9), or as Applio does, final_proj(last layer)."),
    pad_mode: str = typer.Option("reflect", "--pad-mode", help="rmvpe: frame padding to a multiple of 32: reflect "
                                 "(RVC WebUI, Applio) or constant (the rvc 0.3.5 package)."),
    index_rate: float = typer.Option(0.75, "--index-rate", help="index: how much of the retrieved features the "
                                     "blend takes (RVC's default 0.75). Features: --inputs FILE holding `feats` (1, T, C), "
                                     "else synthesised near the index's vectors from --seed, 50 frames per second."),
) -> None:
    """Run the MLX reference on exported weights and write its golden set.

    Voice: every random draw of upstream inference (noise.z_p, noise.nsf, noise.nsf_phase) is stored as an input,
    so a port fed the same file must reproduce every stage to about 110 dB SNR. RMVPE: audio, log-mel, every
    U-Net stage, GRU, salience and f0.
    """
    from .rmvpe.golden import generate_rmvpe_golden
    from .voice.golden import generate_voice_golden

    if kind == "voice":
        golden = generate_voice_golden(assets, model_name, output, inputs_file=inputs, seed=seed, seconds=seconds)
    elif kind == "rmvpe":
        if pad_mode not in ("reflect", "constant"):
            raise RvcIosError(f"--pad-mode must be reflect or constant, not {pad_mode!r}.")
        golden = generate_rmvpe_golden(assets, model_name, output, audio_file=audio, seed=seed, seconds=seconds,
                                       pad_mode=pad_mode)
    elif kind == "hubert":
        from .hubert.golden import generate_hubert_golden
        from .hubert.stages import V1_CONVENTIONS

        if v1_convention not in V1_CONVENTIONS:
            raise RvcIosError(f"--v1-convention must be one of {', '.join(V1_CONVENTIONS)}, not {v1_convention!r}.")
        golden = generate_hubert_golden(assets, model_name, output, audio_file=audio, seed=seed, seconds=seconds,
                                        v1_convention=v1_convention)
    elif kind == "index":
        from .index.golden import generate_index_golden, read_feats

        golden = generate_index_golden(assets, model_name, output, feats=read_feats(inputs) if inputs else None,
                                       seed=seed, seconds=seconds, index_rate=index_rate)
    else:
        raise RvcIosError(f"--kind must be voice, rmvpe, hubert or index, not {kind!r}.")
    typer.echo(f"wrote {output} ({len(golden.tensors)} tensors, {len(golden.stage_table.stages)} stages)")


coreml_app = typer.Typer(help="Core ML packages written by `export --coreml`.", no_args_is_help=True)
app.add_typer(coreml_app, name="coreml")


@coreml_app.command("run")
@user_errors
def coreml_run(
    golden_dir: Path = typer.Argument(..., help="A golden set (voice or rmvpe): its inputs and noise are fed in."),
    model_name: str = typer.Option(..., "--model-name", help="The name the packages were exported under."),
    assets: Path = typer.Option(Path("Assets"), "--assets", help="Folder of the packages and their .coreml.json."),
    output: Path = typer.Option(Path("coreml-candidate.safetensors"), "--output", help="Candidate for `golden diff`."),
    predict: bool = typer.Option(sys.platform == "darwin", "--predict/--interpreter", help="Core ML predictions "
                                 "(macOS only) or the numpy MIL interpreter (any platform; checks the conversion, "
                                 "not Apple's runtime). Default: predictions on macOS."),
    source: str = typer.Option("host", "--source", help="voice: dec.source from the host (MLX reference) or the "
                               "coreml nsf_source package."),
) -> None:
    """Run the Core ML packages on a golden set's inputs and write a candidate for `rvc-ios golden diff`."""
    from .coreml.run import run_golden_set

    path = run_golden_set(golden_dir, assets, model_name, output, predict=predict, source=source)
    typer.echo(f"wrote {path}; compare it with `rvc-ios golden diff {golden_dir} {path}`")


@app.command("convert")
@user_errors
def convert_command(
    model_name: str = typer.Option(..., "--model-name", help="Voice to convert into (NAME.pth or NAME/ in --models-dir)."),
    input_path: Path = typer.Option(..., "--input", help="WAV to convert: 8/16/24/32-bit PCM or float, mono or "
                                    "stereo, any rate (resampled to 16 kHz with soxr HQ)."),
    output: Path = typer.Option(..., "--output", help="WAV to write: 16-bit PCM at the voice's rate (or --resample-sr)."),
    models_dir: Optional[Path] = typer.Option(None, "--models-dir", help="Where voices live (default: $RVC_MODELS_DIR, else ./assets/weights)."),
    pitch: float = typer.Option(0.0, "--pitch", help="Transpose by this many semitones (+12: an octave up)."),
    index: Optional[Path] = typer.Option(None, "--index", help="The voice's .index (default: found beside the voice "
                                         "as RVC WebUI finds it, a file whose path names the voice and not 'trained')."),
    no_index: bool = typer.Option(False, "--no-index", help="Convert without retrieval even if an index is found."),
    index_rate: float = typer.Option(0.75, "--index-rate", help="How much of the retrieved features to use (0..1)."),
    protect: float = typer.Option(0.33, "--protect", help="Keep raw features on unvoiced frames (0..0.5; 0.5 is off)."),
    rms_mix_rate: float = typer.Option(0.25, "--rms-mix-rate", help="Loudness envelope: 1 keeps the output's, 0 takes the input's."),
    resample_sr: int = typer.Option(0, "--resample-sr", help="Resample the output to this rate (0: the voice's rate)."),
    rmvpe: Path = typer.Option(Path("assets/rmvpe/rmvpe.pt"), "--rmvpe", help="RVC's rmvpe.pt (voices with pitch)."),
    hubert: Path = typer.Option(Path("assets/hubert/hubert_base.pt"), "--hubert", help="The content encoder: "
                                "hubert_base.pt (fairseq) or a Hugging Face folder (config.json + weights)."),
    sid: int = typer.Option(0, "--sid", help="Speaker id, for voices with several speakers."),
    seed: int = typer.Option(0, "--seed", help="Seed for every random draw the --noise file does not hold."),
    noise: Optional[Path] = typer.Option(None, "--noise", help="safetensors of per-segment draws "
                                         "(segment.K.noise.z_p, .nsf, .nsf_phase) to replay a run."),
    golden: Optional[Path] = typer.Option(None, "--golden", help="Also write every stage as a golden set (kind pipeline)."),
    rmvpe_pad_mode: str = typer.Option("constant", "--rmvpe-pad-mode", help="RMVPE's frame padding: constant "
                                       "(the rvc 0.3.5 package) or reflect (Applio)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Convert speech into the voice with the MLX reference, as upstream's pipeline (rvc 0.3.5, CPU) does.

    Peak normalisation, the 48 Hz high-pass, splitting long audio at quiet points, RMVPE pitch once on the
    whole signal, content features and retrieval per segment, the synthesizer per segment, RMS mixing and int16.
    """
    import numpy as np
    import safetensors.numpy

    from .core.files import atomic_output, sha256_file
    from .core.locate import find_model
    from .core.locate import models_dir as resolve_models_dir
    from .core.wav import mix_to_mono, read_wav, resample, write_wav_int16
    from .index.export import find_index_beside
    from .pipeline.convert import ConvertOptions, convert, networks_from_sources
    from .pipeline.golden import write_pipeline_golden

    def say(message: str) -> None:
        if not quiet:
            typer.echo(f"  {message}", err=True)

    options = ConvertOptions(pitch=pitch, index_rate=index_rate, protect=protect, rms_mix_rate=rms_mix_rate,
                             resample_sr=resample_sr, sid=sid, seed=seed, rmvpe_pad_mode=rmvpe_pad_mode)
    options.check()
    source = find_model(model_name, resolve_models_dir(models_dir))
    if not Path(hubert).exists():
        raise RvcIosError(f"No content encoder at {hubert}; pass --hubert PATH to hubert_base.pt or a Hugging Face folder.")
    index_path = None if no_index else (index or find_index_beside(source, model_name))
    if index_path is not None and not Path(index_path).is_file():
        raise RvcIosError(f"No index file at {index_path}; pass the voice's .index or --no-index.")
    say(f"reading {input_path}")
    recording = read_wav(input_path)
    audio = resample(mix_to_mono(recording.samples), recording.sample_rate, 16000)
    given = {}
    if noise is not None:
        try:
            given = safetensors.numpy.load_file(str(noise))
        except Exception as exc:  # a damaged file is the user's to fix
            raise RvcIosError(f"{noise} is not a readable safetensors file ({exc}); check the path, or record the "
                              "draws again (`rvc-ios capture-upstream --input`).") from None
    networks = networks_from_sources(source, Path(hubert), Path(rmvpe) if rmvpe else None, index_path, say)
    say(f"converting {audio.size / 16000:.1f} s of audio" + (f" with {index_path.name}" if index_path else " without an index"))
    stages = convert(networks, audio, options, noise=given, progress=say, noise_source=str(noise))
    # The WAV lands only once the golden set (written atomically itself) has: both, or neither.
    with atomic_output(output) as output_tmp:
        write_wav_int16(output_tmp, stages["output"], stages["output_rate"])
        if golden is not None:
            write_pipeline_golden(golden, stages, model_name=model_name, source_sha256=sha256_file(source),
                                  options=options,
                                  extra={"input": str(input_path), "index": str(index_path) if index_path else None})
    if golden is not None:
        say(f"wrote the golden set {golden}")
    peak = int(np.abs(stages["output"].astype(np.int32)).max())
    typer.echo(f"wrote {output} ({stages['output'].size / stages['output_rate']:.2f} s at {stages['output_rate']} Hz, "
               f"{1 + len(stages['split_points'])} segment(s), loudest sample {peak} of 32767)")


@app.command("capture-upstream")
@user_errors
def capture_upstream(
    model_name: str = typer.Option(..., "--model-name", help="Voice to run (NAME.pth or NAME/ in --models-dir)."),
    models_dir: Optional[Path] = typer.Option(None, "--models-dir", help="Where voices live (default: $RVC_MODELS_DIR, else ./assets/weights)."),
    output: Path = typer.Option(..., "--output", help="Folder for inputs.safetensors and upstream.safetensors."),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help="Inputs file (as `golden generate --inputs`; "
                                          "noise in it is ignored: upstream draws its own). Default: synthesised from --seed."),
    seed: int = typer.Option(0, "--seed", help="Seed for synthesised inputs."),
    seconds: float = typer.Option(2.0, "--seconds", help="Length of synthesised inputs."),
    torch_seed: int = typer.Option(0, "--torch-seed", help="torch.manual_seed for upstream's own random draws."),
    audio_input: Optional[Path] = typer.Option(None, "--input", help="A WAV: run upstream's whole pipeline on it "
                                               "instead of the synthesizer alone (needs --hubert, and --rmvpe for pitch)."),
    hubert: Optional[Path] = typer.Option(None, "--hubert", help="With --input: the content encoder as a Hugging Face folder."),
    rmvpe: Optional[Path] = typer.Option(None, "--rmvpe", help="With --input: rmvpe.pt."),
    index: Optional[Path] = typer.Option(None, "--index", help="With --input: the voice's .index (none: no retrieval)."),
    pitch: float = typer.Option(0.0, "--pitch", help="With --input: semitones, as `convert --pitch`."),
) -> None:
    """Run upstream PyTorch (the test-only rvc==0.3.5) on your voice with its own random draws, recorded.

    With --input WAV, upstream's whole pipeline runs (rvc.modules.vc.pipeline, default options but --pitch) and
    OUTPUT/noise.safetensors holds its per-segment draws for `rvc-ios convert --noise`, OUTPUT/upstream.safetensors
    its segments' synthesizer inputs and audio and the output, a candidate for the golden set of `convert --golden`.

    Writes OUTPUT/inputs.safetensors (the inputs and upstream's draws, for `rvc-ios golden generate --inputs`)
    and OUTPUT/upstream.safetensors (upstream's every stage, a candidate for `rvc-ios golden diff`), so the MLX
    reference, and through its golden set your port, are held to PyTorch on your own voice:

      rvc-ios capture-upstream --model-name Drake --output up/
      rvc-ios golden generate --assets Assets --model-name Drake --inputs up/inputs.safetensors --output golden/Drake
      rvc-ios golden diff golden/Drake up/upstream.safetensors
    """
    from .core.export import StepReporter
    from .core.locate import find_model
    from .core.locate import models_dir as resolve_models_dir
    from .voice.upstream import write_upstream_capture

    source = find_model(model_name, resolve_models_dir(models_dir))
    if audio_input is not None:
        from .core.wav import mix_to_mono, read_wav, resample
        from .pipeline.convert import ConvertOptions
        from .pipeline.upstream import write_pipeline_capture

        if hubert is None:
            raise RvcIosError("--input runs upstream's pipeline, which needs the content encoder: pass --hubert FOLDER.")
        recording = read_wav(audio_input)
        audio = resample(mix_to_mono(recording.samples), recording.sample_rate, 16000)
        with StepReporter().step(f"running upstream's pipeline on {audio_input.name} with {source.name}"):
            noise_path, candidate_path = write_pipeline_capture(source, hubert, rmvpe, index, audio,
                                                                ConvertOptions(pitch=pitch), output, torch_seed)
        typer.echo(f"wrote {noise_path} (upstream's draws per segment) and {candidate_path} (upstream's stages)")
        return
    with StepReporter().step(f"running upstream PyTorch on {source.name}"):
        inputs_path, candidate_path = write_upstream_capture(
            source, output, inputs_file=inputs, seed=seed, seconds=seconds, torch_seed=torch_seed
        )
    typer.echo(f"wrote {inputs_path} (inputs and upstream's draws) and {candidate_path} (upstream's every stage)")


@golden_app.command("diff")
def golden_diff(
    golden: Path = typer.Argument(..., help="Golden set folder."),
    candidate: Path = typer.Argument(..., help="Candidate .safetensors (any subset of the golden names; layouts "
                                     "declared as `layout.<name>` metadata)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON (schemas/parity-report.schema.json)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Folder for one PNG per failing stage (golden vs candidate, difference)."),
) -> None:
    """Compare a candidate stage by stage; name the first divergent stage and known port-bug signatures.

    Exit code 0: every stage passes its tolerance; 1: a stage diverges; 2: bad input.
    """
    from .core.diff_command import run_diff_command

    raise typer.Exit(run_diff_command(golden, candidate, json_out, plot))


@app.command()
@user_errors
def parity(
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Your voice (in --models-dir). Default: the embedded full-size demo voice."),
    models_dir: Optional[Path] = typer.Option(None, "--models-dir", help="Where voices live (default: $RVC_MODELS_DIR, else ./assets/weights)."),
    work_dir: Path = typer.Option(Path("parity-out"), "--work-dir", help="Where exports, goldens, Swift outputs and reports go."),
    demos_dir: Optional[Path] = typer.Option(None, "--demos-dir", help="The Swift package (default: Demos/ of this repository)."),
    seconds: float = typer.Option(2.0, "--seconds", help="Seconds of synthesised audio."),
    seed: int = typer.Option(0, "--seed", help="Seed for inputs and noise."),
) -> None:
    """The one-command proof: export, golden set, build Swift, run RVCNativeMac chained and teacher-forced, diff.

    Prints the per-stage table for each mode; exit 0 only if every stage of both modes passes (>= 80 dB).
    """
    from .core.locate import models_dir as resolve_models_dir
    from .voice.parity import REPO_ROOT, run_parity

    outcomes = run_parity(
        model_name=model_name,
        models_dir=resolve_models_dir(models_dir),
        work_dir=work_dir,
        demos_dir=demos_dir or REPO_ROOT / "Demos",
        seconds=seconds,
        seed=seed,
    )
    for outcome in outcomes:
        typer.echo(f"\n## Swift RVCNativeMac vs MLX reference: {outcome.mode}\n")
        typer.echo(outcome.table)
        verdict = "PASS" if outcome.passed else f"FAIL (first divergent stage: {outcome.first_divergent_stage})"
        typer.echo(f"\n{outcome.mode}: {verdict}; lowest SNR {outcome.min_snr_db:.1f} dB; report {outcome.report_path}")
    raise typer.Exit(0 if all(o.passed for o in outcomes) else 1)


if __name__ == "__main__":  # pragma: no cover
    app()
