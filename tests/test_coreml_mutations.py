"""The Core ML bug catalogue: conversion mistakes, each made on purpose, named by the golden diff at its stage.

Each test converts one piece of the tiny voice the wrong way, evaluates it with the numpy MIL interpreter on the
committed golden set's inputs (teacher-forced: each piece fed the golden tensors it takes) and diffs it.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("coremltools")

from rvc_ios_tools.core.diff import compare_golden
from rvc_ios_tools.core.golden import read_golden
from rvc_ios_tools.coreml import convert, voice_parts
from rvc_ios_tools.coreml.interpreter import run_program
from rvc_ios_tools.voice.checkpoint import load_voice

from catalogue_log import log_report
from coreml_assets import VOICE_GOLDEN, VOICE_NAME, voice_source


@pytest.fixture(scope="module")
def piece():
    """`piece(role, model=None, **kwargs)`: the golden diff of one converted piece of the tiny voice."""
    checkpoint = load_voice(voice_source())
    golden = read_golden(VOICE_GOLDEN)
    packages = {p.role: p for p in convert.voice_contracts(checkpoint, VOICE_NAME, (64,), "float32", "none")}

    def run(role: str, model=None, **kwargs):
        model = model if model is not None else voice_parts.folded_upstream_model(checkpoint)
        package = packages[role]
        converted = convert.convert_voice_piece(model, checkpoint, package, **kwargs)["main"]
        function = package.functions[0]
        feed = {c.coreml: golden.tensors[c.golden] for c in function.inputs}
        outputs = run_program(converted._mil_program, feed)
        candidate = {c.golden: outputs[c.coreml] for c in function.outputs}
        return log_report(compare_golden(golden, candidate, {}, candidate_metadata={"mode": "teacher-forced"}))

    run.checkpoint = checkpoint
    return run


def test_the_converted_source_and_decoder_pass_every_stage(piece):
    assert piece("nsf_source").passed
    assert piece("decoder").passed


def test_mod_one_dropped_by_noop_elimination_diverges_at_the_nsf_source(piece):
    """coremltools 9.0's noop_elimination removes floor_div(x, 1), so upstream's `x % 1` becomes 0 (#2761)."""
    report = piece("nsf_source", keep_noop_elimination=True)
    assert report.first_divergent_stage == "nsf_source"


def test_float16_inputs_for_pitchf_diverge_at_the_nsf_source(piece, monkeypatch):
    """What an fp16 program for iOS16+ gets by default: its inputs in fp16, so pitchf (Hz) is rounded."""
    real_input_type = convert._input_type

    def half_pitch(ct, contract, frame_range, example):
        declared = real_input_type(ct, contract, frame_range, example)
        if contract.golden == "pitchf":
            return ct.TensorType(name=declared.name, shape=declared.shape, dtype=np.float16)
        return declared

    monkeypatch.setattr(convert, "_input_type", half_pitch)
    report = piece("nsf_source")
    assert report.first_divergent_stage == "nsf_source"


def test_weight_norm_folded_over_the_wrong_dim_diverges_at_the_first_upsample(piece):
    """Weight norm g * v / ||v|| with the norm taken per axis-1 channel instead of upstream's per axis-0 row
    (`dim=0`) for the decoder's transposed convolutions and resblocks, as a port that folds by hand might."""
    import torch
    from rvc_ios_tools.voice.upstream import upstream_model

    model = upstream_model(piece.checkpoint)
    model.flow.remove_weight_norm()
    with torch.no_grad():
        for module in model.dec.modules():
            if hasattr(module, "weight_g"):
                g, v = module.weight_g.detach(), module.weight_v.detach()
                torch.nn.utils.remove_weight_norm(module)
                # The gain per row as upstream, the norm over the wrong axes (per axis-1 channel).
                module.weight.copy_(g * v / torch.linalg.vector_norm(v, dim=(0, 2), keepdim=True))
    report = piece("decoder", model=model)
    assert report.first_divergent_stage == "dec.up_0"
