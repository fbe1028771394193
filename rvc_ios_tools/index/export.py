"""`rvc-ios export --index`: read a faiss `.index` file, write its tensors (`convert.INDEX_TENSORS`) + manifest.

With `--index-dtype float16` the stored vectors take half the bytes; the export measures what that does to
retrieval on queries drawn near the index's own vectors (`float16_effect`) and records it in the manifest.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from ..core import manifest as manifest_io
from ..core.diff import snr_db
from ..core.errors import RvcIosError
from ..core.export import StepReporter, write_weights_and_manifest
from ..core.files import sha256_file
from .convert import DTYPES, LAYOUTS, index_tensors
from .demo import queries_near
from .faiss_file import IvfFlatIndex, read_faiss_index
from .reference import DEFAULT_INDEX_RATE, K, SearchIndex, retrieval

# Queries for the float16 measurement: this many stored vectors, each moved by noise of this fraction of
# the vectors' spread (`demo.queries_near`).
EFFECT_QUERIES = 1000
EFFECT_NOISE = 0.25
EFFECT_SEED = 0


@dataclasses.dataclass(frozen=True)
class Float16Effect:
    queries: int
    ids_identical: int  # queries whose 8 ids (in order) are the float32 export's
    retrieved_snr_db: float  # the retrieved features against the float32 export's
    blended_snr_db: float  # after the blend at the default index_rate

    def as_dict(self) -> dict:
        def decibels(value: float) -> float | str:  # JSON has no Infinity: "inf" when bit-identical
            return round(value, 2) if math.isfinite(value) else str(value)

        return {
            "queries": self.queries, "ids_identical": self.ids_identical,
            "retrieved_snr_db": decibels(self.retrieved_snr_db), "blended_snr_db": decibels(self.blended_snr_db),
            "index_rate": DEFAULT_INDEX_RATE,
        }

    def summary(self) -> str:
        return (f"float16 vectors: identical ids on {self.ids_identical} of {self.queries} queries; retrieved features "
                f"{self.retrieved_snr_db:.1f} dB, blended (index_rate {DEFAULT_INDEX_RATE}) {self.blended_snr_db:.1f} dB "
                "against float32")


def effect_queries(index: IvfFlatIndex, count: int = EFFECT_QUERIES, seed: int = EFFECT_SEED) -> np.ndarray:
    return queries_near(index.vectors, min(count, index.ntotal), seed, EFFECT_NOISE)


def float16_effect(index: IvfFlatIndex, queries: np.ndarray | None = None) -> Float16Effect:
    """Retrieval from float16-stored vectors against retrieval from the float32 file, on the same queries."""
    queries = effect_queries(index) if queries is None else queries
    full = SearchIndex.from_file_index(index)
    half = dataclasses.replace(full, vectors=index.vectors.astype(np.float16))
    exact, rounded = retrieval(full, queries), retrieval(half, queries)
    same = int(np.all(exact.search.ids == rounded.search.ids, axis=1).sum())
    return Float16Effect(len(queries), same, snr_db(exact.retrieved, rounded.retrieved),
                         snr_db(exact.blended, rounded.blended))


def index_manifest(index: IvfFlatIndex, effect: Float16Effect | None, **common) -> dict:
    fields = {
        "d": index.d, "nlist": index.nlist, "nprobe": index.nprobe, "ntotal": index.ntotal, "metric": index.metric,
        "k": K, "faiss_type": "IwFl", "quantizer": "IxF2", "list_sizes_form": index.list_sizes_form,
    }
    if effect is not None:
        fields["float16_effect"] = effect.as_dict()
    return manifest_io.manifest_document(kind="index", flavor="faiss", index=fields, dropped=[], **common)


@dataclasses.dataclass(frozen=True)
class IndexExportResult:
    weights_path: Path
    manifest_path: Path
    index: IvfFlatIndex
    float16_effect: Float16Effect | None


def export_index(
    source: Path, out_dir: Path, model_name: str, dtype: str = "float32", reporter: StepReporter | None = None,
    feature_dim: int | None = None,
) -> IndexExportResult:
    """Write `<out_dir>/<model_name>.safetensors` and `.manifest.json` for the faiss file `source`; with
    `feature_dim` (the voice's), an index of another width is refused before anything is written."""
    reporter = reporter or StepReporter(enabled=False)
    source = Path(source)
    if dtype not in DTYPES:
        raise RvcIosError(f"--index-dtype must be float32 or float16, not {dtype!r}.")
    with reporter.step(f"reading {source.name}"):
        index = read_faiss_index(source)
    if index.ntotal == 0:
        raise RvcIosError(
            f"{source} holds no vectors (a trained_*.index is written before the features are added); "
            "export the added_*.index beside it."
        )
    if feature_dim is not None and index.d != feature_dim:
        raise RvcIosError(
            f"{source} holds {index.d}-wide vectors but the voice's content features are {feature_dim} wide "
            f"({'v1' if feature_dim == 256 else 'v2' if feature_dim == 768 else 'this voice'}); use the index "
            "trained for this voice (pass it with --index)."
        )
    effect = None
    if dtype == "float16":
        with reporter.step("measuring float16 retrieval against float32"):
            effect = float16_effect(index)
    arrays = index_tensors(index, dtype)
    source_sha = sha256_file(source)

    def manifest_for(rows: list[dict], weights_file: str) -> dict:
        return index_manifest(
            index, effect, model_name=model_name, source_file=source.name, source_sha256=source_sha, dtype=dtype,
            weights_file=weights_file, tensors=[{**row, "layout": LAYOUTS[row["key"]]} for row in rows],
        )

    def fill(put) -> None:
        for key, array in arrays.items():
            put(key, array)

    specs = {key: (array.dtype, array.shape) for key, array in arrays.items()}
    with reporter.step(f"writing {Path(out_dir) / model_name}.safetensors"):
        weights_path, manifest_path = write_weights_and_manifest(Path(out_dir), model_name, specs, fill, manifest_for)
    return IndexExportResult(weights_path, manifest_path, index, effect)


# --- finding a voice's index as upstream does ---

INDEX_ROOT_ENV = "index_root"


def find_index_beside(voice: Path, model_name: str) -> Path | None:
    """upstream `get_index_path_from_model`: the first `*.index` whose path contains the model name and whose
    file name does not contain "trained", walking the folder bottom-up (`os.walk(topdown=False)`).

    Searched: the voice's own folder, then `$index_root` (upstream's setting) when it is set. Names are
    sorted within each folder so the choice does not depend on the file system's listing order.
    """
    stem = model_name.split(".")[0]
    roots = [Path(voice).parent]
    if os.environ.get(INDEX_ROOT_ENV):
        roots.append(Path(os.environ[INDEX_ROOT_ENV]))
    for root in roots:
        for folder, _, files in os.walk(root, topdown=False):
            for name in sorted(files):
                path = os.path.join(folder, name)
                if name.endswith(".index") and "trained" not in name and stem in path:
                    return Path(path)
    return None
