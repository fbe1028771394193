"""Fuzz target py-hubert-fairseq: a fairseq content encoder (hubert_base.pt: `model`, `cfg`, the pickled label
Dictionary read into an inert stand-in) through `load_hubert` and the conversion's shape checks."""

from __future__ import annotations

from pathlib import Path

import harness

with harness.instrumented():
    from rvc_ios_tools.hubert.convert import convert_hubert_state_dict, is_hubert_source, load_hubert

scratch = harness.ScratchFiles()


def read(data: bytes) -> None:
    path = scratch.write("hubert_base.pt", data)
    is_hubert_source(path)  # `rvc-ios inspect` asks this of every file first
    checkpoint = load_hubert(path)
    convert_hubert_state_dict(checkpoint.state_dict, checkpoint.architecture, "float16", path.name)


def write_seeds(folder: Path) -> None:
    import torch

    from rvc_ios_tools.hubert.convert import FairseqDictionary, FAIRSEQ_DICTIONARY_GLOBAL
    from rvc_ios_tools.hubert.demo import write_demo_fairseq

    path = write_demo_fairseq(folder / "tiny.pt", preset="tiny")
    with torch.serialization.safe_globals([(FairseqDictionary, FAIRSEQ_DICTIONARY_GLOBAL)]):
        payload = torch.load(path, weights_only=True)
    # Saved back, the stand-in pickles under its own name; put fairseq's back so the seed reads as the original.
    payload["task_state"] = {"dictionaries": []}
    (folder / "tiny-legacy.pt").write_bytes(harness.legacy_torch_bytes(payload))
    small = {"model": {"final_proj.weight": torch.zeros(2, 2)},
             "cfg": {"model": {"conv_feature_layers": "[(4,10,5)] + [(4,3,2)] * 2", "encoder_layers": 1,
                               "encoder_embed_dim": 4, "encoder_attention_heads": 1, "encoder_ffn_embed_dim": 8,
                               "conv_pos": 2, "conv_pos_groups": 1}}}
    (folder / "small.pt").write_bytes(harness.torch_bytes(small))
    (folder / "small-legacy.pt").write_bytes(harness.legacy_torch_bytes(small))


if __name__ == "__main__":
    harness.main(read, write_seeds, harness.mutate_zip_member)
