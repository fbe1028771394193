"""Micro models for the `weights` fuzz target's seeds: a v2 and a v1 voice, an RMVPE and a content encoder with
one or two channels where the committed fixtures have 8 to 48, exported by the Python toolchain.

    .venv/bin/python Demos/Fuzz/micro_models.py OUT_DIR    # OUT_DIR/<name>.manifest.json + .safetensors

Strict loading checks keys and shapes, not values, so a model of the same structure at a tenth of the bytes
is as good a seed and libFuzzer runs it ten times as often. Needs the toolchain's environment (torch, rvc);
`seed_corpora.py` falls back to the committed fixtures without it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# (name, version, f0, the 18-item config): every structural feature of a real voice (4 upsampling stages,
# relative attention, 4 flows), 2 to 16 channels.
VOICES = (
    ("micro-v2-32k", "v2", True, [513, 32, 2, 4, 4, 2, 1, 3, 0, "2", [3], [[1, 3]], [10, 8, 2, 2], 16, [20, 16, 4, 4], 2, 2, 32000]),
    ("micro-v1-40k-nof0", "v1", False, [1025, 32, 2, 4, 4, 2, 1, 3, 0, "1", [3], [[1, 3, 5]], [10, 10, 2, 2], 16, [16, 16, 4, 4], 2, 2, 40000]),
)


def write_micro_models(out: Path) -> None:
    from rvc_ios_tools.hubert import convert as hubert_convert
    from rvc_ios_tools.hubert.demo import write_demo_fairseq
    from rvc_ios_tools.hubert.export import export_hubert
    from rvc_ios_tools.rmvpe import convert as rmvpe_convert
    from rvc_ios_tools.rmvpe.demo import write_demo_rmvpe
    from rvc_ios_tools.rmvpe.export import export_rmvpe
    from rvc_ios_tools.voice import demo as voice_demo
    from rvc_ios_tools.voice.export import export_voice

    # The exporters accept the demo presets; these sizes are registered as presets for this process only.
    rmvpe_convert.DEMO_ARCHITECTURES["micro"] = {
        **rmvpe_convert.TINY_ARCHITECTURE, "n_blocks": 1, "en_de_layers": 1, "en_out_channels": 1, "gru_hidden_size": 1,
    }
    hubert_convert.DEMO_ARCHITECTURES["micro"] = {
        **hubert_convert.TINY_ARCHITECTURE, "conv_layers": [[2, 10, 5]] + [[2, 3, 2]] * 4 + [[2, 2, 2]] * 2,
        "hidden_size": 4, "num_layers": 1, "num_heads": 2, "intermediate_size": 4, "conv_pos": 2,
        "conv_pos_groups": 2, "final_proj_dim": 2, "v1_layer": 1,
    }
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as sources:
        for name, version, f0, config in VOICES:
            voice_demo.PRESETS[name] = voice_demo.DemoPreset(name, version, f0, config)
            export_voice(voice_demo.write_demo_voice(Path(sources) / f"{name}.pth", name, seed=5), out, name)
        export_rmvpe(write_demo_rmvpe(Path(sources) / "micro-rmvpe.pt", seed=5, preset="micro"), out)
        export_hubert(write_demo_fairseq(Path(sources) / "micro-hubert.pt", seed=5, preset="micro"), out,
                      model_name="micro-hubert")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write_micro_models(Path(sys.argv[1]))
