"""Finding a user's voice files by name, where RVC WebUI and Applio keep them."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelNotFoundError

# RVC WebUI keeps its voices in assets/weights/; we look there unless told otherwise.
DEFAULT_MODELS_DIR = Path("assets/weights")
MODELS_DIR_ENV = "RVC_MODELS_DIR"


def models_dir(explicit: Path | None) -> Path:
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(MODELS_DIR_ENV):
        return Path(os.environ[MODELS_DIR_ENV])
    return DEFAULT_MODELS_DIR


def available_models(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    names = {p.stem for p in folder.glob("*.pth")}
    names |= {p.name for p in folder.iterdir() if p.is_dir() and len(list(p.glob("*.pth"))) == 1}
    return sorted(names)


def find_model(name: str, folder: Path) -> Path:
    """`NAME.pth`, or a folder `NAME/` holding exactly one `.pth` (how Applio and most downloads ship voices)."""
    direct = folder / f"{name}.pth"
    if direct.is_file():
        return direct
    nested = folder / name
    if nested.is_dir():
        candidates = sorted(nested.glob("*.pth"))
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise ModelNotFoundError(
                f"{nested} holds {len(candidates)} .pth files ({', '.join(c.name for c in candidates)}); "
                "keep one voice per folder or pass the file's stem as the model name."
            )
    found = available_models(folder)
    listing = ", ".join(found) if found else "none"
    raise ModelNotFoundError(
        f"No voice named {name!r} in {folder} (looked for {name}.pth and {name}/*.pth). "
        f"Voices found there: {listing}. Use --models-dir or ${MODELS_DIR_ENV} to look elsewhere."
    )
