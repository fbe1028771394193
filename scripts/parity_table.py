"""Print the README's parity table: MLX reference vs upstream PyTorch, every stage, several voices.

Each column is one demo voice (upstream model code, parameters from a seed, saved as fp16 and loaded back into
float32 on both sides), run chained with the same injected noise. Cells are SNR in dB (higher is closer; two
correct float32 implementations agree to about 110 dB; our floor is 80 dB).

    python scripts/parity_table.py                  # the README table (includes a full-size voice)
    python scripts/parity_table.py --tiny-only      # quick look
"""

from __future__ import annotations

import argparse
import math
import warnings

from rvc_ios_tools.voice.upstream import parity_figures

TINY = ["v2-40k-tiny", "v2-48k-tiny", "v2-32k-tiny", "v1-40k-tiny", "v1-48k-tiny", "v1-32k-nof0-tiny", "v2-40k-nof0-tiny"]
FULL = ["v2-40k", "v2-48k-nof0"]


def main() -> None:
    warnings.simplefilter("ignore", FutureWarning)  # rvc 0.3.5 uses the deprecated torch weight_norm
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny-only", action="store_true")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    presets = TINY if args.tiny_only else TINY + FULL
    columns: dict[str, dict[str, float]] = {}
    worst_r: dict[str, float] = {}
    worst_abs: dict[str, float] = {}
    rows: list[str] = []
    for preset in presets:
        figures = parity_figures(preset, args.seconds, args.seed)
        columns[preset] = {f.name: f.snr_db for f in figures}
        for f in figures:
            if f.name not in rows:
                rows.append(f.name)
            worst_r[f.name] = min(worst_r.get(f.name, 1.0), f.pearson_r)
            worst_abs[f.name] = max(worst_abs.get(f.name, 0.0), f.max_abs_error)
    rows = [name for name in rows if name != "audio"] + ["audio"]  # v1 48k/32k have a fifth stage
    print(f"MLX reference vs upstream PyTorch (rvc 0.3.5), float32, {args.seconds:g} s of audio, seed {args.seed}. "
          "SNR dB per stage; `-` = stage absent (no-f0 voice).\n")
    print("| stage | " + " | ".join(presets) + " | worst 1 - Pearson r | worst max abs error |")
    print("|---|" + "---|" * len(presets) + "---|---|")
    for name in rows:
        cells = []
        for preset in presets:
            value = columns[preset].get(name)
            cells.append("-" if value is None else ("inf" if math.isinf(value) else f"{value:.1f}"))
        print(f"| `{name}` | " + " | ".join(cells) + f" | {1 - worst_r[name]:.1e} | {worst_abs[name]:.2e} |")
    lowest = min(v for col in columns.values() for v in col.values())
    print(f"\nLowest SNR over every stage and voice: {lowest:.1f} dB (floor 80 dB).")


if __name__ == "__main__":
    main()
