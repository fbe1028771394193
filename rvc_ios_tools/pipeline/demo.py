"""A complete set of demo assets for a conversion, from seeds: a voice, a content encoder (Hugging Face folder),
rmvpe.pt and an index built as upstream's `train_index` builds one, laid out as RVC WebUI keeps them, and
their exports. No pretrained weights can be fetched here; these have every parameter random (see each network's
`demo` module), which is what parity needs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core.files import write_bytes_atomic
from ..hubert.convert import DEMO_ARCHITECTURES as HUBERT_ARCHITECTURES
from ..hubert.convert import TINY_ARCHITECTURE as TINY_HUBERT, check_architecture
from ..hubert.demo import hf_config, random_hubert_state_dict
from ..hubert.export import export_hubert
from ..index.demo import build_index
from ..index.export import export_index
from ..rmvpe.demo import write_demo_rmvpe
from ..rmvpe.export import export_rmvpe
from ..voice.demo import PRESETS, write_demo_voice
from ..voice.export import export_voice

FEATURE_DIMS = {"v1": 256, "v2": 768}
INDEX_ROWS = 3000


@dataclasses.dataclass(frozen=True)
class DemoAssets:
    root: Path
    voice: Path  # root/NAME.pth
    hubert: Path  # root/hubert/ (config.json + model.safetensors)
    rmvpe: Path  # root/rmvpe.pt
    index: Path | None  # root/added_IVF..._NAME_vN.index
    exports: Path  # root/Assets: NAME, hubert, rmvpe, index exports
    hubert_architecture: dict[str, Any]
    name: str


def content_encoder_architecture(size: str, version: str) -> dict[str, Any]:
    """The full HuBERT-base, or the tiny one widened to the features this voice version takes."""
    if size == "full":
        return check_architecture(HUBERT_ARCHITECTURES["full"])
    if version == "v1":
        return check_architecture({**TINY_HUBERT, "final_proj_dim": FEATURE_DIMS["v1"]})
    return check_architecture({**TINY_HUBERT, "hidden_size": FEATURE_DIMS["v2"], "num_heads": 4})


def write_hf_content_encoder(folder: Path, architecture: dict[str, Any], seed: int) -> dict[str, Any]:
    """config.json + model.safetensors of a random content encoder; returns its state dict (transformers names)."""
    import safetensors.torch

    state = random_hubert_state_dict(seed, architecture)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / "config.json", (json.dumps(hf_config(architecture), indent=2) + "\n").encode())
    write_bytes_atomic(folder / "model.safetensors",
                       safetensors.torch.save({k: v.contiguous() for k, v in state.items()}, metadata={"format": "pt"}))
    return state


def write_demo_assets(root: Path, preset: str = "v2-40k", size: str = "full", *, with_index: bool = True,
                      name: str = "voice", seed: int = 3) -> DemoAssets:
    """Every file a conversion reads, from seeds; `size` "full" or "tiny" for RMVPE and the content encoder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    exports = root / "Assets"
    version = PRESETS[preset].version
    voice = write_demo_voice(root / f"{name}.pth", preset, seed=seed)
    export_voice(voice, exports, name)
    architecture = content_encoder_architecture(size, version)
    write_hf_content_encoder(root / "hubert", architecture, seed=seed + 2)
    export_hubert(root / "hubert", exports, model_name="hubert")
    rmvpe = write_demo_rmvpe(root / "rmvpe.pt", seed=0, preset=size)
    export_rmvpe(rmvpe, exports)
    index = None
    if with_index:
        rng = np.random.default_rng(seed + 4)
        features = (rng.standard_normal((INDEX_ROWS, FEATURE_DIMS[version])) * 0.5).astype(np.float32)
        index = build_index(features, root / f"added_IVF54_Flat_nprobe_1_{name}_{version}.index")
        export_index(index, exports, "index")
    return DemoAssets(root, voice, root / "hubert", rmvpe, index, exports, architecture, name)
