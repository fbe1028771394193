"""Fuzz target py-golden-set: a golden set folder (index.json + golden.safetensors) through `read_golden`, as
`rvc-ios golden diff` and `coreml run` read it. One input holds both files, laid out by `harness.pack_files`."""

from __future__ import annotations

from pathlib import Path

import harness

with harness.instrumented():
    from rvc_ios_tools.core.golden import INDEX_FILE, TENSOR_FILE, read_golden

scratch = harness.ScratchFiles()
# The committed golden sets small enough to mutate quickly (the others are the same format, larger).
SEED_SETS = ("tiny-index", "tiny-rmvpe-reflect", "tiny-hubert")


def read(data: bytes) -> None:
    index, tensors = harness.unpack_files(data, 2)
    scratch.write(INDEX_FILE, index)
    scratch.write(TENSOR_FILE, tensors)
    read_golden(scratch.folder)


def write_seeds(folder: Path) -> None:
    for name in SEED_SETS:
        source = harness.REPO / "golden" / name
        packed = harness.pack_files([(source / INDEX_FILE).read_bytes(), (source / TENSOR_FILE).read_bytes()])
        (folder / name).write_bytes(packed)


if __name__ == "__main__":
    harness.main(read, write_seeds, harness.mutate_parts([harness.mutate_json, harness.mutate_safetensors_header]))
