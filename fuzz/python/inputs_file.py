"""Fuzz target py-inputs-file: the files `golden generate --inputs` reads: a voice's inputs and noise draws
(`read_inputs_file`, checked against a voice's manifest or against none) and an index golden's content
features (`read_feats`), each as .safetensors and as .npz.

A selector byte comes first: `% 3` picks the voice (the committed tiny v2 f0 and v1 no-f0 manifests, or none),
`// 3 % 4` the reader and the file's suffix (READERS); the rest is the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import harness

with harness.instrumented():
    from rvc_ios_tools.index.golden import read_feats
    from rvc_ios_tools.voice.inputs import read_inputs_file

scratch = harness.ScratchFiles()
MANIFESTS = ("tiny-v2-40k.manifest.json", "tiny-v1-48k-nof0.manifest.json")
VOICES = tuple(json.loads((harness.REPO / "swift_fixtures" / name).read_text()) for name in MANIFESTS) + (None,)
READERS = (("inputs", ".safetensors"), ("inputs", ".npz"), ("feats", ".safetensors"), ("feats", ".npz"))


def read(data: bytes) -> None:
    if not data:
        return
    voice = VOICES[data[0] % 3]
    reader, suffix = READERS[data[0] // 3 % 4]
    scratch.clear()
    path = scratch.write("inputs" + suffix, data[1:])
    if reader == "inputs":
        read_inputs_file(path, voice)
    else:
        read_feats(path)


def selector(voice: int, reader: int) -> bytes:
    return bytes([voice + 3 * reader])


def write_seeds(folder: Path) -> None:
    import io

    import numpy as np
    import safetensors.numpy

    from rvc_ios_tools.voice.inputs import synthesize_voice_inputs

    def save(name: str, voice: int, tensors: dict[str, np.ndarray]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **tensors)
        (folder / f"{name}.safetensors").write_bytes(selector(voice, 0) + safetensors.numpy.save(tensors))
        (folder / f"{name}.npz").write_bytes(selector(voice, 1) + buffer.getvalue())

    v2, v1 = VOICES[0], VOICES[1]
    inputs = synthesize_voice_inputs(v2, seed=0, seconds=0.1)
    frames = inputs["phone"].shape[1]
    rng = np.random.default_rng(0)
    noise = {
        "noise.z_p": rng.standard_normal((1, v2["config"]["inter_channels"], frames), dtype=np.float32),
        "noise.nsf": rng.standard_normal((1, frames * v2["upsample_factor"], 1), dtype=np.float32),
        "noise.nsf_phase": rng.random((1, 1), dtype=np.float32),
    }
    save("v2-f0-inputs", 0, inputs)
    save("v2-f0-inputs-noise", 0, {**inputs, **noise})
    save("v1-nof0-inputs", 1, synthesize_voice_inputs(v1, seed=1, seconds=0.1))
    save("no-voice-inputs", 2, {"phone": inputs["phone"], "pitchf": inputs["pitchf"]})
    feats = {"feats": rng.standard_normal((1, 6, 768), dtype=np.float32)}
    (folder / "feats.safetensors").write_bytes(selector(2, 2) + safetensors.numpy.save(feats))
    buffer = io.BytesIO()
    np.savez(buffer, **feats)
    (folder / "feats.npz").write_bytes(selector(2, 3) + buffer.getvalue())


if __name__ == "__main__":
    harness.main(read, write_seeds, harness.mutate_parts([harness.mutate_tensor_file], 1))
