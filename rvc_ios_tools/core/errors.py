"""One exception type per kind of user mistake.

Each carries a sentence that says what is wrong and what to do; the CLI prints it and exits with
`exit_code`. Anything else that escapes is our bug and keeps its traceback.
"""


import contextlib
from pathlib import Path
from typing import Iterator


class RvcIosError(Exception):
    """A problem with the user's files or arguments, not with this tool."""

    exit_code = 2


class UnsafeCheckpointError(RvcIosError):
    """The pickle asks to run code or build objects outside the allowed tensor/container types."""


class CorruptFileError(RvcIosError):
    """The file is truncated, damaged, or not in the format its name promises."""


class NotAVoiceError(RvcIosError):
    """The file is a valid checkpoint but not an RVC inference voice (e.g. a training checkpoint)."""


class UnsupportedVoiceError(RvcIosError):
    """A voice this toolchain does not convert (e.g. Applio's RefineGAN or MRF HiFi-GAN vocoders)."""


class ConfigMismatchError(RvcIosError):
    """The checkpoint's config disagrees with the shape of one of its tensors."""


class UnknownKeyError(RvcIosError):
    """A tensor no conversion rule knows; we never drop weights silently."""


class MissingKeyError(RvcIosError):
    """A tensor the config requires is absent from the checkpoint."""


class ModelNotFoundError(RvcIosError):
    """No voice of the requested name in the models folder."""


class WeightsMismatchError(RvcIosError):
    """Exported weights do not fit the model: a key missing, unused, or of the wrong shape."""


class ManifestError(RvcIosError):
    """A manifest that fails its schema or disagrees with its weights file."""


@contextlib.contextmanager
def naming_file(path: Path | str | None, *kinds: type[RvcIosError]) -> Iterator[None]:
    """An error of `kinds` raised inside names `path` first (when there is one): the model code that raises it,
    on audio too short for instance, does not know which file the audio came from."""
    try:
        yield
    except kinds as exc:
        if path is None:
            raise
        raise type(exc)(f"{path}: {exc}") from None
