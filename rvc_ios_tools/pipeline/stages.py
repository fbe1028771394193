"""The conversion's stage table: upstream's pipeline order, one group of stages per segment.

Layouts: `T` time (samples or frames), `S` split points, `C` channels, `B` batch. Content features and retrieval
are held to 100 dB (a known port bug hides above 80 there); the rest to 80 dB; integers to equality.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..core.stages import StageTable, StageTableBuilder, TensorSpec

PIPELINE_MIN_SNR_DB = 80.0
FEATURES_MIN_SNR_DB = 100.0


def pipeline_stage_table(config_like: Mapping[str, Any]) -> StageTable:
    """`config_like`: {"segments": n, "f0": bool, "index": bool} (a pipeline golden index's `extra` holds them)."""
    segments, f0, index = int(config_like["segments"]), bool(config_like["f0"]), bool(config_like["index"])
    noise = []
    for k in range(segments):
        noise.append(TensorSpec(f"segment.{k}.noise.z_p", "noise", "BCT"))
        if f0:
            noise += [TensorSpec(f"segment.{k}.noise.nsf", "noise", "BTC"),
                      TensorSpec(f"segment.{k}.noise.nsf_phase", "noise", "BC")]
    table = StageTableBuilder("pipeline", PIPELINE_MIN_SNR_DB, [
        TensorSpec("input", "input", "T"), TensorSpec("sid", "input", "B", dtype="int32"), *noise,
    ])
    table.add("normalise", ["input"], [("normalised", "T")])
    table.add("high_pass", ["normalised"], [("filtered", "T")])
    table.add("split", ["filtered"], [("split_points", "S")])
    table.add("pad", ["filtered"], [("padded", "T")])
    if f0:
        table.add("pitch", ["padded"], [("f0", "T"), ("pitch", "T"), ("pitchf", "T")])
    audio = []
    for k in range(segments):
        prefix = f"segment.{k}."
        features = table.add(prefix + "features", ["padded", "split_points"], [(prefix + "features", "TC")],
                             min_snr_db=FEATURES_MIN_SNR_DB)[0]
        if index:
            features = table.add(prefix + "retrieval", [features], [(prefix + "retrieved", "TC"), (prefix + "blended", "TC")],
                                 min_snr_db=FEATURES_MIN_SNR_DB)[-1]
        synth_inputs = [(prefix + "phone", "BTC"), (prefix + "phone_lengths", "B")]
        if f0:
            synth_inputs += [(prefix + "pitch", "BT"), (prefix + "pitchf", "BT")]
        # The raw features feed protect beside the blended ones; without an index they are one tensor.
        raw = [prefix + "features"] if index else []
        named = table.add(prefix + "synthesizer_inputs", [features, *raw, *(["pitch", "pitchf"] if f0 else [])],
                          synth_inputs)
        draws = [prefix + "noise.z_p", *([prefix + "noise.nsf", prefix + "noise.nsf_phase"] if f0 else [])]
        audio += table.add(prefix + "synthesize", [*named, "sid", *draws], [(prefix + "audio", "T")])
    table.add("concatenate", audio, [("concatenated", "T")])
    table.add("rms_mix", ["concatenated", "filtered"], [("rms_mixed", "T")])
    table.add("resample", ["rms_mixed"], [("resampled", "T")])
    # The criterion: every int16 sample within 1 LSB of upstream's (truncation turns a last-bit float
    # difference into a 1 LSB step; more is a bug).
    table.add("int16", ["resampled"], [("output", "T")], role="output", max_integer_difference=1)
    built = table.build()
    return _with_dtypes(built)


# Upstream's dtypes where they are not float32: the filtered and padded signal and f0 are float64, pitch and
# lengths integers, the split points int64, the output int16.
DTYPES = {"filtered": "float64", "padded": "float64", "f0": "float64", "pitch": "int32", "split_points": "int64",
          "output": "int16"}


def _with_dtypes(table: StageTable) -> StageTable:
    def dtype(name: str) -> str:
        if name in DTYPES:
            return DTYPES[name]
        if name.endswith(".pitch") or name.endswith(".phone_lengths"):
            return "int32"
        return next(spec.dtype for spec in table.tensors if spec.name == name)

    tensors = tuple(TensorSpec(s.name, s.role, s.layout, s.stage, dtype(s.name)) for s in table.tensors)
    return StageTable(table.kind, table.stages, tensors)
