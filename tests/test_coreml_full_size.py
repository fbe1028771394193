"""The full-size demo networks' fp32 Core ML programs at >= 100 dB on every stage against the MLX reference
(the issue's bar; the numpy interpreter checks the conversion, not Apple's runtime). Slow: minutes."""

from __future__ import annotations

import pytest

pytest.importorskip("coremltools")

from rvc_ios_tools.coreml.measure import measure_configuration, prepare_demo_networks

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("network", ["voice", "rmvpe", "hubert"])
def test_fp32_programs_of_the_full_size_networks_reach_100_db_on_every_stage(tmp_path, network):
    if network == "hubert":
        pytest.importorskip("transformers")
    prepared = prepare_demo_networks(tmp_path, [network], seconds=1.0)
    report = measure_configuration(prepared, tmp_path / "float32", precision="float32", compression="none",
                                   frames=100)[network]
    compared = [c for stage in report.stages for c in stage.tensors if c.name != "f0"]
    assert compared and all(c.snr_db >= 100.0 for c in compared), [(c.name, c.snr_db) for c in compared]
    assert report.passed
