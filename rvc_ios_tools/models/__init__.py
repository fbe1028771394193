"""MLX modules of RVC's synthesizer, channels-last, named like the exported weights (docs/formats.md)."""

from .. import blas  # noqa: F401  (must run before mlx is imported: it routes MLX's BLAS to OpenBLAS)

from .synthesizer import Synthesizer, load_voice_weights  # noqa: E402

__all__ = ["Synthesizer", "load_voice_weights"]
