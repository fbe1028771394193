"""Reading PyTorch pickles without ever running their code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from .errors import CorruptFileError, UnsafeCheckpointError


def load_pickle_safely(path: Path) -> Any:
    """`torch.load` restricted to tensors and plain containers: a pickle never runs code here."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{path} does not exist or is not a file.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines()]
        forbidden = next((line for line in lines if "GLOBAL" in line or "Unsupported global" in line), None)
        if forbidden is None:
            raise CorruptFileError(
                f"{path.name} is not a readable PyTorch checkpoint ({lines[-1] if lines else 'bad pickle'}). "
                "It may be truncated or damaged: download or copy it again."
            ) from None
        raise UnsafeCheckpointError(
            f"Refused to load {path.name}: its pickle asks for code or objects outside plain tensors and "
            f"containers ({forbidden}). Nothing in it was run. Only load voice files from sources you trust; "
            "a genuine RVC voice never needs this."
        ) from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, OSError, KeyError, IndexError) as exc:
        raise CorruptFileError(
            f"{path.name} is not a readable PyTorch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}). It may be truncated or damaged: "
            "download or copy it again."
        ) from None
