"""Reading PyTorch pickles without ever running their code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import CorruptFileError, UnsafeCheckpointError


def load_pickle_safely(path: Path, stand_ins: Sequence[tuple[type, str]] = ()) -> Any:
    """`torch.load` restricted to tensors and plain containers: a pickle never runs code here.

    `stand_ins` pairs an inert class of ours with the global name a file pickles (e.g. fairseq's
    `fairseq.data.dictionary.Dictionary`): that one name then unpickles as an instance of our class, its
    state copied into `__dict__`, and nothing of the original is imported or run. Every other global is
    still refused.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{path} does not exist or is not a file.")
    try:
        with torch.serialization.safe_globals(list(stand_ins)):
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
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, TypeError, OSError, KeyError, IndexError) as exc:
        raise CorruptFileError(
            f"{path.name} is not a readable PyTorch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}). It may be truncated or damaged: "
            "download or copy it again."
        ) from None


def state_dict_to_numpy(state_dict: Mapping[str, Any], source_name: str) -> dict[str, np.ndarray]:
    """A loaded state dict's torch tensors (bfloat16 as float32) or numpy arrays -> numpy arrays; anything
    else in it is a CorruptFileError naming the key."""
    import torch

    arrays: dict[str, np.ndarray] = {}
    for key, value in state_dict.items():
        if isinstance(value, np.ndarray):
            arrays[str(key)] = value
        elif isinstance(value, torch.Tensor):
            tensor = value.detach().cpu()
            arrays[str(key)] = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
        else:
            raise CorruptFileError(f"{source_name}: `{key}` is a {type(value).__name__}, not a tensor.")
    return arrays
