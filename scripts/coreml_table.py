"""Print the README's Core ML precision and compression table: every stage's SNR (dB) against the MLX reference.

Full-size demo networks (voice v2-40k, RMVPE, HuBERT-base; seed 0); for each configuration the packages are
exported with `rvc-ios export --coreml`, evaluated by the numpy MIL interpreter (`rvc-ios coreml run
--interpreter`: this checks the conversion, not Apple's runtime) on a golden set of the MLX reference, and diffed
(`rvc_ios_tools/coreml/measure.py`). fp16 is emulated (values rounded to float16 between ops as the program's
types say).

    python scripts/coreml_table.py [--seconds 1.0] [--configs float32,float16,mixed,int8,palette6]
                                   [--networks voice,rmvpe,hubert] [--work DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

# (column, compute precision, weight compression); int8 and palette6 compress the fp32 program's weights, so
# their column shows what the compression alone costs.
CONFIGS = {
    "float32": ("float32", "none"),
    "float16": ("float16", "none"),
    "mixed": ("mixed", "none"),
    "int8": ("float32", "int8"),
    "palette6": ("float32", "palette6"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--networks", default="voice,rmvpe,hubert")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    configs = [name for name in args.configs.split(",") if name]
    work = args.work or Path(tempfile.mkdtemp(prefix="coreml-table-"))

    from rvc_ios_tools.coreml.measure import measure_configuration, prepare_demo_networks

    prepared = prepare_demo_networks(work, args.networks.split(","), args.seconds)
    results: dict[str, dict[str, float]] = {}
    order: list[str] = []
    for name in configs:
        precision, compression = CONFIGS[name]
        started = time.perf_counter()
        # The source package is always fp32 and uncompressed: one row, from the first configuration.
        reports = measure_configuration(prepared, work / name, precision=precision, compression=compression,
                                        frames=int(round(args.seconds * 100)), with_source_package=name == configs[0])
        column = results.setdefault(name, {})
        for network, report in reports.items():
            for stage in report.stages:
                for comparison in stage.tensors:
                    if network.endswith("(nsf_source package)"):
                        if comparison.name != "dec.source":
                            continue
                        key = "voice: `dec.source` (nsf_source package)"
                    else:
                        key = f"{network}: `{comparison.name}`"
                    if key not in order:
                        order.append(key)
                    column[key] = comparison.snr_db
        print(f"# {name}: exported and evaluated in {time.perf_counter() - started:.0f} s", flush=True)

    print()
    print("| stage | " + " | ".join(configs) + " |")
    print("|---|" + "---|" * len(configs))
    for key in order:
        cells = []
        for name in configs:
            value = results.get(name, {}).get(key)
            cells.append("-" if value is None else ("inf" if value == float("inf") else f"{value:.1f}"))
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
