"""coremltools, imported once and made to work with the project's numpy pin.

coremltools 9.0 (the newest release) folds a traced `int(tensor)` / `bool(tensor)` by calling `int(x.val)` on a
one-element array; numpy 2.4 made that a TypeError ("only 0-dimensional arrays can be converted to Python
scalars", coremltools #2633, fixed upstream by PR #2632 after 9.0). RVC's relative attention and sequence
mask trace to such casts. Instead of pinning numpy below 2.4 for the whole project (the committed fixtures
and the MLX reference run on numpy 2.4), the torch frontend's two cast converters are re-registered here
with the fix: the folded value is read with `.item()`, which numpy accepts at any version. Everything else
is coremltools' own code path.

coremltools and torch are imported lazily: the rest of the package runs without them.
"""

from __future__ import annotations

import functools
import logging
import os

from ..core.errors import RvcIosError

COREMLTOOLS_VERSION = "9.0"


class CoreMLToolsUnavailableError(RvcIosError):
    """coremltools is not installed (or not the version this export was checked with)."""


@functools.lru_cache(maxsize=1)
def import_coremltools():
    """The `coremltools` module, its torch int/bool cast folding fixed for numpy >= 2.4."""
    # Its Linux wheel has no libcoremlpython (predictions need macOS) and says so on every import.
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    os.environ.setdefault("COREMLTOOLS_SUPPRESS_WARNINGS", "1")
    try:
        import coremltools as ct
    except ImportError as exc:
        raise CoreMLToolsUnavailableError(
            f"coremltools is not installed ({exc}); run `pip install -e '.[coreml]'` (the README's set-up does), "
            "then run this again."
        ) from None
    if ct.__version__ != COREMLTOOLS_VERSION:
        raise CoreMLToolsUnavailableError(
            f"coremltools {ct.__version__} is installed; this export is checked with {COREMLTOOLS_VERSION} "
            f"only. Run `pip install --no-deps coremltools=={COREMLTOOLS_VERSION}`."
        )
    _register_numpy_safe_casts()
    return ct


def _register_numpy_safe_casts() -> None:
    import numpy as np
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch import ops
    from coremltools.converters.mil.frontend.torch.torch_op_registry import register_torch_op

    def cast(context, node, dtype, dtype_name):
        x = ops._get_inputs(context, node, expected=1)[0]
        if x.can_be_folded_to_const() and np.ndim(x.val) > 0:
            if np.size(x.val) != 1:
                raise ValueError("input to cast must be either a scalar or a length 1 tensor")
            context.add(mb.const(val=dtype(np.asarray(x.val).item()), name=node.name), node.name)
            return
        ops._cast(context, node, dtype, dtype_name)

    def _int(context, node):
        cast(context, node, int, "int32")

    def _bool(context, node):
        cast(context, node, bool, "bool")

    register_torch_op(_int, torch_alias=["int"], override=True)
    register_torch_op(_bool, torch_alias=["bool"], override=True)
