"""Fuzz target py-voice-checkpoint: a voice .pth through `load_voice` (the safe unpickler, torch's zip and
legacy formats, the config and shape checks) and the rule-table conversion `rvc-ios export` runs on it."""

from __future__ import annotations

from pathlib import Path

import harness

with harness.instrumented():
    from rvc_ios_tools.voice.checkpoint import load_voice
    from rvc_ios_tools.voice.convert import convert_voice

scratch = harness.ScratchFiles()


def read(data: bytes) -> None:
    convert_voice(load_voice(scratch.write("voice.pth", data)))


def write_seeds(folder: Path) -> None:
    import torch

    from rvc_ios_tools.voice.demo import write_demo_voice

    for preset, flavor in (("v2-40k-tiny", "rvc-webui"), ("v1-48k-nof0-tiny", "applio")):
        path = write_demo_voice(folder / f"{preset}-{flavor}.pth", preset, flavor=flavor)
        payload = torch.load(path, weights_only=True)
        (folder / f"{preset}-{flavor}-legacy.pth").write_bytes(harness.legacy_torch_bytes(payload))
    # A few hundred bytes that still reach the config and shape checks: the fuzzer mutates these fastest.
    small = {
        "weight": {"emb_g.weight": torch.zeros(2, 4, dtype=torch.float16),
                   "enc_p.emb_phone.weight": torch.zeros(3, 768, dtype=torch.float16)[:, :2]},
        "config": [513, 32, 2, 3, 4, 1, 1, 3, 0, "1", [3], [[1, 3, 5]], [2, 2], 4, [4, 4], 2, 4, 32000],
        "sr": "32k", "f0": 0, "version": "v2", "info": "fuzz seed",
    }
    (folder / "small.pth").write_bytes(harness.torch_bytes(small))
    (folder / "small-legacy.pth").write_bytes(harness.legacy_torch_bytes(small))


if __name__ == "__main__":
    harness.main(read, write_seeds, harness.mutate_zip_member)
