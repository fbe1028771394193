"""rvc-ios-tools: RVC voice models from PyTorch to Swift, with stage-by-stage proof of parity."""

__version__ = "0.1.0"

# OpenBLAS must be loaded before anything imports mlx (see core/blas.py); importing the package guarantees it.
from .core import blas as _blas  # noqa: E402,F401
