"""Print the README's Core ML precision and compression table: every stage's SNR (dB) against the MLX reference.

Full-size demo voice (v2-40k, seed 0) and full-size demo RMVPE; for each configuration the packages are exported
with `rvc-ios export --coreml`, evaluated by the numpy MIL interpreter (`rvc-ios coreml run --interpreter`: this
checks the conversion, not Apple's runtime) on a golden set of the MLX reference, and diffed. fp16 is emulated
(values rounded to float16 between ops as the program's types say; the numpy kernels accumulate in float32).

    python scripts/coreml_table.py [--seconds 1.0] [--configs float32,float16,mixed,int8,palette6] [--work DIR]
"""

from __future__ import annotations

import argparse
import math
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
    networks = set(args.networks.split(","))
    configs = [name for name in args.configs.split(",") if name]
    work = args.work or Path(tempfile.mkdtemp(prefix="coreml-table-"))

    from rvc_ios_tools.core.diff import compare_golden, load_candidate
    from rvc_ios_tools.core.golden import read_golden
    from rvc_ios_tools.coreml.export import export_coreml_hubert, export_coreml_rmvpe, export_coreml_voice
    from rvc_ios_tools.hubert.demo import write_demo_fairseq
    from rvc_ios_tools.hubert.export import export_hubert
    from rvc_ios_tools.hubert.golden import generate_hubert_golden
    from rvc_ios_tools.coreml.run import run_golden_set
    from rvc_ios_tools.rmvpe.demo import write_demo_rmvpe
    from rvc_ios_tools.rmvpe.export import export_rmvpe
    from rvc_ios_tools.rmvpe.golden import generate_rmvpe_golden
    from rvc_ios_tools.voice.demo import write_demo_voice
    from rvc_ios_tools.voice.export import export_voice
    from rvc_ios_tools.voice.golden import generate_voice_golden

    voice = write_demo_voice(work / "demo.pth", "v2-40k", 0)
    rmvpe = write_demo_rmvpe(work / "rmvpe.pt", seed=0, preset="full")
    hubert = write_demo_fairseq(work / "hubert.pt", seed=0, preset="full")
    if "voice" in networks:
        export_voice(voice, work / "reference", "demo")
        generate_voice_golden(work / "reference", "demo", work / "golden-voice", seed=0, seconds=args.seconds)
    if "rmvpe" in networks:
        export_rmvpe(rmvpe, work / "reference")
        generate_rmvpe_golden(work / "reference", "rmvpe", work / "golden-rmvpe", seed=0, seconds=args.seconds)
    if "hubert" in networks:
        export_hubert(hubert, work / "reference")
        generate_hubert_golden(work / "reference", "hubert", work / "golden-hubert", seed=0, seconds=args.seconds)
    frames = int(round(args.seconds * 100))

    results: dict[str, dict[str, float]] = {}
    order: list[str] = []
    for name in configs:
        precision, compression = CONFIGS[name]
        assets = work / name
        started = time.perf_counter()
        runs = []
        if "voice" in networks:
            export_coreml_voice(voice, assets, "demo", frames=(frames,), precision=precision, compression=compression)
            runs += [("voice", work / "golden-voice", "demo", "host"),
                     ("voice (nsf_source package)", work / "golden-voice", "demo", "coreml")]
        if "rmvpe" in networks:
            export_coreml_rmvpe(rmvpe, assets, precision=precision, compression=compression)
            runs.append(("rmvpe", work / "golden-rmvpe", "rmvpe", "host"))
        if "hubert" in networks:
            export_coreml_hubert(hubert, assets, precision=precision, compression=compression)
            runs.append(("hubert", work / "golden-hubert", "hubert", "host"))
        converted = time.perf_counter() - started
        column = results.setdefault(name, {})
        for network, golden_dir, model_name, source in runs:
            if network.startswith("voice (") and name != configs[0]:
                continue  # the source package is always fp32, uncompressed: one row is enough
            candidate = run_golden_set(golden_dir, assets, model_name, assets / f"{model_name}-{source}.safetensors",
                                       predict=False, source=source)
            loaded = load_candidate(candidate)
            report = compare_golden(read_golden(golden_dir), loaded.tensors, loaded.layouts,
                                    candidate_metadata=loaded.metadata)
            for stage in report.stages:
                for comparison in stage.tensors:
                    if network.startswith("voice (") and comparison.name != "dec.source":
                        continue
                    key = f"{network.split(' ')[0]}: `{comparison.name}`" + (" (nsf_source package)"
                                                                          if network.startswith("voice (") else "")
                    if key not in order:
                        order.append(key)
                    column[key] = comparison.snr_db
        print(f"# {name}: converted in {converted:.0f} s, evaluated in {time.perf_counter() - started - converted:.0f} s",
              flush=True)

    print()
    print("| stage | " + " | ".join(configs) + " |")
    print("|---|" + "---|" * len(configs))
    for key in order:
        cells = []
        for name in configs:
            value = results.get(name, {}).get(key)
            cells.append("-" if value is None else ("inf" if value == math.inf else f"{value:.1f}"))
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
