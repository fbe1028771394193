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

On other systems (macOS uses Accelerate and its own allocator) this module does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import warnings

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
        try:
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
