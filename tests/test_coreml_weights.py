"""Every weight read back out of the Core ML packages (weight.bin parsed here) against the safetensors export.

fp32 packages hold the export's float32 values bit for bit (layouts accounted for by the rule table); fp16 ones
hold exactly their float16 rounding. What coremltools' passes transformed is checked as transformed: RMVPE's
conv + BatchNorm pairs fused into one conv (to float32 rounding), its GRU split into one linear per gate, a frame
bucket's relative-position tables padded to 2T-1 positions.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

pytest.importorskip("coremltools")

from rvc_ios_tools.core.rules import plan_conversion
from rvc_ios_tools.coreml.weights import WeightFileError, compare_package_weights, read_blob
from rvc_ios_tools.rmvpe.convert import RMVPE_RULES, load_rmvpe_checkpoint
from rvc_ios_tools.voice.checkpoint import load_voice
from rvc_ios_tools.voice.convert import VOICE_RULES

from coreml_assets import RMVPE_NAME, VOICE_NAME, rmvpe_assets, rmvpe_source, voice_assets, voice_source


def voice_report(assets: Path, name: str, source: Path, rounding=None):
    plan = plan_conversion(load_voice(source).state_dict, VOICE_RULES)
    exported = safetensors.numpy.load_file(str(assets / f"{name}.safetensors"))
    if rounding is not None:
        exported = {key: array.astype(rounding).astype(np.float32) for key, array in exported.items()}
    return plan, compare_package_weights(sorted(assets.glob(f"{name}.*.mlpackage")), plan.tensors, exported)


@pytest.mark.parametrize("precision, rounding", [("float32", None), ("float16", np.float16)])
def test_every_voice_weight_is_in_the_packages_exactly(precision, rounding):
    plan, report = voice_report(voice_assets(precision), VOICE_NAME, voice_source(), rounding)
    assert report.unmatched_exports == ()
    assert len(report.compared) == len(plan.tensors)
    assert all(c.exact for c in report.compared), [c for c in report.compared if not c.exact][:3]


def test_every_rmvpe_weight_is_in_the_package_as_its_passes_left_it():
    assets = rmvpe_assets()
    plan = plan_conversion(load_rmvpe_checkpoint(rmvpe_source()), RMVPE_RULES)
    exported = safetensors.numpy.load_file(str(assets / f"{RMVPE_NAME}.safetensors"))
    report = compare_package_weights([assets / f"{RMVPE_NAME}.rmvpe.mlpackage"], plan.tensors, exported)
    assert report.unmatched_exports == ()
    assert len(report.compared) == len(plan.tensors)
    gru = [c for c in report.compared if ".gru." in c.export_key]
    assert len(gru) == 8 and all(c.exact for c in gru)
    fused = [c for c in report.compared if not c.exact]
    assert fused and all(".bn" in c.export_key or ".conv" in c.export_key for c in fused)
    assert max(c.max_abs_error for c in fused) < 1e-6


def test_a_blob_record_without_its_sentinel_is_refused():
    raw = bytearray(256)
    struct.pack_into("<IIQQ", raw, 64, 0xDEADBEEF, 2, 8, 128)
    struct.pack_into("<ff", raw, 128, 1.5, -2.0)
    assert read_blob(bytes(raw), 64).tolist() == [1.5, -2.0]
    with pytest.raises(WeightFileError, match="DEADBEEF"):
        read_blob(bytes(raw), 96)


def test_every_content_encoder_weight_is_in_its_package():
    pytest.importorskip("transformers")
    from rvc_ios_tools.coreml.hubert_parts import traced_key
    from rvc_ios_tools.hubert.convert import HUBERT_RULES, load_hubert

    from coreml_assets import HUBERT_NAME, hubert_assets, hubert_source

    checkpoint = load_hubert(hubert_source())
    plan = plan_conversion(dict(checkpoint.state_dict), HUBERT_RULES)
    assets = hubert_assets()
    exported = safetensors.numpy.load_file(str(assets / f"{HUBERT_NAME}.safetensors"))
    report = compare_package_weights([assets / f"{HUBERT_NAME}.content_encoder.mlpackage"], plan.tensors, exported,
                                     traced_key(checkpoint))
    assert report.unmatched_exports == ()
    assert len(report.compared) == len(plan.tensors) and all(c.exact for c in report.compared)
