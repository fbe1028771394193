"""The JSON manifest written beside every weights file, checked against `schemas/manifest.schema.json`."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

from . import __version__
from .errors import ManifestError

FORMAT_VERSION = 1
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """A schema from the repository's `schemas/` folder (also packaged as data under `rvc_ios_tools/schemas`)."""
    for folder in (SCHEMA_DIR, Path(__file__).resolve().parent / "schemas"):
        candidate = folder / name
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise FileNotFoundError(f"schema {name} not found next to the package")


@functools.lru_cache(maxsize=None)
def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(schema_name))


def validate(document: dict[str, Any], schema_name: str) -> None:
    validator = _validator(schema_name)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise ManifestError(f"{schema_name}: {where}: {first.message} ({len(errors)} problem(s) in all).")


def tensor_entries(tensors: dict[str, tuple[tuple[int, ...], str, str, str]]) -> list[dict[str, Any]]:
    """key -> (shape, dtype, layout, sha256) as manifest entries, sorted by key."""
    return [
        {"key": key, "shape": list(shape), "dtype": dtype, "layout": layout, "sha256": sha}
        for key, (shape, dtype, layout, sha) in sorted(tensors.items())
    ]


def voice_manifest(
    *,
    model_name: str,
    source_file: str,
    source_sha256: str,
    flavor: str,
    rvc_version: str,
    f0: bool,
    config: Any,
    raw_config: list[Any],
    speaker_count: int,
    feature_dim: int,
    dtype: str,
    weights_file: str,
    tensors: list[dict[str, Any]],
    dropped: list[dict[str, str]],
) -> dict[str, Any]:
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": "voice",
        "model_name": model_name,
        "tool": {"name": "rvc-ios-tools", "version": __version__},
        "source": {"file_name": source_file, "sha256": source_sha256, "flavor": flavor},
        "rvc_version": rvc_version,
        "f0": f0,
        "sample_rate": config.sample_rate,
        "feature_dim": feature_dim,
        "upsample_factor": config.upsample_factor,
        "speaker_count": speaker_count,
        "config": {"raw": raw_config, **config.as_dict()},
        "dtype": dtype,
        "weights_file": weights_file,
        "tensors": tensors,
        "dropped": dropped,
    }
    validate(manifest, "manifest.schema.json")
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not a readable JSON manifest ({exc}). Export the voice again.") from None
    validate(document, "manifest.schema.json")
    if document["format_version"] != FORMAT_VERSION:
        raise ManifestError(
            f"{path}: manifest format {document['format_version']} is not the one this tool reads "
            f"({FORMAT_VERSION}). Export the voice again with this version of rvc-ios."
        )
    return document


def dumps(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()
