"""The Core ML manifest (kind `coreml`): every package, function, input and output, and the golden stage each is.

Written beside the packages by `rvc-ios export --coreml`, checked against `schemas/manifest.schema.json`, and read
by `rvc-ios coreml run` (on Linux through the interpreter, on a Mac through Core ML) to feed and name tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..core import manifest as manifest_io
from ..core.errors import ManifestError
from ..core.files import write_bytes_atomic
from ..core.stages import StageTable
from .convert import DEPLOYMENT_TARGET, PackageContract
from .toolchain import COREMLTOOLS_VERSION

# Stages the host computes around the Core ML programs, and why (the README's contract).
HOST_STAGES = {
    "voice": {
        "nsf_source": "SineGen's phase is float32-ill-conditioned: a cumulative sum over the frames (torch "
                      "accumulates it in float64), multiplied by the upsampling factor and linearly interpolated "
                      "at values up to f0 * seconds * upp, where one float32 rounding is ~1e-2 of a cycle; only "
                      "torch's exact operation order reproduces torch, so the host computes it as the MLX "
                      "reference does (the nsf_source package is there for hosts that cannot, at the SNR the "
                      "README reports)",
    },
    "rmvpe": {
        "mel": "the log-mel front end (STFT, mel filter bank, log) runs on the host",
        "padded_mel": "frames are padded to a multiple of 32 on the host (reflect, or constant)",
        "f0": "salience is decoded to Hz on the host (local average of cents, threshold 0.03)",
    },
    "hubert": {
        "v2": "v2 (RVC v2's features) is the last layer's output itself; Core ML cannot return one tensor under "
              "two names, so the host reads it as the last layer_<n>",
    },
}


def coreml_manifest(
    *, network: str, model_name: str, source_file: str, source_sha256: str, flavor: str,
    packages: Sequence[PackageContract], stage_table: StageTable, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    stage_of = {spec.name: spec.stage for spec in stage_table.tensors}
    layout_of = {spec.name: spec.layout for spec in stage_table.tensors}

    def tensor_row(contract) -> dict[str, Any]:
        return {
            "name": contract.coreml, "golden": contract.golden, "stage": stage_of.get(contract.golden),
            "layout": layout_of[contract.golden], "shape": list(contract.shape), "dtype": contract.dtype,
        }

    document = {
        "format_version": manifest_io.FORMAT_VERSION,
        "kind": "coreml",
        "model_name": model_name,
        "tool": {"name": "rvc-ios-tools", "version": __version__},
        "source": {"file_name": source_file, "sha256": source_sha256, "flavor": flavor},
        "coreml": {
            "network": network,
            "coremltools_version": COREMLTOOLS_VERSION,
            "minimum_deployment_target": DEPLOYMENT_TARGET,
            "host_stages": [{"stage": stage, "why": why} for stage, why in HOST_STAGES[network].items()],
            **(extra or {}),
            "packages": [
                {
                    "role": package.role,
                    "file": package.file,
                    "compute_precision": package.compute_precision,
                    "compression": package.compression,
                    "default_function": package.default_function,
                    **({"frame_range": list(package.frame_range)} if package.frame_range else {}),
                    "functions": [
                        {
                            "name": function.name,
                            **({"frames": function.frames} if function.frames is not None else {}),
                            "inputs": [tensor_row(c) for c in function.inputs],
                            "outputs": [tensor_row(c) for c in function.outputs],
                        }
                        for function in package.functions
                    ],
                }
                for package in packages
            ],
        },
    }
    manifest_io.validate(document, "manifest.schema.json")
    return document


def manifest_path(out_dir: Path, model_name: str, network: str) -> Path:
    return Path(out_dir) / f"{model_name}.{network}.coreml.json"


def write_coreml_manifest(path: Path, document: dict[str, Any]) -> Path:
    write_bytes_atomic(Path(path), manifest_io.dumps(document))
    return Path(path)


def read_coreml_manifest(path: Path) -> dict[str, Any]:
    document = manifest_io.read_manifest(Path(path))
    if document["kind"] != "coreml":
        raise ManifestError(
            f"{path} is a {document['kind']} manifest; pass the .coreml.json that `rvc-ios export --coreml` wrote."
        )
    return document
