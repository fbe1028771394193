"""Fuzz target py-rmvpe-checkpoint: rmvpe.pt through `load_rmvpe_checkpoint` and the architecture selection and
shape checks of `convert_rmvpe_state_dict`, as `rvc-ios export --rmvpe` runs them."""

from __future__ import annotations

from pathlib import Path

import harness

with harness.instrumented():
    from rvc_ios_tools.rmvpe.convert import convert_rmvpe_state_dict, load_rmvpe_checkpoint

scratch = harness.ScratchFiles()


def read(data: bytes) -> None:
    path = scratch.write("rmvpe.pt", data)
    convert_rmvpe_state_dict(load_rmvpe_checkpoint(path), "float16", path.name)


def write_seeds(folder: Path) -> None:
    import torch

    from rvc_ios_tools.rmvpe.demo import write_demo_rmvpe

    path = write_demo_rmvpe(folder / "tiny.pt", preset="tiny")
    (folder / "tiny-legacy.pt").write_bytes(harness.legacy_torch_bytes(torch.load(path, weights_only=True)))
    small = {"unet.encoder.bn.weight": torch.ones(1), "unet.encoder.bn.num_batches_tracked": torch.tensor(0),
             "fc.1.bias": torch.zeros(360, dtype=torch.float16)}
    (folder / "small.pt").write_bytes(harness.torch_bytes(small))
    (folder / "small-legacy.pt").write_bytes(harness.legacy_torch_bytes(small))


if __name__ == "__main__":
    harness.main(read, write_seeds, harness.mutate_zip_member)
