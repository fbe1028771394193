"""Is the MLX reference's gap to upstream on a long full-size conversion a bug in our port, or the float32
conditioning of the computation itself? Measure both sides against a float64 run of upstream's own code.

On the demo assets and speech of `tests/test_pipeline_parity.py`'s slow case (v2 40k voice, RMVPE, content
encoder, an index; `--size tiny` for the tiny ones), this runs:

- (a) upstream's `Pipeline.pipeline` (rvc 0.3.5) in float32, its random draws recorded per segment;
- (b) upstream in float64, with (a)'s draws: `b` is the voice's synthesizer (`net_g.double()`, torch's default
  dtype float64 so SineGen's buffers are float64 too) on (a)'s exact synthesizer inputs; `b full` is the whole
  pipeline with the content encoder, RMVPE and the synthesizer in float64 (upstream's own float32 casts of the
  segment audio into the encoder, of the features into faiss and of pitchf stay, as its code makes them);
- (c) ours (MLX, float32) with (a)'s draws: the conversion as `convert` runs it (`c pipeline`); the synthesizer
  on (a)'s exact inputs, chained through its stages (`c`, the teacher-forced check); and every stage alone on
  (a)'s inputs of that stage (`c local`);
- upstream's float32 synthesizer again with one input taken from ours instead of (a) (`a, our pitchf`,
  `a, our phone`), to see which input difference the synthesizer amplifies.

Printed per segment: the SNR of every synthesizer stage for each pair (reference first: `a/b` is a held to b)
and of the synthesizer inputs; then per variant the float output's SNR and the int16 output's largest
difference from (a) and from (b). Each phase runs in its own process (the full-size float64 and MLX runs of a
38 s segment do not fit beside everything before them in 23 GB): about 35 minutes at full size on two cores,
with up to 18 GB resident (the 38 s segment's phase); a minute or two at `--size tiny`.

    python scripts/pipeline_precision_probe.py                    # full size, 45 s (two segments)
    python scripts/pipeline_precision_probe.py --size tiny --seconds 3
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

PRESETS = {"full": "v2-40k", "tiny": "v2-40k-tiny"}
STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def float64_by_default():
    """torch's default dtype float64: upstream's SineGen makes its f0 buffer with `torch.zeros` (default dtype),
    so `net_g.double()` alone would keep the sine's phase in float32."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# Output samples per convolution call in the float64 synthesizer. torch has no fast float64 convolution on the
# CPU: its fallback unfolds the input (im2col), which for a 40 s segment's last stage (32 channels, kernel 11,
# 1.6 M samples) alone is 4.5 GB. Convolving in pieces of the output gives the same sums.
CONVOLUTION_CHUNK = 1 << 16


def return_freed_memory(*_) -> None:
    """glibc keeps what torch's float64 fallback frees in its heaps (4 s of the full-size decoder in float64
    leaves 2.7 GB resident, 40 s over 20 GB, and the machine runs out); give it back to the system."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def float64_model(model):
    """`model` in float64, giving freed memory back after every layer."""
    model.double()
    for module in model.modules():
        if not any(module.children()):
            module.register_forward_hook(return_freed_memory)
    return model


def conv1d_in_chunks(module, x):
    """`module(x)` for a torch Conv1d (zero padding), computed CONVOLUTION_CHUNK outputs at a time."""
    import torch
    import torch.nn.functional as F

    (kernel,), (stride,), (padding,), (dilation,) = module.kernel_size, module.stride, module.padding, module.dilation
    span = dilation * (kernel - 1) + 1
    length = (x.shape[-1] + 2 * padding - span) // stride + 1
    padded = F.pad(x, (padding, padding))
    pieces = [F.conv1d(padded[..., start * stride : (min(start + CONVOLUTION_CHUNK, length) - 1) * stride + span],
                       module.weight, module.bias, stride, 0, dilation, module.groups)
              for start in range(0, length, CONVOLUTION_CHUNK)]
    return torch.cat(pieces, dim=-1)


def conv_transpose1d_in_chunks(module, x):
    """`module(x)` for a torch ConvTranspose1d (no dilation, groups or output padding), input pieces overlap-added."""
    import torch.nn.functional as F

    (kernel,), (stride,), (padding,) = module.kernel_size, module.stride, module.padding
    assert module.dilation == (1,) and module.groups == 1 and module.output_padding == (0,)
    full = x.new_zeros(x.shape[0], module.out_channels, (x.shape[-1] - 1) * stride + kernel)
    step = max(CONVOLUTION_CHUNK // stride, 1)
    for start in range(0, x.shape[-1], step):
        piece = F.conv_transpose1d(x[..., start : start + step], module.weight, None, stride)
        full[..., start * stride : start * stride + piece.shape[-1]] += piece
    out = full[..., padding : full.shape[-1] - padding]
    return out if module.bias is None else out + module.bias[:, None]


def convolutions_in_chunks(model) -> None:
    """Every Conv1d and ConvTranspose1d of `model` convolves in pieces from now on (forward hooks, such as
    weight norm's, still run: only `forward` is replaced)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Conv1d):
            module.forward = lambda x, _module=module: conv1d_in_chunks(_module, x)
        elif isinstance(module, torch.nn.ConvTranspose1d):
            module.forward = lambda x, _module=module: conv_transpose1d_in_chunks(_module, x)


@contextlib.contextmanager
def replaying_draws(net_g, noise: Mapping[str, np.ndarray]):
    """Within the block, the k-th `net_g.infer` call draws segment k's recorded noise (`segment.K.noise.*`)."""
    from rvc_ios_tools.voice.reference import NOISE_NAMES
    from rvc_ios_tools.voice.upstream import injected_noise

    original_infer, calls = net_g.infer, itertools.count()

    def infer(*args):
        k = next(calls)
        segment = {name: noise[f"segment.{k}.{name}"] for name in NOISE_NAMES if f"segment.{k}.{name}" in noise}
        with injected_noise(segment):
            return original_infer(*args)

    net_g.infer = infer
    try:
        yield
    finally:
        net_g.infer = original_infer


class Float64RMVPE:
    """Upstream's RMVPE (`rvc.lib.rmvpe.RMVPE`) in float64: its mel extractor, network and decoding, in
    `infer_from_audio`'s order (`mel2hidden` pads the log-mel with zeros to a multiple of 32 frames)."""

    def __init__(self, rmvpe):
        self.upstream = copy.deepcopy(rmvpe)
        float64_model(self.upstream.model)
        float64_model(self.upstream.mel_extractor)
        self.upstream.mel_extractor.hann_window = {}  # a float32 window cached by (a) would be reused

    def infer_from_audio(self, audio: np.ndarray, thred: float = 0.03) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            mel = self.upstream.mel_extractor(torch.from_numpy(np.asarray(audio, np.float64))[None], center=True)
            frames = mel.shape[-1]
            mel = F.pad(mel, (0, 32 * ((frames - 1) // 32 + 1) - frames), mode="constant")
            hidden = self.upstream.model(mel)[:, :frames].squeeze(0).numpy()
        return self.upstream.decode(hidden, thred=thred)


def float64_content_encoder(encoder, architecture: Mapping[str, Any]):
    """The same transformers model in float64 behind upstream's `extract_features`; upstream hands it the
    segment audio as float32 (`feats.float()`), which is widened here."""
    from rvc_ios_tools.pipeline.upstream import TransformersContentEncoder

    class Float64ContentEncoder(TransformersContentEncoder):
        def extract_features(self, source, padding_mask=None, output_layer=12):
            return super().extract_features(source.double(), padding_mask, output_layer)

    return Float64ContentEncoder(float64_model(copy.deepcopy(encoder.model)), architecture)


def segment_noise(noise: Mapping[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    prefix = f"segment.{k}."
    return {name[len(prefix):]: value for name, value in noise.items() if name.startswith(prefix)}


def widened(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: value.astype(np.float64) if value.dtype == np.float32 else value for name, value in inputs.items()}


def prefixed(prefix: str, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}{name}": value for name, value in tensors.items()}


def unprefixed(prefix: str, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name[len(prefix):]: tensors[name] for name in tensors if name.startswith(prefix)}


def snr(reference: np.ndarray, candidate: np.ndarray) -> float:
    from rvc_ios_tools.core.diff import snr_db

    reference, candidate = np.ravel(reference), np.ravel(candidate)
    n = min(reference.size, candidate.size)
    return snr_db(reference[:n], candidate[:n])


def cell(value: float | None) -> str:
    if value is None:
        return "-"
    return "identical" if value == float("inf") else f"{value:.1f}"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    sys.stdout.flush()


SWAPS = (("a, our pitchf", "pitchf"), ("a, our phone", "phone"))


def saved_names(f0: bool) -> tuple[str, ...]:
    return ("audio", "dec.source") if f0 else ("audio",)


def ours_stage_by_stage(model, voice, feed: Mapping[str, np.ndarray], references: Mapping[str, Mapping[str, np.ndarray]],
                        *, chained: bool, keep: tuple[str, ...]) -> dict[str, Any]:
    """Our synthesizer one stage at a time, each output's SNR against every reference run (by label) taken at
    once, so a 40 s segment's stages are never all held. `chained`: each stage reads our own earlier outputs
    (else only `feed`, e.g. upstream's tensors: every stage alone). Returns {label: {tensor: dB}, "kept": {...}}."""
    from rvc_ios_tools.voice.reference import run_stage, voice_spec

    table = voice_spec(voice).stage_table()
    last_use = {name: index for index, stage in enumerate(table.stages) for name in stage.inputs}
    available = dict(feed)
    figures: dict[str, Any] = {label: {} for label in references}
    figures["kept"] = {}
    for index, stage in enumerate(table.stages):
        outputs = run_stage(model, voice, stage.name, available)
        for name, value in outputs.items():
            for label, reference in references.items():
                if name in reference:
                    figures[label][name] = snr(reference[name], value)
            if name in keep:
                figures["kept"][name] = value
        if chained:
            available.update(outputs)
            for name in [n for n in available if n not in feed and last_use.get(n, -1) <= index]:
                del available[name]
        del outputs
        return_freed_memory()
    return figures


# --- the phases, each in its own process (a full-size 40 s segment's float64 and MLX runs do not fit in one
# process beside everything before them); they hand over through .npz files in a work folder ---

INPUT_NAMES = ("phone", "pitchf", "pitch")


@contextlib.contextmanager
def demo_setup(args):
    """The slow test's assets (`DemoParitySetup`), written afresh for this phase (they come from seeds)."""
    from rvc_ios_tools.pipeline.upstream import DemoParitySetup

    say(f"demo assets ({PRESETS[args.size]}, {args.size} RMVPE and content encoder, index)")
    with tempfile.TemporaryDirectory(dir=args.workdir) as root:
        yield DemoParitySetup(Path(root), PRESETS[args.size], args.size, with_index=True)


def speech_and_options(args):
    from rvc_ios_tools.hubert.demo import synthesized_speech
    from rvc_ios_tools.pipeline.convert import ConvertOptions

    return synthesized_speech(int(args.seconds * 16000)), ConvertOptions()


def pipeline_arguments(setup, speech, options) -> dict[str, Any]:
    return dict(target_rate=setup.rate, version=setup.version, f0=setup.f0, audio=speech,
                index_path=setup.index_path, options=options)


def phase_pipelines(args) -> None:
    """(a) upstream's float32 pipeline and (c) ours with its draws -> pipelines.npz."""
    from rvc_ios_tools.pipeline.convert import convert
    from rvc_ios_tools.pipeline.upstream import run_upstream_pipeline, synthesizer_call_inputs

    with demo_setup(args) as setup:
        speech, options = speech_and_options(args)
        say("(a) upstream's pipeline, float32")
        run_a = run_upstream_pipeline(setup.net_g, setup.encoder, setup.rmvpe, **pipeline_arguments(setup, speech, options))
        say("(c) ours, with (a)'s draws")
        ours = convert(setup.networks, speech, options, noise=run_a["noise"])
        tensors = {"segments": np.array(len(run_a["calls"])), "filtered": ours["filtered"], **run_a["noise"],
                   "a.float_output": run_a["float_output"], "a.output": run_a["output"],
                   "c pipeline.float_output": ours["rms_mixed"], "c pipeline.output": ours["output"]}
        for k, call in enumerate(run_a["calls"]):
            tensors.update(prefixed(f"a.{k}.", {**synthesizer_call_inputs(call, setup.f0), "audio": call["audio"]}))
            tensors.update({f"c pipeline.{k}.{name}": ours[f"segment.{k}.{name}"]
                            for name in (*INPUT_NAMES, "audio") if f"segment.{k}.{name}" in ours})
        np.savez(args.workdir / "pipelines.npz", **tensors)


def phase_float64_pipeline(args) -> None:
    """(b full) upstream's pipeline with its three networks in float64 and (a)'s draws -> float64_pipeline.npz."""
    from rvc_ios_tools.pipeline.upstream import run_upstream_pipeline, synthesizer_call_inputs
    from rvc_ios_tools.voice.upstream import upstream_model

    with demo_setup(args) as setup:
        speech, options = speech_and_options(args)
        noise = {name: value for name, value in np.load(args.workdir / "pipelines.npz").items() if ".noise." in name}
        say("(b full) upstream's pipeline, float64 (content encoder, RMVPE, synthesizer), with (a)'s draws")
        net_g64 = float64_model(upstream_model(setup.checkpoint))
        convolutions_in_chunks(net_g64)
        encoder64 = float64_content_encoder(setup.encoder, setup.assets.hubert_architecture)
        with float64_by_default(), replaying_draws(net_g64, noise):
            run = run_upstream_pipeline(net_g64, encoder64, Float64RMVPE(setup.rmvpe), **pipeline_arguments(setup, speech, options))
        tensors = {"b full.float_output": run["float_output"], "b full.output": run["output"]}
        for k, call in enumerate(run["calls"]):
            inputs = synthesizer_call_inputs(call, setup.f0)
            tensors.update(prefixed(f"b full.{k}.", {**{n: inputs[n] for n in INPUT_NAMES if n in inputs}, "audio": call["audio"]}))
        np.savez(args.workdir / "float64_pipeline.npz", **tensors)


def phase_segment(args) -> None:
    """Segment k's synthesizer: (a) again with every stage, (b) float64, ours chained and stage by stage, and
    upstream with one of our inputs; prints its tables and writes each variant's audio to segment_K.npz."""
    from rvc_ios_tools.voice.reference import synthesize, voice_spec
    from rvc_ios_tools.voice.upstream import run_upstream_voice, upstream_model

    import mlx.core as mx  # after the package, which loads OpenBLAS before mlx

    mx.set_cache_limit(0)  # no freed buffers kept: a full-size 38 s segment's stages are large
    k = args.segment
    with demo_setup(args) as setup:
        f0, model, voice = setup.f0, setup.networks.synthesizer, setup.networks.voice
        runs = {**np.load(args.workdir / "pipelines.npz"), **np.load(args.workdir / "float64_pipeline.npz")}
        inputs, noise = unprefixed(f"a.{k}.", runs), segment_noise(runs, k)
        recorded_audio = inputs.pop("audio")
        ours_inputs, b_full = unprefixed(f"c pipeline.{k}.", runs), unprefixed(f"b full.{k}.", runs)
        table = voice_spec(voice).stage_table()
        names = [spec.name for spec in table.tensors if spec.stage is not None and spec.name not in ("g", "x_mask")]
        columns: dict[str, dict[str, float]] = {}
        saved: dict[str, np.ndarray] = {}

        say(f"segment {k}: ours on (a)'s inputs, as `convert` runs the synthesizer")
        saved["c.audio"] = synthesize(model, inputs, noise)  # first: its peak is the phase's largest
        return_freed_memory()
        say(f"segment {k}: upstream's synthesizer, float32, on (a)'s inputs")
        a = run_upstream_voice(setup.net_g, f0, inputs, noise)
        say(f"segment {k}: upstream's synthesizer, float64, on (a)'s inputs")
        net_g64 = float64_model(upstream_model(setup.checkpoint))
        convolutions_in_chunks(net_g64)
        with float64_by_default():
            b = run_upstream_voice(net_g64, f0, widened(inputs), noise)
        del net_g64
        return_freed_memory()
        columns["a/b"] = {name: snr(b[name], a[name]) for name in names}
        say(f"segment {k}: ours on (a)'s inputs, chained and stage by stage")
        chained = ours_stage_by_stage(model, voice, {**inputs, **noise}, {"a": a, "b": b}, chained=True, keep=saved_names(f0))
        columns["b/c"], columns["a/c"] = chained["b"], chained["a"]
        saved.update({**prefixed("a.", {n: a[n] for n in saved_names(f0)}), **prefixed("b.", {n: b[n] for n in saved_names(f0)}),
                      **prefixed("c chained.", chained["kept"])})
        del b, chained
        columns["a/c local"] = ours_stage_by_stage(model, voice, {**inputs, **noise, **a}, {"a": a}, chained=False, keep=())["a"]
        for label, name in SWAPS:
            if name in ours_inputs:
                say(f"segment {k}: upstream's synthesizer, float32, with our {name}")
                swapped = run_upstream_voice(setup.net_g, f0, {**inputs, name: ours_inputs[name]}, noise)
                columns[f"a/({label})"] = {n: snr(a[n], swapped[n]) for n in names}
                saved[f"{label}.audio"] = swapped["audio"]
                del swapped
                return_freed_memory()
        del a

        audio = {"a": saved["a.audio"], "b": saved["b.audio"], "c": saved["c.audio"]}
        header = ["stage", "a/b", "b/c", "a/c", "a/c local", *(f"a/({label})" for label, _ in SWAPS)]
        rows = [[name, *(cell(columns.get(column, {}).get(name)) for column in header[1:])] for name in names]
        rows += [
            ["audio via `synthesize` (convert's path)", "-", cell(snr(audio["b"], audio["c"])), cell(snr(audio["a"], audio["c"])),
             "-", "-", "-"],
            ["audio, (a) re-run / (a) in the pipeline", "-", "-", cell(snr(recorded_audio, audio["a"])), "-", "-", "-"],
            ["audio, c = c pipeline (from our own inputs)", "-", cell(snr(audio["b"], ours_inputs["audio"])),
             cell(snr(audio["a"], ours_inputs["audio"])), "-", "-", "-"],
            ["audio, b = b full (float64 pipeline)", cell(snr(b_full["audio"], audio["a"])), cell(snr(b_full["audio"], audio["c"])),
             "-", "-", "-", "-"],
            ["audio, b = b full, c = c pipeline", "-", cell(snr(b_full["audio"], ours_inputs["audio"])), "-", "-", "-", "-"],
        ]
        frames = inputs["phone"].shape[1]
        print_table(f"Segment {k} ({frames} frames, {frames / 100:.1f} s): SNR in dB, reference first", header, rows)
        input_rows = [["phone", cell(snr(inputs["phone"], ours_inputs["phone"])), cell(snr(inputs["phone"], b_full["phone"]))]]
        if f0:
            input_rows += [["pitchf", cell(snr(inputs["pitchf"], ours_inputs["pitchf"])), cell(snr(inputs["pitchf"], b_full["pitchf"]))],
                           ["coarse pitch frames differing", str(int(np.sum(inputs["pitch"] != ours_inputs["pitch"]))),
                            str(int(np.sum(inputs["pitch"] != b_full["pitch"])))]]
        print_table(f"Segment {k}: synthesizer inputs against (a)'s (SNR in dB)", ["input", "c pipeline", "b full"], input_rows)
        np.savez(args.workdir / f"segment_{k}.npz", **saved)


def print_output_table(outputs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Each variant's float output (SNR) and int16 output (largest difference, samples over 1 LSB) against a and b."""
    rows = []
    for label, (floating, integer) in outputs.items():
        row = [label]
        for reference in ("a", "b (assembled)"):
            ref_float, ref_int = outputs[reference]
            diff = np.abs(integer.astype(np.int32) - ref_int.astype(np.int32))
            row += [cell(snr(ref_float, floating)), str(int(diff.max())), str(int(np.sum(diff > 1)))]
        rows.append(row)
    print_table(f"Output ({outputs['a'][1].size} int16 samples): float output SNR in dB and int16 differences",
                ["variant", "float vs a", "int16 max vs a (LSB)", "samples > 1 LSB vs a", "float vs b",
                 "int16 max vs b (LSB)", "samples > 1 LSB vs b"], rows)


def run_phase(args, phase: str, segment: int = 0) -> None:
    import subprocess

    subprocess.run([sys.executable, __file__, "--size", args.size, "--seconds", str(args.seconds), "--phase", phase,
                    "--workdir", str(args.workdir), "--segment", str(segment)], check=True)


def main(argv: list[str] | None = None) -> None:
    warnings.simplefilter("ignore", FutureWarning)  # rvc 0.3.5 uses torch's deprecated weight_norm
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(PRESETS), default="full",
                        help="full: the slow test's full-size voice, RMVPE and content encoder; tiny: the tiny ones")
    parser.add_argument("--seconds", type=float, default=45.0, help="seconds of espeak-ng speech (45: two segments)")
    parser.add_argument("--save", type=Path, help="also write every variant's segment audio and source, inputs and "
                        "outputs here (.npz)")
    parser.add_argument("--phase", choices=("pipelines", "float64-pipeline", "segment"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--segment", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase is not None:
        {"pipelines": phase_pipelines, "float64-pipeline": phase_float64_pipeline, "segment": phase_segment}[args.phase](args)
        return

    from rvc_ios_tools.pipeline.convert import ConvertOptions, finish_conversion
    from rvc_ios_tools.voice.demo import preset

    with tempfile.TemporaryDirectory() as workdir:
        args.workdir = Path(workdir)
        run_phase(args, "pipelines")
        run_phase(args, "float64-pipeline")
        runs = {**np.load(args.workdir / "pipelines.npz"), **np.load(args.workdir / "float64_pipeline.npz")}
        segments = []
        for k in range(int(runs["segments"])):
            run_phase(args, "segment", k)
            segments.append(dict(np.load(args.workdir / f"segment_{k}.npz")))
        rate = int(preset(PRESETS[args.size]).config[-1])
        outputs = {label: (runs[f"{label}.float_output"], runs[f"{label}.output"]) for label in ("a", "c pipeline", "b full")}
        for label in ("a", "b", "c", *(label for label, _ in SWAPS)):
            if all(f"{label}.audio" in segment for segment in segments):
                tail = finish_conversion([np.ravel(segment[f"{label}.audio"]) for segment in segments], runs["filtered"],
                                         rate, ConvertOptions())
                outputs[f"{label} (assembled)"] = (tail["rms_mixed"], tail["output"])
        print_output_table(outputs)
        if args.save:
            tensors = dict(runs)
            for k, segment in enumerate(segments):
                tensors.update(prefixed(f"segment.{k}.", segment))
            np.savez(args.save, **tensors)
            say(f"wrote {args.save}")


if __name__ == "__main__":
    main()
