"""Make MLX's CPU backend fast on Linux: OpenBLAS for its matmuls, and a malloc that reuses freed memory.

The Linux `mlx-cpu` wheel links `libmlx.so` against a bundled netlib reference BLAS, whose `cblas_sgemm`
is a plain triple loop (about 30x slower than OpenBLAS on this kind of machine). `libmlx.so` resolves its
BLAS symbols through the process's global scope first, so loading Debian's OpenBLAS (package
`libopenblas0-pthread`) with `RTLD_GLOBAL` *before* the first `import mlx` makes every `cblas_sgemm`
MLX issues land in OpenBLAS. After `mlx.core` is loaded the symbols are already bound and nothing changes,
which is why every module of this package that imports mlx imports this one first.

Second, MLX's CPU allocator takes every buffer from malloc, and glibc serves large blocks (above 128 KB to
32 MB) with a fresh mmap and returns them with munmap on free. A 10 s decoder run allocates gigabytes of
short-lived activations, so the kernel spends most of the time zero-filling new pages: elementwise ops ran
at 0.4 Gelem/s instead of 3.5. `reuse_freed_memory` turns mmap off for malloc and never trims the heap,
so freed buffers are reused. It is process-wide (PyTorch in the same process benefits as well), so it
runs on import only on Linux and can be switched off with RVC_IOS_KEEP_MALLOC=1.

Third, the right OpenBLAS kernel. Debian's OpenBLAS 0.3.21 does not recognise some newer CPUs (AVX-512
Xeons among them) and falls back to a generic kernel ("Prescott": sgemm 66 GFLOP/s instead of 219 with the
SkylakeX kernel), which silently makes the MLX reference three times slower. OpenBLAS picks its kernel once,
when the library initialises, reading OPENBLAS_CORETYPE then; so before loading it here we ask a throwaway
child process which kernel it would pick (`probe_core_name`), and when that kernel is for an older instruction
set than the CPU has (`forced_core_type`) we set OPENBLAS_CORETYPE for this process and its children.
A value the user set always wins. The probe's answer is passed on in RVC_IOS_OPENBLAS_PROBED, so child
processes do not probe again.

Fourth, how long OpenBLAS's idle threads spin. After every threaded sgemm its worker threads busy-wait for
2^28 CPU cycles (about 0.1 s) before sleeping, so a native kernel that runs next on its own workers
(`native_conv`, `native_kernels`: single-threaded sgemm calls, one per worker) shares the cores with a spinning
thread: the content encoder alternates MLX matmuls with native attention twelve times. Unless the user set
OPENBLAS_THREAD_TIMEOUT, it is 2^20 cycles (a fraction of a millisecond: back-to-back matmuls still find the
threads awake) for this process only; child processes keep OpenBLAS's default.

On other systems (macOS uses Accelerate and its own allocator) this module does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

# Tried in order; the first is what libopenblas0-pthread installs on Debian/Ubuntu x86_64 and arm64.
OPENBLAS_CANDIDATES = (
    "libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "libopenblas.so",
)

_openblas: ctypes.CDLL | None = None
_warned = False


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(message, RuntimeWarning, stacklevel=3)


CORETYPE_ENV = "OPENBLAS_CORETYPE"
PROBED_ENV = "RVC_IOS_OPENBLAS_PROBED"
# Test seam: treat the probed kernel as this one (e.g. Prescott), to exercise the forcing on any CPU.
ASSUME_CORE_ENV = "RVC_IOS_ASSUME_OPENBLAS_CORE"

# The instruction-set tier of each OpenBLAS 0.3.21 x86 kernel, and the kernel that serves each tier. The same
# table as the Swift port's (Demos/Sources/RVCNative/Tensor/BLASKernel.swift), so both choose alike.
TIERS = ("pre-AVX", "AVX", "AVX2", "AVX-512")
TIER_CORE_TYPES = {"AVX": "Sandybridge", "AVX2": "Haswell", "AVX-512": "SkylakeX"}
KERNEL_TIERS = {
    **dict.fromkeys(("unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
                     "dunnington", "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "bobcat", "nano"),
                    "pre-AVX"),
    **dict.fromkeys(("sandybridge", "bulldozer", "piledriver", "steamroller"), "AVX"),
    **dict.fromkeys(("haswell", "excavator", "zen"), "AVX2"),
    **dict.fromkeys(("skylakex", "cooperlake", "sapphirerapids"), "AVX-512"),
}
AVX512_FLAGS = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl"})
AVX2_FLAGS = frozenset({"avx2", "fma"})

_core_choice: str = ""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's `flags` from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags") and ":" in line:
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_tier(flags: frozenset[str]) -> str:
    if AVX512_FLAGS <= flags:
        return "AVX-512"
    if AVX2_FLAGS <= flags:
        return "AVX2"
    return "AVX" if "avx" in flags else "pre-AVX"


def kernel_tier(core_name: str) -> str | None:
    """The tier a kernel is written for; None for a name this table does not know (a newer OpenBLAS)."""
    name = core_name.strip().lower()
    return "pre-AVX" if "generic" in name else KERNEL_TIERS.get(name)


def forced_core_type(core_name: str, flags: frozenset[str], environment: dict[str, str]) -> str | None:
    """The OPENBLAS_CORETYPE to set, or None: only when OpenBLAS picked a kernel for an older instruction set
    than the CPU has (a detection miss: e.g. Prescott on an AVX-512 Xeon -> SkylakeX), and the user set none."""
    if environment.get(CORETYPE_ENV, "").strip():
        return None
    picked, available = kernel_tier(core_name), cpu_tier(flags)
    if picked is None or TIERS.index(picked) >= TIERS.index(available):
        return None
    return TIER_CORE_TYPES[available]


_PROBE = (
    "import ctypes, sys\n"
    "lib = ctypes.CDLL(sys.argv[1])\n"
    "lib.openblas_get_corename.restype = ctypes.c_char_p\n"
    "print(lib.openblas_get_corename().decode())\n"
)


def probe_core_name(library: str) -> str | None:
    """The kernel OpenBLAS picks on its own here, asked of a child process (this one must not load it yet)."""
    env = {k: v for k, v in os.environ.items() if k != CORETYPE_ENV}
    env["OPENBLAS_NUM_THREADS"] = "1"
    try:
        done = subprocess.run([sys.executable, "-S", "-c", _PROBE, library], capture_output=True, text=True,
                              env=env, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def choose_core_type(library: str) -> None:
    """Set OPENBLAS_CORETYPE before `library` loads when OpenBLAS would fall back to a generic kernel."""
    global _core_choice
    if os.environ.get(CORETYPE_ENV):
        _core_choice = f"set by {CORETYPE_ENV}"
        return
    probed = os.environ.get(PROBED_ENV) or probe_core_name(library)
    if probed is None:
        return
    os.environ[PROBED_ENV] = probed
    probed = os.environ.get(ASSUME_CORE_ENV, probed)
    forced = forced_core_type(probed, cpu_flags(), dict(os.environ))
    if forced is not None:
        os.environ[CORETYPE_ENV] = forced
        _core_choice = f"forced: OpenBLAS alone picked {probed}, a {kernel_tier(probed)} kernel, on a CPU with {cpu_tier(cpu_flags())}"


def kernel_name() -> str | None:
    """The kernel the loaded OpenBLAS runs (`openblas_get_corename`), or None without OpenBLAS."""
    if _openblas is None:
        return None
    get = _openblas.openblas_get_corename
    get.restype = ctypes.c_char_p
    return get().decode()


def kernel_description() -> str:
    """One line for benchmarks and `--verbose`: which kernel runs, and why."""
    name = kernel_name()
    if name is None:
        return "OpenBLAS not loaded (MLX uses the wheel's reference BLAS)"
    return f"OpenBLAS kernel {name} ({_core_choice or 'chosen by OpenBLAS'})"


THREAD_TIMEOUT_ENV = "OPENBLAS_THREAD_TIMEOUT"
# log2 of the CPU cycles OpenBLAS's idle threads spin before sleeping (OpenBLAS's default: 28).
IDLE_SPIN_LOG2_CYCLES = 20


@contextlib.contextmanager
def idle_threads_spinning_briefly():
    """OPENBLAS_THREAD_TIMEOUT set while OpenBLAS initialises (it reads it then), unless the user set it."""
    if os.environ.get(THREAD_TIMEOUT_ENV, "").strip():
        yield
        return
    os.environ[THREAD_TIMEOUT_ENV] = str(IDLE_SPIN_LOG2_CYCLES)
    try:
        yield
    finally:
        del os.environ[THREAD_TIMEOUT_ENV]


def load_openblas() -> ctypes.CDLL | None:
    """Load OpenBLAS globally if this is Linux and mlx is not imported yet; return the library or None."""
    global _openblas
    if _openblas is not None or not sys.platform.startswith("linux"):
        return _openblas
    if "mlx.core" in sys.modules:
        _warn_once(
            "mlx was imported before rvc_ios_tools.blas, so MLX keeps its slow reference BLAS; "
            "import rvc_ios_tools (or rvc_ios_tools.blas) before mlx."
        )
        return None
    candidates = list(OPENBLAS_CANDIDATES)
    found = ctypes.util.find_library("openblas")
    if found:
        candidates.append(found)
    for name in candidates:
        if "/" in name and not os.path.exists(name):
            continue
        choose_core_type(name)
        try:
            with idle_threads_spinning_briefly():
                _openblas = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
            return _openblas
        except OSError:
            continue
    _warn_once(
        "OpenBLAS not found (install the Debian package libopenblas0-pthread); MLX matmuls on CPU will "
        "use the wheel's reference BLAS and run about 30x slower."
    )
    return None


def openblas_loaded() -> bool:
    return _openblas is not None


def set_num_threads(n: int) -> None:
    """Set OpenBLAS's thread count (what MLX's matmuls use); no effect without OpenBLAS."""
    if _openblas is not None:
        _openblas.openblas_set_num_threads(ctypes.c_int(int(n)))


def num_threads() -> int:
    """OpenBLAS's thread count, or 1 when MLX runs on the reference BLAS."""
    if _openblas is None:
        return 1
    return int(_openblas.openblas_get_num_threads())


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_malloc_tuned = False


def reuse_freed_memory() -> bool:
    """Keep freed heap memory for reuse instead of returning it to the kernel (glibc only); True if done."""
    global _malloc_tuned
    if _malloc_tuned or not sys.platform.startswith("linux"):
        return _malloc_tuned
    try:
        libc = ctypes.CDLL("libc.so.6")
        _malloc_tuned = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):
        _malloc_tuned = False
    return _malloc_tuned


if os.environ.get("RVC_IOS_NO_OPENBLAS") != "1":
    load_openblas()
if os.environ.get("RVC_IOS_KEEP_MALLOC") != "1":
    reuse_freed_memory()
