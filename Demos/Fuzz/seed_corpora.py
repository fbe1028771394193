"""Seed corpora for the Swift fuzz targets (Demos/Fuzz/), written from the committed fixtures.

    python3 Demos/Fuzz/seed_corpora.py OUT_DIR [MICRO_MODELS_DIR]   # OUT_DIR/<target>/<seed>, a folder per target

scripts/fuzz.sh runs it before every run, so the seeds follow the fixtures. Inputs pairing a JSON file with a
safetensors file are the JSON, one NUL, then the safetensors bytes (what `splitAtFirstNUL` in FuzzMain.swift
takes apart). Fixtures are shrunk: libFuzzer's speed falls with input length (a manifest is decoded several
times per input), and the structure, not the weight values, is what the readers check. So manifests keep
two entries of their tensor list (the model loaders read the weights file, not the list), safetensors files
and golden sets keep their small tensors, the index export is also seeded with a 6-vector index whose
manifest checks out, and strict weight loading with the micro models of `micro_models.py` when their folder
is given (also with their whole manifests, so the checksums check out), else with the fixtures. A few seeds
claim sizes that once trapped or allocated terabytes (`HOSTILE_SIZES`).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "swift_fixtures"
GOLDEN = REPO / "golden"

# Golden sets are shrunk to their tensors up to this size (the index still names the rest); safetensors files
# to their first few tensors up to this size.
SHRUNK_TENSOR_BYTES = 4096
KEPT_TENSORS = 16
# Manifests keep this many entries of their tensor list.
KEPT_MANIFEST_TENSORS = 2


def safetensors(tensors: dict[str, tuple[str, list[int], bytes]], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file of (dtype, shape, raw bytes) by name, header padded to 8 bytes as the writers pad it."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(raw for _, _, raw in tensors.values())


def read_safetensors(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def trimmed_manifest(path: Path) -> bytes:
    manifest = json.loads(path.read_text())
    manifest["tensors"] = manifest["tensors"][:KEPT_MANIFEST_TENSORS]
    return json.dumps(manifest, separators=(",", ":")).encode()


def shrunk(path: Path, count: int | None = None) -> bytes:
    """`path` with only its (first `count`) tensors of at most SHRUNK_TENSOR_BYTES, metadata kept."""
    header, data = read_safetensors(path)
    metadata = header.pop("__metadata__", None)
    kept = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        if end - begin <= SHRUNK_TENSOR_BYTES and len(kept) != count:
            kept[name] = (entry["dtype"], entry["shape"], data[begin:end])
    return safetensors(kept, metadata)


def small_safetensors() -> dict[str, bytes]:
    """Hand-made files: each dtype the readers take or refuse, scalars, empty tensors, metadata."""
    return {
        "every-dtype": safetensors({
            "f32": ("F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3)),
            "f16": ("F16", [3], struct.pack("<3H", 0x3C00, 0x0001, 0x7C00)),
            "f64": ("F64", [2], struct.pack("<2d", 0.1, -7)),
            "i64": ("I64", [2], struct.pack("<2q", 5, -(1 << 40))),
            "i32": ("I32", [1, 2], struct.pack("<2i", 7, -8)),
            "i16": ("I16", [2], struct.pack("<2h", 32767, -32768)),
            "u8": ("U8", [2], b"\x01\xff"),
            "bool": ("BOOL", [1], b"\x01"),
            "bf16": ("BF16", [1], b"\x80\x3f"),
        }, {"producer": "seed", "layout.f32": "BC"}),
        "scalar-and-empty": safetensors({
            "scalar": ("F32", [], struct.pack("<f", 1)),
            "empty": ("F32", [0, 4], b""),
        }),
        "empty-header": safetensors({}),
    }


def micro_index() -> bytes:
    """An index export of 6 vectors of width 4 in 2 lists, its manifest's checksums right when xxhash is there."""
    d, nlist, ids, offsets = 4, 2, [3, 0, 5, 1, 4, 2], [0, 2, 6]
    tensors = {
        "index.centroids": ("F32", [nlist, d], struct.pack(f"<{nlist * d}f", *[0.5 * i for i in range(nlist * d)])),
        "index.ids": ("I64", [len(ids)], struct.pack(f"<{len(ids)}q", *ids)),
        "index.list_offsets": ("I64", [nlist + 1], struct.pack(f"<{nlist + 1}q", *offsets)),
        "index.vectors": ("F32", [len(ids), d], struct.pack(f"<{len(ids) * d}f", *[0.25 * i for i in range(len(ids) * d)])),
    }
    try:
        from xxhash import xxh64_hexdigest
    except ImportError:
        def xxh64_hexdigest(raw: bytes) -> str:
            return "0" * 16
    dtypes = {"F32": "float32", "I64": "int64"}
    manifest = {
        "format_version": 2, "kind": "index", "model_name": "micro-index", "dtype": "float32",
        "weights_file": "micro-index.safetensors", "dropped": [],
        "index": {"d": d, "nlist": nlist, "nprobe": 1, "ntotal": len(ids), "metric": "l2", "k": 8,
                  "faiss_type": "IwFl", "quantizer": "IxF2", "list_sizes_form": "full"},
        "tensors": [{"key": key, "shape": shape, "dtype": dtypes[dtype], "xxh64": xxh64_hexdigest(raw), "layout": "NC"}
                    for key, (dtype, shape, raw) in tensors.items()],
    }
    return json.dumps(manifest, separators=(",", ":")).encode() + b"\0" + safetensors(tensors, {"format": "rvc-ios-tools"})


def wav_seeds(out: Path) -> None:
    """A few milliseconds of a tone in every encoding the WAV reader takes (sox), or 16-bit mono alone."""
    formats = {
        "pcm16-mono": ["-b", "16", "-c", "1", "-e", "signed-integer"],
        "pcm8-mono": ["-b", "8", "-c", "1", "-e", "unsigned-integer"],
        "pcm24-stereo": ["-b", "24", "-c", "2", "-e", "signed-integer"],
        "pcm32-mono": ["-b", "32", "-c", "1", "-e", "signed-integer"],
        "float32-stereo": ["-b", "32", "-c", "2", "-e", "floating-point"],
        "float64-mono": ["-b", "64", "-c", "1", "-e", "floating-point"],
        "extensible-3ch": ["-b", "16", "-c", "3", "-e", "signed-integer"],
    }
    if shutil.which("sox"):
        for name, options in formats.items():
            subprocess.run(["sox", "-n", "-r", "16000", *options, str(out / f"{name}.wav"), "synth", "0.004", "sine", "440"],
                           check=True)
    else:
        import wave

        with wave.open(str(out / "pcm16-mono.wav"), "wb") as file:
            file.setnchannels(1)
            file.setsampwidth(2)
            file.setframerate(16000)
            file.writeframes(struct.pack("<64h", *range(0, 6400, 100)))




# Seeds with a size no weight bounds claiming far too much: (target, seed, {field path: value}). Each once
# trapped or allocated terabytes (Demos/Tests/RVCNativeTests/FuzzRegressionTests.swift); as seeds the fuzzer
# starts from these edges on every run.
HOSTILE_SIZES = (
    ("index-export", "micro-index", {("index", "k"): 10**12}),
    ("manifest", "tiny-rmvpe.manifest.json", {("rmvpe", "mel", "n_fft"): 1 << 40, ("rmvpe", "mel", "win_length"): 1 << 40}),
    ("manifest", "tiny-rmvpe.manifest.json", {("rmvpe", "mel", "n_mels"): 1 << 40, ("rmvpe", "architecture", "n_mels"): 1 << 40}),
    ("manifest", "tiny-v2-40k.manifest.json", {("config", "upsample_rates"): [1] * 64, ("config", "upsample_kernel_sizes"): [1] * 64}),
    ("manifest", "tiny-hubert.manifest.json", {("hubert", "architecture", "conv_layers"): [[2, 1 << 62, 1 << 62]] * 2}),
    ("weights", "micro-rmvpe", {("rmvpe", "mel", "n_fft"): 1 << 40, ("rmvpe", "mel", "win_length"): 1 << 40}),
)


def with_fields(seed: bytes, fields: dict[tuple[str, ...], object]) -> bytes:
    """`seed` (JSON, or JSON + NUL + safetensors) with the JSON's fields at those paths replaced."""
    text, separator, rest = seed.partition(b"\0")
    document = json.loads(text)
    for path, value in fields.items():
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return json.dumps(document, separators=(",", ":")).encode() + separator + rest


def main(out: Path, micro_models: Path | None = None) -> None:
    if out.exists():
        shutil.rmtree(out)
    targets = {name: out / name for name in ("safetensors", "manifest", "golden-index", "wav", "index-export", "weights")}
    for folder in targets.values():
        folder.mkdir(parents=True)

    for name, data in small_safetensors().items():
        (targets["safetensors"] / name).write_bytes(data)
    for path in sorted(FIXTURES.glob("*.safetensors")):
        (targets["safetensors"] / path.name).write_bytes(shrunk(path, KEPT_TENSORS))

    manifests = sorted(FIXTURES.glob("*.manifest.json"))
    for path in manifests:
        (targets["manifest"] / path.name).write_bytes(trimmed_manifest(path))

    for folder in sorted(p for p in GOLDEN.iterdir() if (p / "index.json").is_file()):
        index = (folder / "index.json").read_bytes()
        (targets["golden-index"] / f"{folder.name}-index").write_bytes(index)
        if (folder / "golden.safetensors").is_file():
            (targets["golden-index"] / f"{folder.name}-shrunk").write_bytes(index + b"\0" + shrunk(folder / "golden.safetensors"))

    wav_seeds(targets["wav"])

    (targets["index-export"] / "micro-index").write_bytes(micro_index())
    model_manifests = sorted(micro_models.glob("*.manifest.json")) if micro_models else []
    for manifest in manifests + model_manifests:
        weights = manifest.with_name(manifest.name.replace(".manifest.json", ".safetensors"))
        kind = json.loads(manifest.read_text()).get("kind")
        name = manifest.name.replace(".manifest.json", "")
        if kind == "index":
            target = "index-export"
        elif model_manifests and manifest not in model_manifests:
            continue
        else:
            target = "weights"
        (targets[target] / name).write_bytes(trimmed_manifest(manifest) + b"\0" + weights.read_bytes())
    for manifest in model_manifests:
        weights = manifest.with_name(manifest.name.replace(".manifest.json", ".safetensors"))
        name = manifest.name.replace(".manifest.json", "-whole-manifest")
        (targets["weights"] / name).write_bytes(manifest.read_bytes() + b"\0" + weights.read_bytes())

    for number, (target, seed, fields) in enumerate(HOSTILE_SIZES):
        if (targets[target] / seed).is_file():
            (targets[target] / f"hostile-{number}-{seed}").write_bytes(with_fields((targets[target] / seed).read_bytes(), fields))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else None)
