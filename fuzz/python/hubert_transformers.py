"""Fuzz target py-hubert-transformers: a Hugging Face content-encoder folder (config.json with model.safetensors
or pytorch_model.bin) through `load_hubert` and the conversion's shape checks.

One input holds the folder: a selector byte (even: model.safetensors, odd: pytorch_model.bin), then config.json
and the weights file as `harness.pack_files` lays them out.
"""

from __future__ import annotations

from pathlib import Path

import harness

with harness.instrumented():
    from rvc_ios_tools.hubert.convert import convert_hubert_state_dict, load_hubert

scratch = harness.ScratchFiles()
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def read(data: bytes) -> None:
    if not data:
        return
    config, weights = harness.unpack_files(data[1:], 2)
    scratch.clear()
    scratch.write("config.json", config)
    scratch.write(WEIGHT_FILES[data[0] % 2], weights)
    checkpoint = load_hubert(scratch.folder)
    convert_hubert_state_dict(checkpoint.state_dict, checkpoint.architecture, "float16", checkpoint.weights_file.name)


def write_seeds(folder: Path) -> None:
    import tempfile

    import numpy as np
    import safetensors.numpy

    from rvc_ios_tools.hubert.demo import write_demo_hf_folder

    with tempfile.TemporaryDirectory() as work:
        for selector, weights_format in enumerate(("safetensors", "bin")):
            source = write_demo_hf_folder(Path(work) / weights_format, preset="tiny", weights_format=weights_format)
            packed = harness.pack_files([(source / "config.json").read_bytes(),
                                         (source / WEIGHT_FILES[selector]).read_bytes()])
            (folder / f"tiny-{weights_format}").write_bytes(bytes([selector]) + packed)
    small_config = b'{"model_type": "hubert", "hidden_size": 4, "num_hidden_layers": 1, "conv_dim": [4, 4]}'
    small_weights = safetensors.numpy.save({"final_proj.weight": np.zeros((2, 2), np.float32)})
    (folder / "small-safetensors").write_bytes(b"\x00" + harness.pack_files([small_config, small_weights]))


if __name__ == "__main__":
    harness.main(read, write_seeds, harness.mutate_parts([harness.mutate_json, harness.mutate_safetensors_header], 1))
