"""Print the README's RMVPE parity table: MLX reference vs upstream PyTorch (`rvc.lib.rmvpe`), every stage.

Upstream runs a demo rmvpe.pt (every weight and BatchNorm statistic random) through its own `RMVPE(path)`
loader; ours runs the safetensors `rvc-ios export --rmvpe` writes for that file. Cells are SNR in dB; the f0
rows give the worst error in cents and voicing agreement on frames that are not ambiguous.

    python scripts/rmvpe_parity_table.py
"""

from __future__ import annotations

import math
import warnings

from rvc_ios_tools.rmvpe.upstream import rmvpe_parity_figures

# (column, preset, samples, model seed, pad mode): 0.5 s = 51 frames padded to 64; 64 frames exactly; 3 s.
RUNS = (
    ("full 0.5 s reflect", "full", 8000, 0, "reflect"),
    ("full 64 frames (no pad)", "full", 63 * 160, 0, "reflect"),
    ("full 3 s reflect", "full", 48000, 0, "reflect"),
    ("full 0.5 s constant", "full", 8000, 0, "constant"),
    ("tiny 0.5 s reflect", "tiny", 8000, 4, "reflect"),
)


def main() -> None:
    warnings.simplefilter("ignore")
    columns, agreements, rows = {}, {}, []
    for title, preset, samples, seed, pad in RUNS:
        figures, agreement = rmvpe_parity_figures(preset, samples, seed, audio_seed=1, pad_mode=pad)
        columns[title] = {f.name: f.snr_db for f in figures}
        agreements[title] = agreement
        rows += [f.name for f in figures if f.name not in rows]
    titles = [run[0] for run in RUNS]
    print("| stage | " + " | ".join(titles) + " |")
    print("|---|" + "---|" * len(titles))
    for name in rows:
        cells = [columns[t].get(name) for t in titles]
        print(f"| `{name}` | " + " | ".join("-" if c is None else "inf" if math.isinf(c) else f"{c:.1f}" for c in cells) + " |")
    print("| f0 worst error (cents) | " + " | ".join(f"{agreements[t].max_cents_error:.1e}" for t in titles) + " |")
    print("| voicing mismatches (unambiguous frames) | " + " | ".join(
        f"{agreements[t].voicing_mismatches} of {agreements[t].frames - agreements[t].ambiguous_frames}" for t in titles) + " |")
    lowest = min(v for col in columns.values() for v in col.values())
    print(f"\nLowest SNR over every stage and run: {lowest:.1f} dB (floor 80 dB).")


if __name__ == "__main__":
    main()
