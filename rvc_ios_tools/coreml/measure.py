"""Core ML programs of the full-size demo networks measured against the MLX reference, per configuration.

Shared by `scripts/coreml_table.py` (the README's table) and the slow full-size tests: build the demo networks,
write the MLX reference's golden set of each, export each configuration with `export --coreml`, run it with the
numpy interpreter (`coreml run --interpreter`) and diff it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

from ..core.diff import ParityReport, compare_golden, load_candidate
from ..core.golden import read_golden

NETWORKS = ("voice", "rmvpe", "hubert")
# The name the demo network is exported under, per network (`export --rmvpe` and `--hubert` name it by file).
MODEL_NAMES = {"voice": "demo", "rmvpe": "rmvpe", "hubert": "hubert"}


@dataclasses.dataclass(frozen=True)
class DemoNetwork:
    network: str
    source: Path
    golden_dir: Path


def prepare_demo_networks(work: Path, networks: Iterable[str], seconds: float) -> list[DemoNetwork]:
    """The full-size demo networks (seed 0) and the MLX reference's golden set of each on `seconds` of input."""
    work = Path(work)
    reference = work / "reference"
    prepared = []
    for network in networks:
        golden_dir = work / f"golden-{network}"
        if network == "voice":
            from ..voice.demo import write_demo_voice
            from ..voice.export import export_voice
            from ..voice.golden import generate_voice_golden

            source = write_demo_voice(work / "demo.pth", "v2-40k", 0)
            export_voice(source, reference, MODEL_NAMES[network])
            generate_voice_golden(reference, MODEL_NAMES[network], golden_dir, seed=0, seconds=seconds)
        elif network == "rmvpe":
            from ..rmvpe.demo import write_demo_rmvpe
            from ..rmvpe.export import export_rmvpe
            from ..rmvpe.golden import generate_rmvpe_golden

            source = write_demo_rmvpe(work / "rmvpe.pt", seed=0, preset="full")
            export_rmvpe(source, reference)
            generate_rmvpe_golden(reference, MODEL_NAMES[network], golden_dir, seed=0, seconds=seconds)
        elif network == "hubert":
            from ..hubert.demo import write_demo_fairseq
            from ..hubert.export import export_hubert
            from ..hubert.golden import generate_hubert_golden

            source = write_demo_fairseq(work / "hubert.pt", seed=0, preset="full")
            export_hubert(source, reference)
            generate_hubert_golden(reference, MODEL_NAMES[network], golden_dir, seed=0, seconds=seconds)
        else:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}, not {network!r}")
        prepared.append(DemoNetwork(network, source, golden_dir))
    return prepared


def measure_configuration(
    prepared: Iterable[DemoNetwork], assets: Path, *, precision: str, compression: str, frames: int,
    with_source_package: bool = False,
) -> dict[str, ParityReport]:
    """Export every prepared network at one configuration into `assets`, run and diff it: reports by network
    (`voice (nsf_source package)` too, with `with_source_package`: the decoder fed by the Core ML source)."""
    from .export import export_coreml_hubert, export_coreml_rmvpe, export_coreml_voice
    from .run import run_golden_set

    reports = {}
    for demo in prepared:
        name = MODEL_NAMES[demo.network]
        sources = ["host"]
        if demo.network == "voice":
            export_coreml_voice(demo.source, assets, name, frames=(frames,), precision=precision,
                                compression=compression)
            sources += ["coreml"] if with_source_package else []
        elif demo.network == "rmvpe":
            export_coreml_rmvpe(demo.source, assets, precision=precision, compression=compression)
        else:
            export_coreml_hubert(demo.source, assets, precision=precision, compression=compression)
        for source in sources:
            candidate = run_golden_set(demo.golden_dir, assets, name, Path(assets) / f"{name}-{source}.safetensors",
                                       predict=False, source=source)
            loaded = load_candidate(candidate)
            key = demo.network if source == "host" else f"{demo.network} (nsf_source package)"
            reports[key] = compare_golden(read_golden(demo.golden_dir), loaded.tensors, loaded.layouts,
                                          candidate_metadata=loaded.metadata)
    return reports
