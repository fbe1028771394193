"""The JSON manifest written beside every weights file, checked against `schemas/manifest.schema.json`."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

from .. import __version__
from .errors import ConfigMismatchError, ManifestError

# 2: per-tensor checksums are XXH64 (`xxh64`), no longer sha256.
FORMAT_VERSION = 2
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """A schema from the repository's `schemas/` folder (also packaged as data under `rvc_ios_tools/schemas`)."""
    for folder in (SCHEMA_DIR, Path(__file__).resolve().parents[1] / "schemas"):
        candidate = folder / name
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise FileNotFoundError(f"schema {name} not found next to the package")


@functools.lru_cache(maxsize=None)
def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(schema_name))


def schema_problems(document: Any, schema_name: str) -> list[str]:
    """Every way `document` fails `schemas/<schema_name>`, as "path: message" sentences, in path order."""
    errors = sorted(_validator(schema_name).iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors]


def validate(document: dict[str, Any], schema_name: str) -> None:
    problems = schema_problems(document, schema_name)
    if problems:
        raise ManifestError(f"{schema_name}: {problems[0]} ({len(problems)} problem(s) in all).")


def exact_fields(block: Any, fields: Any, what: str) -> dict[str, Any]:
    """`block` as a plain dict when it has every name in `fields` and no other; else a ConfigMismatchError
    naming what is missing and what is unknown (a manifest block written by another version of the tool)."""
    block = dict(block)
    missing = [name for name in fields if name not in block]
    unknown = [name for name in block if name not in fields]
    if missing or unknown:
        raise ConfigMismatchError(
            f"The {what} "
            + (f"lacks {', '.join(missing)}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"has unknown fields {', '.join(unknown)}" if unknown else "")
            + ". Export the model again with this rvc-ios version."
        )
    return block


def manifest_document(
    *,
    kind: str,
    model_name: str,
    source_file: str,
    source_sha256: str,
    flavor: str,
    dtype: str,
    weights_file: str,
    tensors: list[dict[str, Any]],
    dropped: list[dict[str, str]],
    **model_fields: Any,
) -> dict[str, Any]:
    """A manifest of any kind: the fields every weights file has, then the kind's own, schema-checked."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model_name": model_name,
        "tool": {"name": "rvc-ios-tools", "version": __version__},
        "source": {"file_name": source_file, "sha256": source_sha256, "flavor": flavor},
        **model_fields,
        "dtype": dtype,
        "weights_file": weights_file,
        "tensors": tensors,
        "dropped": dropped,
    }
    validate(manifest, "manifest.schema.json")
    return manifest


def voice_manifest(
    *,
    config: Any,
    raw_config: list[Any],
    rvc_version: str,
    f0: bool,
    speaker_count: int,
    feature_dim: int,
    **common: Any,
) -> dict[str, Any]:
    return manifest_document(
        kind="voice",
        rvc_version=rvc_version,
        f0=f0,
        sample_rate=config.sample_rate,
        feature_dim=feature_dim,
        upsample_factor=config.upsample_factor,
        speaker_count=speaker_count,
        config={"raw": raw_config, **config.as_dict()},
        **common,
    )


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser's recursion limit, which no manifest is.
        raise ManifestError(f"{path} is not a readable JSON manifest ({exc}). Export the model again.") from None
    # The format first: a manifest from another version fails the schema in every row, which says less.
    found = document.get("format_version") if isinstance(document, dict) else None
    if found != FORMAT_VERSION:
        raise ManifestError(
            f"{path}: manifest format {found} is not the one this tool reads ({FORMAT_VERSION}). "
            "Export the model again with this version of rvc-ios."
        )
    validate(document, "manifest.schema.json")
    return document


def is_current(path: Path) -> bool:
    """Whether `path` is a manifest this version of the tool reads (a cached export can be reused), rather
    than missing, damaged or written in another format."""
    try:
        read_manifest(Path(path))
    except ManifestError:
        return False
    return True


def dumps(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()


# The `rvc-ios export` option that writes an export of each kind.
EXPORT_OPTIONS = {"voice": " --model-name NAME", "rmvpe": " --rmvpe rmvpe.pt", "hubert": " --hubert PATH",
                  "index": " --index PATH"}


def load_exported(assets_dir: Path, model_name: str, kind: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read `NAME.manifest.json` + `NAME.safetensors` and check that they describe each other exactly, and, given
    `kind`, that the export is of that kind (voice, rmvpe, hubert, index).

    Every tensor's key, shape, dtype and XXH64 checksum must match its manifest row, with no key on one side only.
    """
    import safetensors.numpy

    from .files import xxh64_tensor

    assets_dir = Path(assets_dir)
    manifest_path = assets_dir / f"{model_name}.manifest.json"
    if not manifest_path.is_file():
        found = sorted(p.name[: -len(".manifest.json")] for p in assets_dir.glob("*.manifest.json"))
        raise ManifestError(
            f"No exported model {model_name!r} in {assets_dir} (no {manifest_path.name}). Exported models there: "
            f"{', '.join(found) or 'none'}. Run `rvc-ios export --model-name {model_name} --output-dir {assets_dir}`."
        )
    document = read_manifest(manifest_path)
    if kind is not None and document["kind"] != kind:
        raise ManifestError(
            f"{manifest_path} describes a {document['kind']} export, not a {kind} one. Pass the name of a {kind} "
            f"export, or export one (`rvc-ios export`{EXPORT_OPTIONS[kind]})."
        )
    weights_path = assets_dir / document["weights_file"]
    try:
        tensors = safetensors.numpy.load_file(str(weights_path))
    except (OSError, ValueError, RuntimeError, safetensors.SafetensorError) as exc:
        raise ManifestError(f"{weights_path} is missing or not a readable safetensors file ({exc}). Export again.") from None
    rows = {row["key"]: row for row in document["tensors"]}
    only_file = sorted(set(tensors) - set(rows))
    only_manifest = sorted(set(rows) - set(tensors))
    if only_file or only_manifest:
        raise ManifestError(
            f"{weights_path.name} and {manifest_path.name} disagree: keys only in the weights file "
            f"{only_file[:5]}, keys only in the manifest {only_manifest[:5]}. Export again."
        )
    for key, row in rows.items():
        array = tensors[key]
        if list(array.shape) != row["shape"] or str(array.dtype) != row["dtype"]:
            raise ManifestError(
                f"`{key}` is {str(array.dtype)} {list(array.shape)} in {weights_path.name} but the manifest says "
                f"{row['dtype']} {row['shape']}. Export again."
            )
        if xxh64_tensor(array) != row["xxh64"]:
            raise ManifestError(f"`{key}` in {weights_path.name} fails its manifest checksum: the file is damaged. Export again.")
    return document, tensors
