"""Compare a port's tensors with a golden set, stage by stage, and name the first stage that diverges.

A candidate (docs/formats.md) is a safetensors file with any subset of the golden's tensor names, each in
the layout it declares as `layout.<name>` metadata. Every tensor it holds is brought into the golden's
layout and measured: SNR in dB, Pearson r, max abs error and relative L2, against its stage's `min_snr_db`.
A failing tensor is checked for the usual porting mistakes (NaN/Inf, all zeros, transposed layout, gain or
sign, time shift, reversed channels, constant offset) so the report can say what probably went wrong.

A failing stage is *divergent* when every tensor feeding it that the candidate also holds passes; a failing
stage fed by a failing tensor only follows from that earlier divergence and is not named.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import safetensors

from .errors import RvcIosError
from .files import write_bytes_atomic
from .golden import GoldenSet, schema_problems
from .pitch_track import THRESHOLD, f0_agreement
from .stages import is_layout

FORMAT = "rvc-ios-parity-report"
FORMAT_VERSION = 1
SCHEMA = "parity-report.schema.json"

# Candidate tensors that are golden inputs or noise (a port echoing what it read, or its own coarse pitch)
# are compared as this pseudo-stage, which comes before every real one.
INPUTS_STAGE = "inputs"
CANDIDATE_MODES = ("chained", "teacher-forced")

# A signature is named only when correcting for it makes the candidate match this well...
SIGNATURE_MIN_SNR_DB = 30.0
# ...and this much better than it matched uncorrected (so plain noise is never called a gain error).
SIGNATURE_MIN_IMPROVEMENT_DB = 10.0
# Time shifts searched, in steps of the tensor's own T axis (frames or samples).
MAX_SHIFT = 8

EXIT_PASS, EXIT_DIVERGENCE, EXIT_BAD_INPUT = 0, 1, 2
# Where a stage allows integer outputs to differ (by `Stage.max_integer_difference`), at most this share may.
INTEGER_STEP_MAX_FRACTION = 0.1


class CandidateFormatError(RvcIosError):
    """A candidate file that cannot be read or compared (damaged, bad layout declaration, no known tensors)."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    tensors: dict[str, np.ndarray]
    layouts: dict[str, str]
    metadata: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Signature:
    # nan_inf, all_zeros, transposed_layout, gain_or_sign, time_shift, channel_order_reversed, constant_offset
    kind: str
    description: str
    value: float | None = None


@dataclasses.dataclass(frozen=True)
class TensorComparison:
    name: str
    stage: str
    golden_shape: tuple[int, ...]
    candidate_shape: tuple[int, ...]  # after bringing it into the golden's layout
    golden_layout: str
    candidate_layout: str  # as declared (the golden's when undeclared)
    snr_db: float | None  # None when the shapes differ
    pearson_r: float | None
    max_abs_error: float | None
    rel_l2: float | None
    min_snr_db: float
    passed: bool
    signatures: tuple[Signature, ...] = ()
    note: str = ""


@dataclasses.dataclass(frozen=True)
class StageResult:
    name: str
    min_snr_db: float
    status: str  # "pass", "fail" or "not compared"
    tensors: tuple[TensorComparison, ...]
    follows_from: tuple[str, ...] = ()  # for a failing stage: the divergent stages feeding it


@dataclasses.dataclass(frozen=True)
class ParityReport:
    kind: str
    model_name: str
    golden_dir: str
    candidate_path: str
    candidate_metadata: dict[str, str]
    stages: tuple[StageResult, ...]
    divergent_stages: tuple[str, ...]
    unknown_tensors: tuple[str, ...]

    @property
    def first_divergent_stage(self) -> str | None:
        return self.divergent_stages[0] if self.divergent_stages else None

    @property
    def passed(self) -> bool:
        return all(stage.status != "fail" for stage in self.stages)


# --- reading candidates and their layouts ---


def load_candidate(path: Path) -> Candidate:
    """A candidate safetensors file with its `layout.<name>` declarations and other metadata."""
    path = Path(path)
    if not path.is_file():
        raise CandidateFormatError(f"{path} does not exist; pass the safetensors file your port wrote.")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # safetensors reports damage as several exception types
        raise CandidateFormatError(
            f"{path} is not a readable safetensors file ({exc}). Write it with a safetensors library, "
            "float32 or int32 tensors only."
        ) from None
    layouts = {key[len("layout."):]: value for key, value in metadata.items() if key.startswith("layout.")}
    for name, layout in layouts.items():
        if not is_layout(layout):
            raise CandidateFormatError(
                f"{path}: `layout.{name}` is {layout!r}; a layout is distinct capital axis letters such as BCT or BTC."
            )
    mode = metadata.get("mode")
    if mode is not None and mode not in CANDIDATE_MODES:
        raise CandidateFormatError(f"{path}: metadata `mode` is {mode!r}; use one of {', '.join(CANDIDATE_MODES)}.")
    other = {key: value for key, value in metadata.items() if not key.startswith("layout.")}
    return Candidate(tensors=tensors, layouts=layouts, metadata=other)


def align_layout(name: str, array: np.ndarray, declared: str, golden_layout: str) -> np.ndarray:
    """`array`, declared to be in `declared` layout, with its axes put in the golden's order."""
    if sorted(declared) != sorted(golden_layout) or not is_layout(declared):
        raise CandidateFormatError(
            f"The candidate declares `{name}` as {declared}, but the golden's {golden_layout} has axes "
            f"{', '.join(golden_layout)}; declare those letters in the order the port stores them, or nothing."
        )
    if array.ndim != len(declared):
        raise CandidateFormatError(
            f"The candidate's `{name}` has shape {tuple(array.shape)}, which does not fit its declared layout "
            f"{declared} ({len(declared)} axes)."
        )
    return np.transpose(array, [declared.index(axis) for axis in golden_layout])


# --- measures ---


def snr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum err^2): inf when identical, nan when the candidate holds NaN."""
    reference = np.asarray(reference, dtype=np.float64)
    with np.errstate(all="ignore"):
        error = np.sum(np.square(np.asarray(candidate, dtype=np.float64) - reference))
        signal = np.sum(np.square(reference))
        if error == 0:
            return math.inf
        if signal == 0:
            return -math.inf
        return float(10 * np.log10(signal / error))


def pearson_r(reference: np.ndarray, candidate: np.ndarray) -> float:
    if reference.size == 0:  # e.g. no split points in short audio: nothing to correlate, and nothing differs
        return 1.0 if np.array_equal(reference, candidate) else math.nan
    with np.errstate(all="ignore"):
        a = reference - reference.mean()
        b = candidate - candidate.mean()
        denominator = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
        if denominator == 0 or not math.isfinite(denominator):
            # Constant tensors (x_mask of all ones) have no correlation; equal ones still agree perfectly.
            return 1.0 if np.array_equal(reference, candidate) else math.nan
        return float(np.sum(a * b) / denominator)


def relative_l2(reference: np.ndarray, candidate: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        error = float(np.sum(np.square(candidate - reference)))
        signal = float(np.sum(np.square(reference)))
        if signal == 0:
            return 0.0 if error == 0 else math.inf
        return math.sqrt(error / signal)


# --- comparing one tensor and naming what went wrong ---


def compare_tensor(
    name: str,
    stage: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    golden_layout: str,
    candidate_layout: str,
    min_snr_db: float,
    max_integer_difference: int = 0,
) -> TensorComparison:
    """Measure `candidate` (already in the golden's layout) against `reference`."""
    common = dict(
        name=name, stage=stage, golden_shape=tuple(reference.shape), candidate_shape=tuple(candidate.shape),
        golden_layout=golden_layout, candidate_layout=candidate_layout, min_snr_db=min_snr_db,
    )
    if candidate.shape != reference.shape:
        signatures = transposition_signatures(name, reference, candidate, golden_layout, candidate_layout)
        note = f"shape {tuple(candidate.shape)} (in {golden_layout}) differs from the golden's {tuple(reference.shape)}"
        return TensorComparison(
            **common, snr_db=None, pearson_r=None, max_abs_error=None, rel_l2=None, passed=False,
            signatures=signatures, note="; ".join([note, *(s.description for s in signatures)]),
        )
    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    snr = snr_db(ref, cand)
    with np.errstate(all="ignore"):
        max_abs = float(np.max(np.abs(cand - ref))) if ref.size else 0.0
    passed = snr >= min_snr_db  # False for NaN
    signatures = () if passed else failure_signatures(name, ref, cand, golden_layout, candidate_layout, snr)
    notes = [s.description for s in signatures]
    if reference.dtype.kind in "iu":
        # Integers (ids, list numbers, coarse pitch) are right or wrong: by SNR one id off by one would pass.
        differ = int(np.count_nonzero(cand != ref))
        largest = int(np.max(np.abs(cand - ref))) if differ else 0
        # A stage's allowance covers rare rounding steps (a last-bit float difference crossing a truncation
        # boundary), not a systematic one: rounding instead of truncating moves about half of all samples.
        passed = largest <= max_integer_difference and differ <= INTEGER_STEP_MAX_FRACTION * ref.size
        if differ:
            first = tuple(int(i) for i in np.argwhere(cand != ref)[0])
            allowed = (f", by at most {largest} (allowed {max_integer_difference} on at most "
                       f"{INTEGER_STEP_MAX_FRACTION:.0%} of them)" if max_integer_difference else "")
            notes.insert(0, f"{differ} of {ref.size} integer values differ{allowed} (the first at index {first})")
    return TensorComparison(
        **common, snr_db=snr, pearson_r=pearson_r(ref, cand), max_abs_error=max_abs, rel_l2=relative_l2(ref, cand),
        passed=passed, signatures=signatures, note="; ".join(notes),
    )


def failure_signatures(
    name: str, ref: np.ndarray, cand: np.ndarray, golden_layout: str, candidate_layout: str, snr: float
) -> tuple[Signature, ...]:
    """The porting mistake that best explains a failing same-shape tensor, if one explains it well."""
    nonfinite = ~np.isfinite(cand)
    if nonfinite.any():
        first = tuple(int(i) for i in np.argwhere(nonfinite)[0])
        return (
            Signature(
                "nan_inf",
                f"NaN/Inf: {int(nonfinite.sum())} of {cand.size} values are NaN or Inf (the first at index {first})",
                float(nonfinite.sum()),
            ),
        )
    if not cand.any() and ref.any():
        return (Signature(
            "all_zeros", "all zeros: the candidate is zero everywhere; was the stage run and its output stored?"),)

    fits: list[tuple[float, Signature]] = []
    fits.extend(_transposition_fits(name, ref, cand, golden_layout, candidate_layout))
    if "C" in golden_layout and ref.shape[golden_layout.index("C")] > 1:
        flipped = np.flip(cand, axis=golden_layout.index("C"))
        fits.append((snr_db(ref, flipped), Signature(
            "channel_order_reversed", "channel order reversed: it matches the golden flipped along C")))
    if "T" in golden_layout:
        fits.extend(_time_shift_fits(ref, cand, golden_layout.index("T")))
    signal = float(np.sum(ref * ref))
    if signal > 0:
        gain = float(np.sum(ref * cand)) / signal
        if gain != 0:
            what = "sign error" if gain < 0 else "gain error"
            fits.append((snr_db(ref, cand / gain), Signature(
                "gain_or_sign", f"{what}: the candidate ≈ {gain:.4g} × golden", gain)))
    offset = float(np.mean(cand - ref))
    fits.append((snr_db(ref, cand - offset), Signature(
        "constant_offset", f"constant offset: the candidate ≈ golden + {offset:.4g}", offset)))

    explained = [
        (fit, signature) for fit, signature in fits
        if fit >= SIGNATURE_MIN_SNR_DB and fit >= snr + SIGNATURE_MIN_IMPROVEMENT_DB
    ]
    if not explained:
        return ()
    fit, best = max(explained, key=lambda pair: pair[0])
    corrected = f"{best.description} (corrected, it matches at {_format_db(fit)} dB)"
    return (dataclasses.replace(best, description=corrected),)


def _time_shift_fits(ref: np.ndarray, cand: np.ndarray, time_axis: int) -> list[tuple[float, Signature]]:
    length = ref.shape[time_axis]
    fits = []
    for lag in range(1, min(MAX_SHIFT, length // 4) + 1):
        for shift in (lag, -lag):
            # shift > 0: the candidate is late, candidate[t + shift] = golden[t].
            later = np.take(cand, range(shift, length) if shift > 0 else range(0, length + shift), axis=time_axis)
            earlier = np.take(ref, range(0, length - shift) if shift > 0 else range(-shift, length), axis=time_axis)
            direction = "late" if shift > 0 else "early"
            fits.append((snr_db(earlier, later), Signature(
                "time_shift", f"time shift: the candidate is {lag} step(s) of T {direction} "
                f"(candidate[t{shift:+d}] = golden[t])", float(shift))))
    return fits


def _transposition_fits(
    name: str, ref: np.ndarray, cand: np.ndarray, golden_layout: str, candidate_layout: str
) -> list[tuple[float, Signature]]:
    """Swapped axes: in values (a wrong layout declaration) or in memory (bytes of one layout, shape of another)."""
    fits = []
    axes = range(ref.ndim)
    for i in axes:
        for j in axes[i + 1:]:
            if cand.shape[i] == 1 or cand.shape[j] == 1:
                continue
            swapped_shape = list(cand.shape)
            swapped_shape[i], swapped_shape[j] = swapped_shape[j], swapped_shape[i]
            a, b = golden_layout[i], golden_layout[j]
            if tuple(swapped_shape) == ref.shape:
                data_layout = _layout_after_swap(golden_layout, candidate_layout, i, j)
                fits.append((snr_db(ref, np.swapaxes(cand, i, j)), Signature(
                    "transposed_layout",
                    f"transposed layout: it matches the golden with axes {a} and {b} swapped; the data is "
                    f"{data_layout}, so declare \"layout.{name}\": \"{data_layout}\" or write it as "
                    f"{candidate_layout}")))
            if cand.shape == ref.shape and swapped_shape != list(cand.shape):
                reinterpreted = np.swapaxes(cand.reshape(swapped_shape), i, j)
                fits.append((snr_db(ref, reinterpreted), Signature(
                    "transposed_layout",
                    f"transposed layout: the values are stored with axes {a} and {b} swapped but the shape is "
                    f"written as the golden's; transpose before writing, or write shape {tuple(swapped_shape)}")))
    return fits


def _layout_after_swap(golden_layout: str, candidate_layout: str, i: int, j: int) -> str:
    """The layout the candidate's stored array really has, if golden-order axes i and j are swapped in it."""
    order = [candidate_layout.index(axis) for axis in golden_layout]
    actual = list(candidate_layout)
    actual[order[i]], actual[order[j]] = golden_layout[j], golden_layout[i]
    return "".join(actual)


def transposition_signatures(
    name: str, reference: np.ndarray, candidate: np.ndarray, golden_layout: str, candidate_layout: str
) -> tuple[Signature, ...]:
    """For a candidate of the wrong shape: does some swap of two axes make it the golden?"""
    if candidate.ndim != reference.ndim:
        return ()
    ref, cand = reference.astype(np.float64), candidate.astype(np.float64)
    fits = [fit for fit in _transposition_fits(name, ref, cand, golden_layout, candidate_layout)
            if fit[0] >= SIGNATURE_MIN_SNR_DB]
    if not fits:
        return ()
    return (max(fits, key=lambda pair: pair[0])[1],)


# --- the whole comparison ---


def judge_pitch_track(comparison: TensorComparison, golden: GoldenSet, candidate_f0: np.ndarray) -> TensorComparison:
    """An f0 track passes on cents and voicing, not SNR: one voicing flip on a frame whose salience sits at the
    threshold would cost ~25 dB of SNR while being a legitimate float32 rounding difference. Frames the golden
    salience marks as ambiguous are excused; every other frame must agree on voicing and within 0.01 cent."""
    if comparison.snr_db is None:  # shapes differ: nothing to judge beyond what compare_tensor said
        return comparison
    threshold = float(golden.index.get("extra", {}).get("threshold", THRESHOLD))
    agreement = f0_agreement(golden.tensors["f0"], candidate_f0, golden.tensors["salience"], threshold)
    return dataclasses.replace(
        comparison, passed=agreement.passed, note="; ".join(filter(None, [agreement.summary(), comparison.note]))
    )


def compare_golden(
    golden: GoldenSet,
    candidate: dict[str, np.ndarray],
    layouts: dict[str, str],
    *,
    candidate_path: str = "",
    candidate_metadata: dict[str, str] | None = None,
) -> ParityReport:
    """Measure every golden tensor the candidate holds; find the divergent stages.

    In a `teacher-forced` candidate (metadata `mode`) every stage ran on the golden's inputs, so no failure
    follows from another and each failing stage is divergent.
    """
    table = golden.stage_table
    chained = (candidate_metadata or {}).get("mode") != "teacher-forced"
    known = [name for name in table.tensor_names if name in candidate]
    unknown = tuple(sorted(set(candidate) - set(table.tensor_names)))
    if not known:
        raise CandidateFormatError(
            f"{candidate_path or 'The candidate'} holds none of the golden set's tensors (it has "
            f"{', '.join(sorted(candidate)) or 'none'}); write them under the golden set's names: {', '.join(table.tensor_names)}."
        )
    input_tolerance = max(stage.min_snr_db for stage in table.stages)
    comparisons: dict[str, TensorComparison] = {}
    for name in known:
        spec = table.tensor(name)
        declared = layouts.get(name, spec.layout)
        aligned = align_layout(name, np.asarray(candidate[name]), declared, spec.layout)
        stage = spec.stage or INPUTS_STAGE
        comparisons[name] = compare_tensor(
            name, stage, golden.tensors[name], aligned, golden_layout=spec.layout, candidate_layout=declared,
            min_snr_db=table.stage(spec.stage).min_snr_db if spec.stage else input_tolerance,
            max_integer_difference=table.stage(spec.stage).max_integer_difference if spec.stage else 0,
        )
        if golden.kind == "rmvpe" and name == "f0" and "salience" in golden.tensors:
            comparisons[name] = judge_pitch_track(comparisons[name], golden, aligned)

    failing_tensors = {name for name, comparison in comparisons.items() if not comparison.passed}
    results: list[StageResult] = []
    divergent: list[str] = []
    input_names = [spec.name for spec in table.tensors if spec.stage is None]
    pseudo_inputs = [(INPUTS_STAGE, input_tolerance, input_names)] if any(n in comparisons for n in input_names) else []
    for stage_name, tolerance, outputs in pseudo_inputs + [(s.name, s.min_snr_db, s.outputs) for s in table.stages]:
        compared = tuple(comparisons[name] for name in outputs if name in comparisons)
        if not compared:
            results.append(StageResult(stage_name, tolerance, "not compared", ()))
            continue
        if all(comparison.passed for comparison in compared):
            results.append(StageResult(stage_name, tolerance, "pass", compared))
            continue
        feeding = table.upstream_tensors(stage_name) if chained and stage_name != INPUTS_STAGE else set()
        failing_sources = {comparisons[name].stage for name in feeding & failing_tensors}
        follows_from = tuple(name for name in divergent if name in failing_sources)
        if not follows_from:
            divergent.append(stage_name)
        else:
            note = f"follows from {', '.join(follows_from)}"
            compared = tuple(
                c if c.passed else dataclasses.replace(c, note="; ".join(filter(None, [note, c.note])))
                for c in compared
            )
        results.append(StageResult(stage_name, tolerance, "fail", compared, follows_from))

    return ParityReport(
        kind=golden.kind,
        model_name=golden.model_name,
        golden_dir=str(golden.directory or ""),
        candidate_path=str(candidate_path),
        candidate_metadata=dict(candidate_metadata or {}),
        stages=tuple(results),
        divergent_stages=tuple(divergent),
        unknown_tensors=unknown,
    )


# --- presenting the report ---


def _format_db(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.1f}"


def _format_number(value: float | None, spec: str) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return _format_db(value)
    return format(value, spec)


def render_report_table(report: ParityReport) -> str:
    """The per-stage table a person reads, with the verdict underneath."""
    header = ("stage", "tensor", "SNR dB", "Pearson r", "max abs", "rel L2", "min dB", "result", "note")
    rows: list[tuple[str, ...]] = []
    for stage in report.stages:
        if not stage.tensors:
            rows.append((stage.name, "-", "", "", "", "", _format_db(stage.min_snr_db), "-", "not in candidate"))
        for comparison in stage.tensors:
            rows.append((
                stage.name,
                comparison.name,
                _format_db(comparison.snr_db),
                _format_number(comparison.pearson_r, ".6f"),
                _format_number(comparison.max_abs_error, ".3g"),
                _format_number(comparison.rel_l2, ".3g"),
                _format_db(comparison.min_snr_db),
                "PASS" if comparison.passed else "FAIL",
                comparison.note,
            ))
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    lines = [
        "  ".join([cell.ljust(width) for cell, width in zip(row[:-1], widths)] + [row[-1]]).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  ----")
    compared = sum(len(stage.tensors) for stage in report.stages)
    failed = sum(not c.passed for stage in report.stages for c in stage.tensors)
    lines.append("")
    if report.passed:
        lines.append(f"PASS: all {compared} compared tensors reach their stage's minimum SNR.")
    else:
        lines.append(f"FAIL: {failed} of {compared} compared tensors are below their stage's minimum SNR.")
        lines.append(f"first divergent stage: {report.first_divergent_stage}")
        if len(report.divergent_stages) > 1:
            lines.append(f"other independent divergences: {', '.join(report.divergent_stages[1:])}")
    if report.unknown_tensors:
        lines.append(f"ignored (not in the golden set): {', '.join(report.unknown_tensors)}")
    return "\n".join(lines)


def _json_float(value: float | None) -> float | str | None:
    """JSON has no NaN or Infinity; they are written as the strings "nan", "inf", "-inf"."""
    if value is None or math.isfinite(value):
        return value
    return _format_db(value)


def report_document(report: ParityReport) -> dict[str, Any]:
    """The report as JSON (schemas/parity-report.schema.json)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": report.kind,
        "model_name": report.model_name,
        "golden_dir": report.golden_dir,
        "candidate_path": report.candidate_path,
        "candidate_metadata": report.candidate_metadata,
        "passed": report.passed,
        "first_divergent_stage": report.first_divergent_stage,
        "divergent_stages": list(report.divergent_stages),
        "unknown_tensors": list(report.unknown_tensors),
        "stages": [
            {
                "name": stage.name,
                "status": stage.status,
                "min_snr_db": stage.min_snr_db,
                "follows_from": list(stage.follows_from),
                "tensors": [
                    {
                        "name": c.name,
                        "golden_shape": list(c.golden_shape),
                        "candidate_shape": list(c.candidate_shape),
                        "golden_layout": c.golden_layout,
                        "candidate_layout": c.candidate_layout,
                        "snr_db": _json_float(c.snr_db),
                        "pearson_r": _json_float(c.pearson_r),
                        "max_abs_error": _json_float(c.max_abs_error),
                        "rel_l2": _json_float(c.rel_l2),
                        "passed": c.passed,
                        "signatures": [
                            {"kind": s.kind, "description": s.description, "value": _json_float(s.value)}
                            for s in c.signatures
                        ],
                        "note": c.note,
                    }
                    for c in stage.tensors
                ],
            }
            for stage in report.stages
        ],
    }


def write_report_json(report: ParityReport, path: Path) -> dict[str, Any]:
    document = report_document(report)
    problems = schema_problems(document, SCHEMA)
    if problems:  # our bug, not the user's: keep the traceback
        raise AssertionError(f"parity report does not match {SCHEMA}: " + "; ".join(problems[:5]))
    write_bytes_atomic(Path(path), (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())
    return document
