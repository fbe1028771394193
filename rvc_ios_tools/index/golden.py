"""`rvc-ios golden generate --kind index`: search an exported index for content features, write the golden set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import RvcIosError
from ..core.files import sha256_file
from ..core.golden import GoldenSet, write_golden
from ..core.manifest import load_exported
from ..core.npz import read_npz
from .convert import search_index_from_export
from .demo import queries_near
from .reference import DEFAULT_INDEX_RATE, K, SearchIndex, retrieval
from .stages import index_stage_table

# HuBERT's frame rate: the features retrieval sees are 50 per second (before the x2 upsampling).
FRAMES_PER_SECOND = 50
# Synthesised features: stored vectors moved by noise of this fraction of their spread (`demo.queries_near`).
QUERY_NOISE = 0.3


def synthesised_feats(index: SearchIndex, frames: int, seed: int) -> np.ndarray:
    """(1, frames, d) float32 content-like features near the index's vectors."""
    return queries_near(index.vectors, frames, seed, QUERY_NOISE)[None]


def read_feats(path: Path) -> np.ndarray:
    """`feats` (1, T, C) float32 from a .safetensors or .npz file (e.g. a content encoder golden's output)."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            feats = read_npz(path)["feats"]
        else:
            from safetensors.numpy import load_file

            feats = load_file(str(path))["feats"]
    except KeyError:
        raise RvcIosError(f"{path} holds no `feats` tensor; store the content features (1, T, C) under that name.") from None
    except Exception as exc:  # safetensors and zip report damage as several exception types
        raise RvcIosError(f"{path} is not a readable .safetensors or .npz file ({exc}); check the path, or write "
                          "the features again.") from None
    if feats.dtype.kind not in "fiu" or feats.ndim != 3 or feats.shape[0] != 1:
        raise RvcIosError(f"{path}: `feats` is {feats.dtype} {tuple(feats.shape)}; store the content features as "
                          "float32 (1, T, C).")
    return np.asarray(feats, dtype=np.float32)


def index_golden_tensors(index: SearchIndex, feats: np.ndarray, index_rate: float = DEFAULT_INDEX_RATE) -> dict[str, np.ndarray]:
    """Every tensor of `index_stage_table()` for features (1, T, C)."""
    feats = np.asarray(feats, dtype=np.float32)
    done = retrieval(index, feats[0], index_rate)
    return {
        "feats": feats,
        "coarse.lists": done.search.lists[None],
        "search.ids": done.search.ids[None],
        "search.scores": done.search.scores[None],
        "weights": done.weights[None],
        "retrieved": done.retrieved[None],
        "blended": done.blended[None],
    }


def generate_index_golden(
    assets_dir: Path,
    model_name: str,
    out_dir: Path,
    *,
    feats: np.ndarray | None = None,
    seed: int = 0,
    seconds: float = 1.0,
    index_rate: float = DEFAULT_INDEX_RATE,
) -> GoldenSet:
    """The golden set of one retrieval over `feats` (1, T, C), or over features synthesised from `seed`."""
    from .. import __version__

    if not 0 <= index_rate <= 1:
        raise RvcIosError(f"--index-rate must be between 0 and 1 (RVC's default is {DEFAULT_INDEX_RATE}), not {index_rate}.")
    manifest, tensors = load_exported(assets_dir, model_name, kind="index")
    index = search_index_from_export(manifest["index"], tensors, f"{model_name}.safetensors")
    if feats is None:
        feats = synthesised_feats(index, max(1, round(seconds * FRAMES_PER_SECOND)), seed)
    if feats.ndim != 3 or feats.shape[0] != 1 or feats.shape[2] != manifest["index"]["d"]:
        raise RvcIosError(f"feats must be (1, T, {manifest['index']['d']}) for this index, not {list(feats.shape)}.")
    golden = index_golden_tensors(index, feats, index_rate)
    if not np.isfinite(golden["blended"]).all():
        raise RvcIosError("A frame lies exactly on a stored vector (distance 0), which upstream turns into NaN; "
                          "use other features.")
    return write_golden(
        Path(out_dir), "index", golden, index_stage_table(),
        model_name=model_name,
        manifest_sha256=sha256_file(Path(assets_dir) / f"{model_name}.manifest.json"),
        seed=seed,
        tool_version=__version__,
        extra={"index_rate": float(index_rate), "k": K, "nprobe": index.nprobe, "d": int(manifest["index"]["d"]),
               "frames_per_second": FRAMES_PER_SECOND},
    )
