"""Print the README's content-encoder parity table: the MLX reference against transformers' `HubertModel`,
SNR in dB per stage, on the tests' cases (tests/test_hubert_parity.py): the same random weights on both sides,
ours loaded from their fairseq-format file; espeak-ng speech.

    python scripts/hubert_parity_table.py [--skip-long]     # --skip-long: no full-size 20 s column
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rvc_ios_tools.core import blas  # noqa: E402,F401  (before mlx)

# (column, preset, samples, v1 convention)
CASES = (
    ("tiny 1 s", "tiny", 16000, "rvc"),
    ("tiny 401 samples", "tiny", 401, "rvc"),
    ("tiny 1.27 s (N-400 = 121 mod 320)", "tiny", 20321, "rvc"),
    ("tiny 1 s, Applio v1", "tiny", 16000, "applio"),
    ("full 1 s", "full", 16000, "rvc"),
    ("full 20 s", "full", 320000, "rvc"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()

    from rvc_ios_tools.core.figures import compare_runs
    from rvc_ios_tools.hubert.convert import convert_hubert, load_hubert
    from rvc_ios_tools.hubert.demo import demo_architecture, random_hubert_state_dict, synthesized_speech, write_demo_fairseq
    from rvc_ios_tools.hubert.reference import build_hubert, hubert_golden_tensors
    from rvc_ios_tools.hubert.upstream import load_upstream_hubert, run_upstream_hubert

    speech = synthesized_speech(320000)
    models = {}
    columns: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for column, preset, samples, convention in CASES:
            if args.skip_long and samples > 100000:
                continue
            if preset not in models:
                architecture = demo_architecture(preset)
                upstream = load_upstream_hubert(random_hubert_state_dict(0, architecture), architecture)
                checkpoint = load_hubert(write_demo_fairseq(Path(tmp) / f"{preset}.pt", seed=0, preset=preset))
                models[preset] = (upstream, build_hubert(convert_hubert(checkpoint), checkpoint.architecture))
            upstream, ours = models[preset]
            reference = run_upstream_hubert(upstream, speech[:samples], convention)
            candidate = hubert_golden_tensors(ours, speech[:samples], convention)
            figures = compare_runs({k: v for k, v in reference.items() if k != "audio"}, candidate)
            columns[column] = {f.name: f.snr_db for f in figures}
    names = list(max(columns.values(), key=len))  # the full-size column has every stage, in pipeline order
    print("MLX reference vs transformers HubertModel (+ final_proj), float32, random weights (g perturbed), "
          "espeak-ng speech. SNR dB per stage; `-` = stage absent.\n")
    print("| stage | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name in names:
        cells = [f"{values[name]:.1f}" if name in values else "-" for values in columns.values()]
        print(f"| `{name}` | " + " | ".join(cells) + " |")
    lowest = min(value for values in columns.values() for value in values.values())
    print(f"\nLowest SNR over every stage and case: {lowest:.1f} dB (floor 100 dB).")


if __name__ == "__main__":
    main()
