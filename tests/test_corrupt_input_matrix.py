"""The corrupt-input matrix (issue 15, part 4): every command against every file it reads, each file damaged
every way a download, a full disk or a stranger damages one.

For every (command, file) row of `PYTHON_READS` and `SWIFT_READS` and every corruption of `CORRUPTIONS` that
applies to the file's kind, the command must
- exit 2 (1 is reserved for a parity divergence; some corruptions leave a file that is still valid, and those
  cases say which other exit codes they allow and why),
- print one `error:` line that names the file (or its folder) and says what to do,
- print no traceback and never crash,
- leave nothing partial behind (every output is written to a temporary name and renamed on success),
- finish within its timeout,
- and, for the 1 KB hostile file whose header claims terabytes, grow by less than 200 MB of memory.
Output rows (`PYTHON_WRITES`, `SWIFT_WRITES`) point each command's output at a folder the system refuses:
read-only, or on a full disk.

How it runs, and why this way:
- `rvc-ios` runs in this process through typer's CliRunner. Spawning `rvc-ios` costs 1-2 s of imports a case;
  in-process the exit code, the output, any escaped exception (CliRunner keeps it) and the files left behind
  are the same evidence.
- Memory is the exception: the hostile files are run once more in a worker process (this file run as a
  script) that imports torch, MLX and the package first, then, before each case, resets the kernel's peak-RSS
  mark (`/proc/self/clear_refs`). What is measured is the case's own growth, not the ~500 MB the imports
  cost, which would swamp a 200 MB bound. The same command on the file left empty is measured as its baseline.
- RVCNativeMac runs as a subprocess (it starts in milliseconds) through a small launcher that forks it and
  reads its peak RSS from `wait4`: a child started straight from pytest would report pytest's own peak,
  because Linux carries the parent's high-water mark into `ru_maxrss` across fork and exec.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import wave
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
PEAK_RSS_LIMIT_MB = 200
CASE_TIMEOUT_S = 60
HUGE_COUNT = 1 << 40  # elements a hostile header claims: 4 TiB of float32

# ---------------------------------------------------------------------------------------------------------
# The files: every kind a command reads, where each valid one lives in the pristine tree, and what a
# "wrong kind" and an "other model" stand-in for it is.
# ---------------------------------------------------------------------------------------------------------

PICKLE, SAFETENSORS, JSON, WAV, FAISS = "pickle", "safetensors", "json", "wav", "faiss"


@dataclasses.dataclass(frozen=True)
class FileSpec:
    path: str  # relative to the tree
    kind: str
    checksummed: bool = False  # a manifest's XXH64 or a golden index's sha256 covers its data bytes
    other_model: str | None = None  # a valid file of the same format for another network, in the tree


FILES = {spec.path: spec for spec in (
    FileSpec("models/voice.pth", PICKLE, other_model="rmvpe.pt"),
    FileSpec("models/added_IVF5_Flat_nprobe_1_voice_v1.index", FAISS, other_model="others/v2.index"),
    FileSpec("rmvpe.pt", PICKLE, other_model="models/voice.pth"),
    FileSpec("hubert.pt", PICKLE, other_model="models/voice.pth"),
    FileSpec("hubert/config.json", JSON, other_model="others/hubert-v2-config.json"),
    FileSpec("hubert/model.safetensors", SAFETENSORS, other_model="Assets/rmvpe.safetensors"),
    FileSpec("speech.wav", WAV),
    FileSpec("voice-inputs.safetensors", SAFETENSORS, other_model="feats.safetensors"),
    FileSpec("feats.safetensors", SAFETENSORS, other_model="voice-inputs.safetensors"),
    FileSpec("noise.safetensors", SAFETENSORS, other_model="voice-inputs.safetensors"),
    FileSpec("audio.safetensors", SAFETENSORS, other_model="feats.safetensors"),
    FileSpec("candidate.safetensors", SAFETENSORS, other_model="golden/index/golden.safetensors"),
    FileSpec("Assets/voice.manifest.json", JSON, checksummed=True, other_model="Assets/rmvpe.manifest.json"),
    FileSpec("Assets/voice.safetensors", SAFETENSORS, checksummed=True, other_model="Assets/rmvpe.safetensors"),
    FileSpec("Assets/rmvpe.manifest.json", JSON, checksummed=True, other_model="Assets/hubert.manifest.json"),
    FileSpec("Assets/rmvpe.safetensors", SAFETENSORS, checksummed=True, other_model="Assets/hubert.safetensors"),
    FileSpec("Assets/hubert.manifest.json", JSON, checksummed=True, other_model="Assets/rmvpe.manifest.json"),
    FileSpec("Assets/hubert.safetensors", SAFETENSORS, checksummed=True, other_model="Assets/rmvpe.safetensors"),
    FileSpec("Assets/index.manifest.json", JSON, checksummed=True, other_model="Assets/voice.manifest.json"),
    FileSpec("Assets/index.safetensors", SAFETENSORS, checksummed=True, other_model="Assets/voice.safetensors"),
    FileSpec("golden/voice/index.json", JSON, checksummed=True, other_model="golden/index/index.json"),
    FileSpec("golden/voice/golden.safetensors", SAFETENSORS, checksummed=True,
             other_model="golden/index/golden.safetensors"),
    FileSpec("golden/index/index.json", JSON, checksummed=True, other_model="golden/voice/index.json"),
    FileSpec("golden/index/golden.safetensors", SAFETENSORS, checksummed=True,
             other_model="golden/voice/golden.safetensors"),
)}
VOICE, INDEX = "models/voice.pth", "models/added_IVF5_Flat_nprobe_1_voice_v1.index"

# A file of another format, for "the wrong kind of file" (a WAV where a checkpoint is expected, ...).
WRONG_KIND = {PICKLE: "speech.wav", SAFETENSORS: "Assets/voice.manifest.json", JSON: "audio.safetensors",
              WAV: "rmvpe.pt", FAISS: "audio.safetensors"}


def build_pristine_tree(root: Path) -> Path:
    """Every file the matrix reads, valid and tiny: a v1 32 kHz voice with pitch (and its index beside it, as
    RVC WebUI keeps them), tiny RMVPE and content encoders (fairseq and Hugging Face), their exports, golden
    sets, inputs files and half a second of speech-like audio."""
    from typer.testing import CliRunner

    from rvc_ios_tools.cli import app
    from rvc_ios_tools.core.files import write_safetensors
    from rvc_ios_tools.core.golden import read_golden
    from rvc_ios_tools.hubert.demo import demo_speech_like, hf_config, write_demo_fairseq
    from rvc_ios_tools.hubert.export import export_hubert
    from rvc_ios_tools.index.demo import build_index
    from rvc_ios_tools.index.export import export_index
    from rvc_ios_tools.index.golden import generate_index_golden
    from rvc_ios_tools.pipeline.demo import content_encoder_architecture, write_hf_content_encoder
    from rvc_ios_tools.rmvpe.demo import write_demo_rmvpe
    from rvc_ios_tools.rmvpe.export import export_rmvpe
    from rvc_ios_tools.voice.demo import write_demo_voice
    from rvc_ios_tools.voice.export import export_voice
    from rvc_ios_tools.voice.golden import generate_voice_golden

    assets = root / "Assets"
    (root / "models").mkdir(parents=True)
    (root / "others").mkdir()
    voice = write_demo_voice(root / VOICE, "v1-32k-tiny", seed=3)
    export_voice(voice, assets, "voice")
    write_hf_content_encoder(root / "hubert", content_encoder_architecture("tiny", "v1"), seed=5)
    export_hubert(root / "hubert", assets, model_name="hubert")
    write_demo_fairseq(root / "hubert.pt", seed=1, preset="tiny")
    (root / "others" / "hubert-v2-config.json").write_text(
        json.dumps(hf_config(content_encoder_architecture("tiny", "v2")), indent=2) + "\n")
    export_rmvpe(write_demo_rmvpe(root / "rmvpe.pt", seed=0, preset="tiny"), assets)
    rng = np.random.default_rng(4)
    build_index((rng.standard_normal((200, 256)) * 0.5).astype(np.float32), root / INDEX)
    build_index((rng.standard_normal((200, 768)) * 0.5).astype(np.float32), root / "others" / "v2.index")
    export_index(root / INDEX, assets, "index")

    samples = (demo_speech_like(8000, seed=2) * 20000).astype("<i2")
    with wave.open(str(root / "speech.wav"), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(samples.tobytes())
    write_safetensors(root / "audio.safetensors", {"audio": (samples[None, :] / 32768.0).astype(np.float32)})

    golden = generate_voice_golden(assets, "voice", root / "golden" / "voice", seed=0, seconds=0.3)
    roles = {entry["name"]: entry["role"] for entry in golden.index["tensors"]}
    write_safetensors(root / "voice-inputs.safetensors",
                      {name: array for name, array in golden.tensors.items() if roles[name] in ("input", "noise")})
    shutil.copy(root / "golden" / "voice" / "golden.safetensors", root / "candidate.safetensors")
    index_golden = generate_index_golden(assets, "index", root / "golden" / "index", seed=0, seconds=0.3)
    write_safetensors(root / "feats.safetensors", {"feats": index_golden.tensors["feats"]})

    # The per-segment draws `convert --noise` replays: those a conversion of this speech records.
    scratch = root.parent / "noise-scratch"
    result = CliRunner().invoke(app, ["convert", "--model-name", "voice", "--models-dir", str(root / "models"),
                                      "--input", str(root / "speech.wav"), "--output", str(scratch / "out.wav"),
                                      "--hubert", str(root / "hubert"), "--rmvpe", str(root / "rmvpe.pt"),
                                      "--golden", str(scratch / "golden"), "-q"])
    assert result.exit_code == 0, result.output
    recorded = read_golden(scratch / "golden").tensors
    write_safetensors(root / "noise.safetensors", {k: v for k, v in recorded.items() if ".noise." in k})
    shutil.rmtree(scratch)
    return root


# ---------------------------------------------------------------------------------------------------------
# The corruptions.
# ---------------------------------------------------------------------------------------------------------


def zip_payload(path: Path, name_part: str, largest: bool = False) -> tuple[int, int]:
    """(offset, size) of a stored zip member's bytes: the pickle (`data.pkl`) or the largest storage."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if name_part in info.filename]
    info = max(members, key=lambda i: i.file_size) if largest else members[0]
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def header_byte(path: Path, kind: str) -> int:
    """A byte no valid file of the kind can have changed: the pickle's PROTO opcode, the safetensors header's
    opening brace, the JSON's first brace, the WAV format code, the faiss dimension."""
    if kind == PICKLE:
        return zip_payload(path, "data.pkl")[0]
    return {SAFETENSORS: 8, JSON: 0, WAV: 20, FAISS: 4}[kind]


def data_byte(path: Path, kind: str) -> int:
    """A byte in the middle of the file's data: a tensor, the samples, the vectors."""
    size = path.stat().st_size
    if kind == PICKLE:
        offset, length = zip_payload(path, "/data/", largest=True)
        return offset + length // 2
    if kind == SAFETENSORS:
        start = 8 + int.from_bytes(path.read_bytes()[:8], "little")
        return start + (size - start) // 2
    if kind == WAV:
        return 44 + (size - 44) // 2
    return size // 2


def pickle_claiming_huge_storage(out, legacy: bool) -> None:
    """Pickle a voice- (and fairseq-) shaped dict around a tensor whose storage claims 4 TiB, in torch.save's
    persistent ids: ("storage", type, key, location, element count), plus view metadata in the legacy format."""
    import torch

    class Storage:
        pass

    class HugeTensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (Storage(), 0, (HUGE_COUNT,), (1,), False, {})

    record = ("storage", torch.FloatStorage, "0", "cpu", HUGE_COUNT) + ((None,) if legacy else ())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return record if isinstance(obj, Storage) else None

    Pickler(out, protocol=2).dump({"weight": {"emb_g.weight": HugeTensor()}, "config": [1] * 18, "f0": 1,
                                   "version": "v1", "model": {"x": HugeTensor()}, "cfg": {}})


def hostile_zip_pickle() -> bytes:
    """A 1 KB torch zip checkpoint whose storage claims 4 TiB, with 16 bytes actually stored."""
    import io

    payload = io.BytesIO()
    pickle_claiming_huge_storage(payload, legacy=False)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", payload.getvalue())
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", bytes(16))
        archive.writestr("archive/version", "3\n")
    return out.getvalue()


def hostile_legacy_pickle() -> bytes:
    """torch's legacy (pre-zip) format: the storage's element count is only in the pickle, 4 TiB of it."""
    import io

    out = io.BytesIO()
    for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                                "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(value, out, protocol=2)
    pickle_claiming_huge_storage(out, legacy=True)
    pickle.dump(["0"], out, protocol=2)
    out.write(struct.pack("<q", 4) + bytes(16))
    return out.getvalue()


def hostile_safetensors_header_length() -> bytes:
    """An 8-byte length claiming a 1 TiB header, then 1 KB."""
    return (1 << 40).to_bytes(8, "little") + b'{"a":{}}' + b" " * 1008


def hostile_safetensors_shapes() -> bytes:
    """A well-formed 1 KB file whose tensors claim 2^60 bytes each, under every name a command looks up."""
    names = ["audio", "feats", "phone", "phone_lengths", "pitch", "pitchf", "sid", "noise.z_p", "vectors"]
    header = {name: {"dtype": "F32", "shape": [1 << 20, 1 << 20, 1 << 18], "data_offsets": [0, 1 << 60]}
              for name in names}
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return len(encoded).to_bytes(8, "little") + encoded + bytes(16)


def hostile_json() -> bytes:
    """A 2 KB JSON nested 1000 deep: deeper than Python's recursion limit lets a recursive parser go."""
    return b'{"format_version": 2, "kind": ' + b"[" * 1000 + b"]" * 1000 + b"}"


def hostile_wav() -> bytes:
    """A 1 KB WAV whose RIFF and data chunks each claim 4 GB."""
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    samples = (np.sin(np.arange(480) / 7.0) * 8000).astype("<i2").tobytes()
    return b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt \
        + b"data" + struct.pack("<I", 0xFFFFFFF0) + samples


def hostile_faiss() -> bytes:
    """A 1 KB IndexIVFFlat header claiming 2^40 vectors of 768 floats in 2^40 lists."""
    header = struct.pack("<iqqqBi", 768, HUGE_COUNT, 1 << 20, 1 << 20, 1, 1)
    ivf = b"IwFl" + header + struct.pack("<QQ", HUGE_COUNT, 1)
    quantizer = b"IxF2" + struct.pack("<iqqqBi", 768, HUGE_COUNT, 1 << 20, 1 << 20, 1, 1) + struct.pack("<Q", HUGE_COUNT * 768)
    body = ivf + quantizer
    return body + bytes(1024 - len(body))


HOSTILE = {
    PICKLE: {"hostile-zip-storage": hostile_zip_pickle, "hostile-legacy-storage": hostile_legacy_pickle},
    SAFETENSORS: {"hostile-header-length": hostile_safetensors_header_length,
                  "hostile-tensor-shapes": hostile_safetensors_shapes},
    JSON: {"hostile-nesting": hostile_json},
    WAV: {"hostile-chunk-sizes": hostile_wav},
    FAISS: {"hostile-counts": hostile_faiss},
}


def corruptions_for(spec: FileSpec) -> list[str]:
    names = ["missing", "empty", "truncated-1-byte", "truncated-10%", "truncated-50%", "last-byte-missing",
             "header-byte-flipped", "data-byte-flipped", "wrong-kind"]
    if spec.other_model:
        names.append("other-model")
    return names + list(HOSTILE[spec.kind])


def apply_corruption(tree: Path, spec: FileSpec, corruption: str) -> None:
    """Damage `tree/spec.path` (a symlink into the pristine tree) in place, as a real file."""
    target = tree / spec.path
    original = target.resolve().read_bytes()
    target.unlink()
    if corruption == "missing":
        return
    if corruption == "empty":
        data = b""
    elif corruption.startswith("truncated-"):
        keep = {"1-byte": 1, "10%": len(original) // 10, "50%": len(original) // 2}[corruption[len("truncated-"):]]
        data = original[:keep]
    elif corruption == "last-byte-missing":
        data = original[:-1]
    elif corruption in ("header-byte-flipped", "data-byte-flipped"):
        scratch = tree.parent / f".{tree.name}.original"
        scratch.write_bytes(original)
        position = (header_byte if corruption.startswith("header") else data_byte)(scratch, spec.kind)
        scratch.unlink()
        data = bytearray(original)
        data[position] ^= 0xFF
        data = bytes(data)
    elif corruption == "wrong-kind":
        data = (tree / WRONG_KIND[spec.kind]).resolve().read_bytes()
    elif corruption == "other-model":
        data = (tree / spec.other_model).resolve().read_bytes()
    else:
        data = HOSTILE[spec.kind][corruption]()
    target.write_bytes(data)


def allowed_exits(spec: FileSpec, corruption: str, still_valid: tuple[str, ...] = ()) -> set[int]:
    """Exit codes a case may end with. 2 always; 0 too where the damaged file is still a valid file of its
    kind that nothing can tell from the original, and 1 where a changed candidate is a real divergence."""
    allowed = {2}
    if corruption in still_valid:
        allowed.add(0)
    if corruption == "data-byte-flipped" and not spec.checksummed:
        # No checksum covers a .pth's weights, a WAV's samples or an index's vectors: one changed byte is
        # another valid file. (A zip member's CRC-32 would catch it, but torch does not check it.)
        allowed.add(0)
        if spec.path == "candidate.safetensors":
            allowed.add(1)  # a candidate with one changed value diverges: that is exit 1's meaning
    if spec.kind == WAV and corruption in ("truncated-10%", "truncated-50%", "last-byte-missing",
                                           "hostile-chunk-sizes"):
        # Like FFmpeg and libsndfile, a data chunk longer than the file is read as far as the file goes (streamed
        # recordings leave it at 0 or 0xFFFFFFFF); what remains is a shorter recording.
        allowed.add(0)
    if spec.kind == JSON and corruption == "last-byte-missing":
        allowed.add(0)  # the final newline
    return allowed


# ---------------------------------------------------------------------------------------------------------
# The commands and the files each reads.
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Read:
    command: str  # a name for the row: the command and what it is run on
    file: str  # a FILES key
    argv: tuple[str, ...]  # {tree} and {out} are filled in
    still_valid: tuple[str, ...] = ()  # corruptions after which the command may succeed, with the reason below
    reason: str = ""
    skip: tuple[str, ...] = ()  # corruptions not run for this row, with the reason below
    also_named: tuple[str, ...] = ()  # other files the error may name instead (a damaged file that is still valid
    # can make another file the one that no longer fits)

    @property
    def id(self) -> str:
        return f"{self.command}[{self.file}]"


# `golden generate --kind KIND` on the export named KIND, and the data it runs on.
GENERATE_DATA = {"voice": ("--inputs", "voice-inputs.safetensors"), "rmvpe": ("--audio", "speech.wav"),
                 "hubert": ("--audio", "speech.wav"), "index": ("--inputs", "feats.safetensors")}


def python_reads() -> list[Read]:
    voice_dirs = ("--models-dir", "{tree}/models")
    convert = ("convert", "--model-name", "voice", *voice_dirs, "--input", "{tree}/speech.wav",
               "--output", "{out}/out.wav", "--hubert", "{tree}/hubert", "--rmvpe", "{tree}/rmvpe.pt",
               "--noise", "{tree}/noise.safetensors", "--golden", "{out}/golden", "-q")
    generate = ("golden", "generate", "--assets", "{tree}/Assets", "--output", "{out}/golden")
    reads = [
        Read("inspect", VOICE, ("inspect", "{tree}/" + VOICE)),
        Read("inspect", "hubert.pt", ("inspect", "{tree}/hubert.pt"), still_valid=("other-model",),
             reason="inspect takes a voice as well as a content encoder, and shows what it is"),
        Read("inspect", "hubert/config.json", ("inspect", "{tree}/hubert")),
        Read("inspect", "hubert/model.safetensors", ("inspect", "{tree}/hubert")),
        Read("export", VOICE, ("export", "--model-name", "voice", *voice_dirs, "--output-dir", "{out}", "-q")),
        Read("export", INDEX, ("export", "--model-name", "voice", *voice_dirs, "--output-dir", "{out}", "-q"),
             still_valid=("missing",), reason="no index beside a voice: it is exported without retrieval"),
        Read("export --index", INDEX, ("export", "--index", "{tree}/" + INDEX, "--output-dir", "{out}", "-q"),
             still_valid=("other-model",), reason="alone, a valid index of another width is a valid index"),
        Read("export --rmvpe", "rmvpe.pt", ("export", "--rmvpe", "{tree}/rmvpe.pt", "--output-dir", "{out}", "-q")),
        Read("export --hubert", "hubert.pt", ("export", "--hubert", "{tree}/hubert.pt", "--output-dir", "{out}", "-q")),
        Read("export --hubert", "hubert/config.json",
             ("export", "--hubert", "{tree}/hubert", "--output-dir", "{out}", "-q")),
        Read("export --hubert", "hubert/model.safetensors",
             ("export", "--hubert", "{tree}/hubert", "--output-dir", "{out}", "-q")),
        Read("verify", "Assets/voice.manifest.json", ("verify", "--model-name", "voice", "--assets", "{tree}/Assets"),
             still_valid=("other-model",), reason="verify checks any export against the weights its manifest "
             "names; another model's manifest names that model's weights, which match it"),
        Read("verify", "Assets/voice.safetensors", ("verify", "--model-name", "voice", "--assets", "{tree}/Assets")),
        Read("verify --source", VOICE, ("verify", "--model-name", "voice", "--assets", "{tree}/Assets",
                                        "--source", "{tree}/" + VOICE)),
        *[Read(f"golden generate {kind}", name, (*generate, "--kind", kind, "--model-name", kind, option, "{tree}/" + data))
          for kind, (option, data) in GENERATE_DATA.items()
          for name in (f"Assets/{kind}.manifest.json", f"Assets/{kind}.safetensors", data)],
        *[Read("golden diff", name, ("golden", "diff", "{tree}/golden/voice", "{tree}/candidate.safetensors",
                                     "--json", "{out}/report.json"))
          for name in ("golden/voice/index.json", "golden/voice/golden.safetensors", "candidate.safetensors")],
        *[Read("convert", name, convert) for name in (VOICE, "rmvpe.pt", "hubert/config.json",
                                                      "hubert/model.safetensors", "noise.safetensors")],
        Read("convert", "speech.wav", convert, also_named=("noise.safetensors",),
             reason="a shorter but valid recording no longer fits the draws recorded for the original"),
        Read("convert", INDEX, convert, still_valid=("missing",),
             reason="no index beside a voice: the conversion runs without retrieval"),
        *[Read("capture-upstream", name, ("capture-upstream", "--model-name", "voice", *voice_dirs, "--output",
                                          "{out}/up", "--inputs", "{tree}/voice-inputs.safetensors"),
               skip=("data-byte-flipped",), reason="one changed value leaves a valid file, on which upstream "
               "PyTorch would run in full (6 s); the same readers take that case under golden generate and export")
          for name in (VOICE, "voice-inputs.safetensors")],
        Read("parity", VOICE, ("parity", "--model-name", "voice", *voice_dirs, "--work-dir", "{out}/parity",
                               "--seconds", "0.3", "--demos-dir", "{out}/no-swift-package"),
             skip=("data-byte-flipped",),
             reason="a voice with one weight changed is still a voice, and parity would go on to build Swift"),
    ]
    return reads


PYTHON_READS = python_reads()


@dataclasses.dataclass(frozen=True)
class Write:
    command: str
    argv: tuple[str, ...]  # {tree} is the valid tree; {out} a folder the system refuses

    @property
    def id(self) -> str:
        return self.command


PYTHON_WRITES = [
    Write("export", ("export", "--model-name", "voice", "--models-dir", "{tree}/models", "--output-dir", "{out}", "-q")),
    Write("export --rmvpe", ("export", "--rmvpe", "{tree}/rmvpe.pt", "--output-dir", "{out}", "-q")),
    Write("golden generate", ("golden", "generate", "--assets", "{tree}/Assets", "--model-name", "voice",
                              "--output", "{out}/golden", "--seconds", "0.3")),
    Write("golden diff --json", ("golden", "diff", "{tree}/golden/voice", "{tree}/candidate.safetensors",
                                 "--json", "{out}/report.json")),
    Write("convert --output", ("convert", "--model-name", "voice", "--models-dir", "{tree}/models", "--input",
                               "{tree}/speech.wav", "--output", "{out}/out.wav", "--hubert", "{tree}/hubert",
                               "--rmvpe", "{tree}/rmvpe.pt", "-q")),
    Write("convert --golden", ("convert", "--model-name", "voice", "--models-dir", "{tree}/models", "--input",
                               "{tree}/speech.wav", "--output", "{tree}/out.wav", "--hubert", "{tree}/hubert",
                               "--rmvpe", "{tree}/rmvpe.pt", "--golden", "{out}/golden", "-q")),
    Write("capture-upstream", ("capture-upstream", "--model-name", "voice", "--models-dir", "{tree}/models",
                               "--output", "{out}/up", "--seconds", "0.3")),
    Write("demo-model", ("demo-model", "--preset", "v1-32k-tiny", "--output-dir", "{out}")),
    Write("parity", ("parity", "--model-name", "voice", "--models-dir", "{tree}/models", "--work-dir", "{out}/parity",
                     "--seconds", "0.3", "--demos-dir", "{tree}/no-swift-package")),
]


def swift_reads() -> list[Read]:
    assets = ("--assets", "{tree}/Assets")
    run_voice = ("run", *assets, "--model", "voice", "--inputs", "{tree}/golden/voice", "--output", "{out}/c.safetensors")
    synthesize = ("synthesize", *assets, "--model", "voice", "--inputs", "{tree}/voice-inputs.safetensors",
                  "--output", "{out}/audio.safetensors")
    f0 = ("f0", *assets, "--model", "rmvpe", "--inputs", "{tree}/audio.safetensors", "--output", "{out}/f0.safetensors")
    features = ("features", *assets, "--model", "hubert", "--inputs", "{tree}/speech.wav", "--version", "v1",
                "--output", "{out}/features.safetensors")
    run_index = ("run", *assets, "--model", "index", "--inputs", "{tree}/golden/index", "--output", "{out}/c.safetensors")
    convert = ("convert", *assets, "--model", "voice", "--hubert", "hubert", "--rmvpe", "rmvpe", "--index", "index",
               "--input", "{tree}/speech.wav", "--output", "{out}/out.wav")
    return [
        *[Read("run", name, run_voice) for name in ("Assets/voice.manifest.json", "Assets/voice.safetensors",
                                                   "golden/voice/index.json")],
        Read("run", "golden/voice/golden.safetensors", run_voice, still_valid=("data-byte-flipped",),
             reason="each golden tensor's sha256 is checked when it is read; the byte changed is in an intermediate "
             "a chained run never reads (`rvc-ios golden diff` refuses the damaged set)"),
        *[Read("synthesize", name, synthesize) for name in ("Assets/voice.manifest.json", "Assets/voice.safetensors",
                                                           "voice-inputs.safetensors")],
        *[Read("f0", name, f0) for name in ("Assets/rmvpe.manifest.json", "Assets/rmvpe.safetensors", "audio.safetensors")],
        *[Read("features", name, features) for name in ("Assets/hubert.manifest.json", "Assets/hubert.safetensors",
                                                       "speech.wav")],
        *[Read("run index", name, run_index) for name in ("Assets/index.manifest.json", "Assets/index.safetensors",
                                                         "golden/index/index.json", "golden/index/golden.safetensors")],
        *[Read("convert", name, convert) for name in (
            "Assets/voice.manifest.json", "Assets/voice.safetensors", "Assets/hubert.manifest.json",
            "Assets/hubert.safetensors", "Assets/rmvpe.manifest.json", "Assets/rmvpe.safetensors",
            "Assets/index.manifest.json", "Assets/index.safetensors", "speech.wav")],
    ]


SWIFT_READS = swift_reads()
SWIFT_WRITES = [
    Write("run", ("run", "--assets", "{tree}/Assets", "--model", "voice", "--inputs", "{tree}/golden/voice",
                  "--output", "{out}/c.safetensors")),
    Write("synthesize", ("synthesize", "--assets", "{tree}/Assets", "--model", "voice", "--inputs",
                         "{tree}/voice-inputs.safetensors", "--output", "{out}/audio.safetensors")),
    Write("f0", ("f0", "--assets", "{tree}/Assets", "--model", "rmvpe", "--inputs", "{tree}/audio.safetensors",
                 "--output", "{out}/f0.safetensors")),
    Write("features", ("features", "--assets", "{tree}/Assets", "--model", "hubert", "--inputs", "{tree}/speech.wav",
                       "--version", "v1", "--output", "{out}/features.safetensors")),
    Write("convert", ("convert", "--assets", "{tree}/Assets", "--model", "voice", "--hubert", "hubert", "--rmvpe",
                      "rmvpe", "--input", "{tree}/speech.wav", "--output", "{out}/out.wav")),
]


def read_cases(reads: list[Read]) -> list:
    return [pytest.param(read, corruption, id=f"{read.id}-{corruption}")
            for read in reads for corruption in corruptions_for(FILES[read.file]) if corruption not in read.skip]


def write_cases(tool: str, writes: list[Write]) -> list:
    marks = [swift_available] if tool == "RVCNativeMac" else []
    return [pytest.param(tool, write, refusal, id=f"{tool} {write.id}-{refusal}", marks=marks)
            for write in writes for refusal in REFUSALS]


REFUSALS = ("read-only-folder", "full-disk")

# ---------------------------------------------------------------------------------------------------------
# Running a case and judging what it did.
# ---------------------------------------------------------------------------------------------------------

# Words of an instruction; every error line must hold one (what to do, not only what is wrong).
WHAT_TO_DO = ("again", "pass ", "give ", "use ", "check", "convert", "export", "download", "remove", "set ",
              "fix", "run ", "write ", "record", "generate", "supply", "choose", "store", "retrain", "re-",
              "build", "free", "make", "copy", "only load", "report", "install", "store", "extract", "train")


def mirror(pristine: Path, tree: Path) -> None:
    """`tree` as a copy of `pristine` whose folders are real and whose files are symlinks into it."""
    for folder, _, names in os.walk(pristine):
        relative = Path(folder).relative_to(pristine)
        (tree / relative).mkdir(parents=True, exist_ok=True)
        for name in names:
            (tree / relative / name).symlink_to(Path(folder) / name)


def fill(argv: tuple[str, ...], tree: Path, out: Path) -> list[str]:
    return [part.replace("{tree}", str(tree)).replace("{out}", str(out)) for part in argv]


def files_written(folder: Path) -> list[str]:
    """Regular files (not the tree's symlinks) under `folder`: what a failed command left behind."""
    if not folder.exists():
        return []
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def hung(signum, frame):
        raise TimeoutError(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    escaped: str | None = None  # an exception that got past the CLI, with its traceback
    peak_rss_mb: float | None = None


def run_rvc_ios(argv: list[str]) -> Outcome:
    import traceback

    from typer.testing import CliRunner

    from rvc_ios_tools.cli import app

    with time_limit(CASE_TIMEOUT_S):
        result = CliRunner().invoke(app, argv)
    escaped = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        escaped = "".join(traceback.format_exception(*result.exc_info))
    return Outcome(result.exit_code, result.stdout, result.stderr, escaped)


# Forks the binary from a small process and reports its own peak RSS (see the module docstring).
LAUNCHER = """
import json, os, sys
report, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as handle:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, handle)
"""


def swift_binary() -> Path | None:
    """$RVC_NATIVE_MAC_BINARY, else the package's release build, else its debug build, if built after every
    Swift source changed: an older build would hold today's sources to yesterday's behaviour."""
    if os.environ.get("RVC_NATIVE_MAC_BINARY"):
        return Path(os.environ["RVC_NATIVE_MAC_BINARY"])
    sources = [REPO / "Demos/Package.swift", *(REPO / "Demos/Sources").rglob("*.swift")]
    newest_source = max(path.stat().st_mtime for path in sources)
    for build in ("release", "debug"):
        binary = REPO / "Demos/.build" / build / "RVCNativeMac"
        if binary.is_file() and binary.stat().st_mtime >= newest_source:
            return binary
    return None


swift_available = pytest.mark.skipif(
    swift_binary() is None,
    reason="RVCNativeMac is not built, or was built before the Swift sources last changed: run `swift build -c "
           "release --product RVCNativeMac` in Demos/ first, or set RVC_NATIVE_MAC_BINARY to the binary",
)


def run_swift(argv: list[str], scratch: Path, measure: bool = False) -> Outcome:
    """RVCNativeMac on `argv`; with `measure`, through the launcher, to know its own peak RSS."""
    binary = str(swift_binary())
    report = scratch / ".launcher-report.json"
    command = [sys.executable, "-S", "-c", LAUNCHER, str(report), binary, *argv] if measure else [binary, *argv]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CASE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Outcome(-1, "", "", escaped=f"no answer after {CASE_TIMEOUT_S} s")
    code, peak = done.returncode, None
    if measure:
        measured = json.loads(report.read_text())
        report.unlink()
        code, peak = measured["exit"], measured["maxrss_kb"] / 1024
    escaped = f"killed by signal {-code} (a trap or crash)" if code < 0 else None
    return Outcome(code, done.stdout, done.stderr, escaped, peak_rss_mb=peak)


def check_failure(case: str, outcome: Outcome, allowed: set[int], names: set[str], out: Path) -> None:
    """The outcome is an allowed exit and, when it is a refusal, one actionable line and nothing written."""
    shown = f"{case}: exit {outcome.exit_code}\nstdout: {outcome.stdout[-1500:]}\nstderr: {outcome.stderr[-1500:]}"
    assert outcome.escaped is None, f"{case}: {outcome.escaped}\n{shown}"
    assert "Traceback" not in outcome.stdout + outcome.stderr, shown
    assert outcome.exit_code in allowed, shown
    if outcome.exit_code != 2:
        return  # 0: the file was still valid; 1: a candidate that diverges, with its report
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"one `error:` line expected\n{shown}"
    line = errors[0]
    assert any(name in line for name in names), f"the error names none of {sorted(names)}\n{shown}"
    assert any(word in line.lower() for word in WHAT_TO_DO), f"the error does not say what to do\n{shown}"
    assert files_written(out) == [], f"left behind: {files_written(out)}\n{shown}"


def names_for(spec: FileSpec) -> set[str]:
    path = Path(spec.path)
    names = {path.name}
    if path.parent.name not in ("", "models", "Assets"):
        names.add(path.parent.name)  # a file inside the folder the command takes (hubert/, golden/voice/)
    return names


# ---------------------------------------------------------------------------------------------------------
# Fixtures.
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Iterator[Path]:
    root = build_pristine_tree(tmp_path_factory.mktemp("matrix") / "pristine")
    stamps = {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}
    yield root
    changed = [str(p) for p, stamp in stamps.items() if not p.exists() or p.stat().st_mtime_ns != stamp]
    assert not changed, f"a command wrote through a symlink into the valid files: {changed}"


@pytest.fixture
def case_tree(pristine, tmp_path, monkeypatch) -> Callable[[], tuple[Path, Path]]:
    monkeypatch.delenv("RVC_MODELS_DIR", raising=False)
    monkeypatch.delenv("index_root", raising=False)

    def make() -> tuple[Path, Path]:
        tree, out = tmp_path / "tree", tmp_path / "out"
        mirror(pristine, tree)
        return tree, out

    return make


def mount_tmpfs(path: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def refusing_folders(tmp_path_factory) -> Iterator[dict[str, Path | None]]:
    """A read-only folder (a read-only tmpfs as root, who ignores permissions; else mode 0555) and a full disk
    (a filled 256 KB tmpfs; root only, else None). /dev/full is not used: an atomic writer would replace the
    device node with its temporary file."""
    base = tmp_path_factory.mktemp("refusing")
    read_only, full = base / "read-only", base / "full"
    read_only.mkdir()
    full.mkdir()
    mounted = []
    if mount_tmpfs(read_only, "ro,size=64k"):
        mounted.append(read_only)
    elif os.geteuid() != 0:
        read_only.chmod(0o555)
    else:
        read_only = None
    if mount_tmpfs(full, "size=256k"):
        mounted.append(full)
        with contextlib.suppress(OSError), open(full / "filler", "wb") as handle:
            while True:
                handle.write(bytes(65536))
                handle.flush()
    else:
        full = None
    yield {"read-only-folder": read_only, "full-disk": full}
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)
    if read_only is not None and read_only not in mounted:
        read_only.chmod(0o755)


# ---------------------------------------------------------------------------------------------------------
# The matrix.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("read, corruption", read_cases(PYTHON_READS))
def test_rvc_ios_refuses_a_damaged_file(read, corruption, case_tree):
    spec = FILES[read.file]
    tree, out = case_tree()
    apply_corruption(tree, spec, corruption)
    outcome = run_rvc_ios(fill(read.argv, tree, out))
    check_failure(f"rvc-ios {read.id} {corruption}", outcome, allowed_exits(spec, corruption, read.still_valid),
                  names_for(spec) | set(read.also_named), out)


@pytest.fixture(scope="session")
def swift_read_outcomes(pristine, tmp_path_factory) -> dict[str, tuple[Outcome, Path]]:
    """Every RVCNativeMac read case, run four at a time, by case id: its outcome and its output folder. Each
    process spends most of its ~0.1 s starting up rather than computing, so they overlap well on two cores."""
    import concurrent.futures

    base = tmp_path_factory.mktemp("swift")
    cases = {}
    for param in read_cases(SWIFT_READS):
        read, corruption = param.values
        tree, out = base / str(len(cases)) / "tree", base / str(len(cases)) / "out"
        mirror(pristine, tree)
        out.mkdir()
        apply_corruption(tree, FILES[read.file], corruption)
        cases[param.id] = (fill(read.argv, tree, out), tree.parent, corruption.startswith("hostile"), out)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case: pool.submit(run_swift, argv, scratch, measure) for case, (argv, scratch, measure, _) in cases.items()}
        return {case: (future.result(), cases[case][3]) for case, future in futures.items()}


@swift_available
@pytest.mark.parametrize("read, corruption", read_cases(SWIFT_READS))
def test_rvc_native_mac_refuses_a_damaged_file(read, corruption, swift_read_outcomes, request):
    spec = FILES[read.file]
    outcome, out = swift_read_outcomes[request.node.callspec.id]
    check_failure(f"RVCNativeMac {read.id} {corruption}", outcome, allowed_exits(spec, corruption, read.still_valid),
                  names_for(spec) | set(read.also_named), out)
    if corruption.startswith("hostile"):
        assert outcome.peak_rss_mb < PEAK_RSS_LIMIT_MB, f"{read.id} {corruption}: peak RSS {outcome.peak_rss_mb:.0f} MB"


@pytest.mark.parametrize("tool, write, refusal", write_cases("rvc-ios", PYTHON_WRITES) + write_cases("RVCNativeMac", SWIFT_WRITES))
def test_an_output_folder_the_system_refuses_is_one_line_and_nothing_written(tool, write, refusal, case_tree,
                                                                            refusing_folders):
    folder = refusing_folders[refusal]
    if folder is None:
        pytest.skip(f"a {refusal} needs root to mount a tmpfs here")
    tree, _ = case_tree()
    argv = fill(write.argv, tree, folder / "case")
    outcome = run_rvc_ios(argv) if tool == "rvc-ios" else run_swift(argv, tree.parent)
    check_failure(f"{tool} {write.id} {refusal}", outcome, {2}, {folder.name}, folder / "case")
    assert files_written(tree) == [], f"{write.id}: left behind beside the inputs: {files_written(tree)}"


def test_convert_refuses_a_content_encoder_of_another_width(case_tree):
    """A valid content encoder whose features the voice does not take (the tiny fairseq one gives 24-d v1
    features; the voice takes 256): refused by name before the synthesizer meets the wrong width."""
    tree, out = case_tree()
    argv = fill(("convert", "--model-name", "voice", "--models-dir", "{tree}/models", "--input", "{tree}/speech.wav",
                 "--output", "{out}/out.wav", "--hubert", "{tree}/hubert.pt", "--rmvpe", "{tree}/rmvpe.pt", "-q"),
                tree, out)
    outcome = run_rvc_ios(argv)
    check_failure("rvc-ios convert --hubert hubert.pt", outcome, {2}, {"hubert.pt"}, out)
    assert "24-d v1 features; the voice takes 256-d" in outcome.stderr


# --- memory: the hostile files again, each measured in one worker process -----------------------------------

HOSTILE_READS = [pytest.param(read, corruption, id=f"{read.id}-{corruption}")
                 for read in PYTHON_READS for corruption in HOSTILE[FILES[read.file].kind]]


@pytest.fixture(scope="session")
def python_peak_rss(pristine, tmp_path_factory) -> dict[str, dict]:
    """Each hostile case and its row's baseline (the same file empty: a failure that allocates nothing), run in
    one worker process; id -> measurement."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("measuring a case's own peak RSS needs Linux's /proc/self/clear_refs")
    base = tmp_path_factory.mktemp("rss")
    jobs = []
    for param in HOSTILE_READS:
        read, corruption = param.values
        for label in (corruption, "empty"):
            tree = base / f"{len(jobs)}" / "tree"
            mirror(pristine, tree)
            apply_corruption(tree, FILES[read.file], label)
            jobs.append({"id": f"{param.id}:{label}", "argv": fill(read.argv, tree, tree.parent / "out")})
    env = {key: value for key, value in os.environ.items() if key not in ("RVC_MODELS_DIR", "index_root")}
    done = subprocess.run([sys.executable, __file__, "--measure-peak-rss"], input=json.dumps(jobs), text=True,
                          capture_output=True, timeout=600, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return {row["id"]: row for row in json.loads(done.stdout.splitlines()[-1])}


@pytest.mark.parametrize("read, corruption", HOSTILE_READS)
def test_rvc_ios_on_a_hostile_file_grows_under_200_mb(read, corruption, python_peak_rss, request):
    case = request.node.callspec.id
    hostile, baseline = python_peak_rss[f"{case}:{corruption}"], python_peak_rss[f"{case}:empty"]
    assert hostile["exit"] in allowed_exits(FILES[read.file], corruption, read.still_valid), hostile
    assert hostile["growth_mb"] < PEAK_RSS_LIMIT_MB, (
        f"{case}: peak RSS grew {hostile['growth_mb']:.0f} MB (the empty-file baseline: {baseline['growth_mb']:.0f} MB)")


def measure_peak_rss_worker() -> None:
    """Run each job of stdin in this process and print its peak-RSS growth: imports first, so only the
    case's own allocations count; `5` to clear_refs resets the high-water mark to the current RSS."""
    import ctypes
    import io
    import time

    import rvc_ios_tools  # noqa: F401  (first: it picks MLX's BLAS before mlx loads)
    import mlx.core  # noqa: F401  (imported for their cost, before anything is measured)
    import safetensors.numpy  # noqa: F401
    import torch  # noqa: F401

    import rvc_ios_tools.hubert.convert  # noqa: F401
    import rvc_ios_tools.index.faiss_file  # noqa: F401
    import rvc_ios_tools.pipeline.convert  # noqa: F401
    import rvc_ios_tools.voice.checkpoint  # noqa: F401

    libc = ctypes.CDLL(None)

    def status_kb(field: str) -> int:
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
        return int(line.split()[1])

    results = []
    for job in json.loads(sys.stdin.read()):
        libc.malloc_trim(0)  # no gc.collect(): 0.25 s a case with torch and MLX loaded; refcounting frees the rest
        before = status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = run_rvc_ios(job["argv"])
        results.append({"id": job["id"], "exit": outcome.exit_code, "seconds": time.perf_counter() - started,
                        "growth_mb": (status_kb("VmHWM") - before) / 1024})
    print(json.dumps(results))


if __name__ == "__main__" and sys.argv[1:] == ["--measure-peak-rss"]:
    measure_peak_rss_worker()
