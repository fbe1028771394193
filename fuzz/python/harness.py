"""What every Python fuzz target shares: the one outcome rule, the memory cap, the scratch file and the mutators.

The rule (issue 15): for any input a reader either succeeds or raises the project's own user-error type,
`RvcIosError`. Anything else escaping is a finding, and so is an `RvcIosError` raised while handling an
allocation failure (a reader that tried to allocate what a hostile header claimed, then reported the failure
as damage, still tried). Hangs are found by libFuzzer's `-timeout`, memory growth by `-rss_limit_mb`.

`-malloc_limit_mb` needs a sanitizer's malloc hooks, which the atheris wheel does not ship; the address-space
cap below (`cap_address_space`) makes any single allocation beyond `ALLOCATION_HEADROOM_MB` fail at once
instead, so even an allocation that is never touched (and so never shows in the RSS) is caught.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import atheris

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# What one input may allocate beyond the process as it stands after imports. The bound for a hostile
# 1 KB file is 200 MB; valid seeds (tiny networks, a few hundred KB) need far less than this.
ALLOCATION_HEADROOM_MB = 1024

# Messages of the allocators that report failure as something other than MemoryError.
ALLOCATION_FAILURES = ("not enough memory", "DefaultCPUAllocator", "std::bad_alloc", "Cannot allocate memory",
                       "Unable to allocate")


@contextlib.contextmanager
def instrumented():
    """Coverage instrumentation for our package only (torch, numpy and safetensors are imported before)."""
    import numpy  # noqa: F401
    import safetensors  # noqa: F401

    with atheris.instrument_imports(include=["rvc_ios_tools"]):
        yield


def cap_address_space(headroom_mb: int = ALLOCATION_HEADROOM_MB) -> None:
    """Cap the address space at what the process maps now plus `headroom_mb`, once the imports are done."""
    with open("/proc/self/status") as status:
        mapped_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = (mapped_kb * 1024) + headroom_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))


def hidden_allocation_failure(error: BaseException) -> BaseException | None:
    """The allocation failure an exception was raised while handling (`raise ... from None` keeps it as
    `__context__`), if any."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError) or any(text in str(current) for text in ALLOCATION_FAILURES):
            return current
        current = current.__cause__ or current.__context__
    return None


class HiddenAllocationFailure(AssertionError):
    """A user error that covers an attempt to allocate more than the cap (what a hostile header claimed)."""


class ScratchFiles:
    """Files in a private folder on tmpfs (when there is one) that each input is written to before reading."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.folder = Path(tempfile.mkdtemp(prefix="rvc-fuzz-", dir=base))

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def clear(self) -> None:
        for path in self.folder.iterdir():
            path.unlink()


def pack_files(parts: list[bytes]) -> bytes:
    """Several files in one fuzz input: each but the last as a 4-byte little-endian length and its bytes,
    the last as the rest (so a mutation that breaks a length still splits somewhere)."""
    out = bytearray()
    for part in parts[:-1]:
        out += len(part).to_bytes(4, "little") + part
    return bytes(out + parts[-1])


def unpack_files(data: bytes, count: int) -> list[bytes]:
    parts, position = [], 0
    for _ in range(count - 1):
        size = int.from_bytes(data[position:position + 4], "little")
        position += 4
        parts.append(data[position:position + size])
        position += size
    parts.append(data[position:])
    return parts


def mutate_zip_member(data: bytes, max_size: int, seed: int) -> bytes:
    """A torch zip checkpoint with one member mutated (usually data.pkl) and the archive rebuilt, so the fuzzer
    reaches the unpickler and the tensor rebuild instead of only the zip directory; half of the time (and for
    anything not a zip) the raw bytes are mutated as they are."""
    if seed % 2 == 0:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [(info, archive.read(info)) for info in archive.infolist()]
        except Exception:
            members = []
        if members:
            pickles = [n for n, (info, _) in enumerate(members) if info.filename.endswith(".pkl")]
            chosen = pickles[0] if pickles and (seed >> 1) % 4 else (seed >> 3) % len(members)
            info, body = members[chosen]
            room = max(len(body), max_size - (len(data) - len(body)))
            members[chosen] = (info, atheris.Mutate(body, room))
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
                for info, body in members:
                    archive.writestr(info.filename, body)
            if out.tell() <= max_size:
                return out.getvalue()
    return atheris.Mutate(data, max_size)


# What a structured mutation puts in place of one JSON value: every type, and the numbers that break arithmetic.
HOSTILE_JSON_VALUES = (0, -1, 1, 2, 3, 7, 2**31, 2**63, -(2**63), 10**30, 1e308, -0.0, 0.5, float("inf"),
                       float("nan"), "", "x", "float32", "F32", "U8", None, True, False, [], [0], [1, 2, 3],
                       [[0, 0]], [2**40] * 3, {}, {"a": 1}, list(range(70)))


def mutate_json(document: bytes, rng: random.Random) -> bytes | None:
    """`document` with one value (anywhere in it) replaced by a hostile one, one key dropped, or one entry
    copied; None when it is not JSON. Byte mutations seldom keep JSON parseable; this reaches the checks
    behind the parser."""
    try:
        root = json.loads(document)
    except (ValueError, RecursionError):
        return None
    containers = []
    pending = [root]
    while pending:
        value = pending.pop()
        if isinstance(value, dict) and value:
            containers.append(value)
            pending.extend(value.values())
        elif isinstance(value, list) and value:
            containers.append(value)
            pending.extend(value)
    if not containers:
        return json.dumps(rng.choice(HOSTILE_JSON_VALUES)).encode()
    target = rng.choice(containers)
    key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
    action = rng.randrange(4)
    if action == 0 and isinstance(target, dict):
        del target[key]
    elif action == 1 and isinstance(target, list):
        target.insert(key, target[key])
    else:
        target[key] = rng.choice(HOSTILE_JSON_VALUES)
    return json.dumps(root).encode()


def mutate_safetensors_header(data: bytes, rng: random.Random) -> bytes | None:
    """A safetensors file with its JSON header mutated (`mutate_json`) and its length field rewritten; None
    when `data` has no such header."""
    if len(data) < 8:
        return None
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        return None
    header = mutate_json(data[8:8 + size], rng)
    if header is None:
        return None
    return len(header).to_bytes(8, "little") + header + data[8 + size:]


def mutate_npy_headers(data: bytes, rng: random.Random) -> bytes | None:
    """An .npz with one member's .npy header changed (its shape or dtype set to a hostile one) and the archive
    rebuilt, so the mutation survives the zip's CRC; None when `data` is not a zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    except Exception:
        return None
    if not members:
        return None
    chosen = rng.randrange(len(members))
    name, body = members[chosen]
    if not body.startswith(b"\x93NUMPY\x01\x00") or len(body) < 10:
        return None
    old_length = int.from_bytes(body[8:10], "little")
    shape = rng.choice(["()", "(0,)", "(-1, 4)", "(1, 4, 80000000)", f"({2**40},)", "(1, 2, 3, 4, 5)",
                        f"(1, {rng.randrange(1 << 20)}, 768)"])
    dtype = rng.choice(["'<f4'", "'<f8'", "'|u1'", "'<i4'", "'|O'", "'>f4'", "'<U3'", "[('a', '<f4')]"])
    text = f"{{'descr': {dtype}, 'fortran_order': {rng.choice(['False', 'True'])}, 'shape': {shape}, }}".encode()
    # Keep the data where it was when the new header fits the old one's padding (numpy aligns data to 64).
    length = old_length if len(text) < old_length else (len(text) + 11 + 63) // 64 * 64 - 10
    header = text.ljust(length - 1, b" ") + b"\n"
    members[chosen] = (name, body[:8] + length.to_bytes(2, "little") + header + body[10 + old_length:])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, body in members:
            archive.writestr(name, body)
    return out.getvalue()


def mutate_tensor_file(data: bytes, rng: random.Random) -> bytes | None:
    """`mutate_npy_headers` for an .npz, `mutate_safetensors_header` for anything else."""
    return mutate_npy_headers(data, rng) if data[:4] == b"PK\x03\x04" else mutate_safetensors_header(data, rng)


def mutate_parts(part_mutations: list[Callable[[bytes, random.Random], bytes | None]], prefix: int = 0):
    """A custom mutator for inputs of `prefix` selector bytes and then `pack_files` parts: each time, either one
    part's structured mutation (`mutate_json`, `mutate_safetensors_header` ...) or libFuzzer's byte mutations
    of the whole input."""

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        choice = seed % (len(part_mutations) + 1)
        if choice < len(part_mutations) and len(data) > prefix:
            parts = unpack_files(data[prefix:], len(part_mutations))
            mutated = part_mutations[choice](parts[choice], random.Random(seed))
            if mutated is not None:
                parts[choice] = mutated
                out = data[:prefix] + pack_files(parts)
                if len(out) <= max_size:
                    return out
        return atheris.Mutate(data, max_size)

    return mutator


def expect_user_errors(read: Callable[[bytes], object]) -> Callable[[bytes], None]:
    """One fuzz input: `read` may succeed or raise RvcIosError; everything else propagates as a finding."""
    from rvc_ios_tools.core.errors import RvcIosError

    def test_one(data: bytes) -> None:
        try:
            read(data)
        except RvcIosError as error:
            failure = hidden_allocation_failure(error)
            if failure is not None:
                raise HiddenAllocationFailure(
                    f"{type(error).__name__} ({error}) was raised while handling {type(failure).__name__}: "
                    f"{str(failure)[:300]}"
                ) from error

    return test_one


def fuzz(read: Callable[[bytes], object], custom_mutator: Callable[[bytes, int, int], bytes] | None = None) -> None:
    """Run libFuzzer on `read` with this process's argv (corpus folders and libFuzzer flags, from run.py)."""
    try:
        import torch

        torch.set_num_threads(1)  # the runner shares two cores with other work; threads only add address space
    except ImportError:
        pass
    cap_address_space()
    if custom_mutator is None:
        atheris.Setup(sys.argv, expect_user_errors(read))
    else:
        atheris.Setup(sys.argv, expect_user_errors(read), custom_mutator=custom_mutator)
    atheris.Fuzz()


def legacy_torch_bytes(payload: object) -> bytes:
    """`payload` in torch's pre-1.6 (non-zip) format, which `torch.load` still reads: a second container for
    the same pickle, parsed by different code."""
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def torch_bytes(payload: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def main(read: Callable[[bytes], object], write_seeds: Callable[[Path], None],
         custom_mutator: Callable[[bytes, int, int], bytes] | None = None) -> None:
    """A target's entry point: `--write-seeds FOLDER` writes its seed corpus; anything else fuzzes."""
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        folder = Path(sys.argv[2])
        folder.mkdir(parents=True, exist_ok=True)
        write_seeds(folder)
        return
    fuzz(read, custom_mutator)
