"""Deterministic demo voices built from the upstream RVC-Project model classes.

No pretrained weights can be fetched, so voices are made here: upstream's own synthesizer classes (PyPI
`rvc==0.3.5`, installed with --no-deps), every parameter drawn from a seed, saved in the exact upstream
(RVC WebUI) or Applio file format. Upstream zero-initialises the flow's `post` convs; here every tensor is
non-zero so that a port that skips a layer is caught.
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import CONFIG_FIELDS
from ..core.errors import RvcIosError
from ..core.files import write_bytes_atomic

# Real upstream configs (RVC WebUI configs/v1|v2/*.json), in the 18-item order of CONFIG_FIELDS.
_RESBLOCK = ["1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]]]
FULL_SIZE_CONFIGS: dict[str, list[Any]] = {
    "v2-40k": [1025, 32, 192, 192, 768, 2, 6, 3, 0, *_RESBLOCK, [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000],
    "v2-48k": [1025, 32, 192, 192, 768, 2, 6, 3, 0, *_RESBLOCK, [12, 10, 2, 2], 512, [24, 20, 4, 4], 109, 256, 48000],
    "v2-32k": [513, 32, 192, 192, 768, 2, 6, 3, 0, *_RESBLOCK, [10, 8, 2, 2], 512, [20, 16, 4, 4], 109, 256, 32000],
    "v1-40k": [1025, 32, 192, 192, 768, 2, 6, 3, 0, *_RESBLOCK, [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000],
    "v1-48k": [1025, 32, 192, 192, 768, 2, 6, 3, 0, *_RESBLOCK, [10, 6, 2, 2, 2], 512, [16, 16, 4, 4, 4], 109, 256, 48000],
    "v1-32k": [513, 32, 192, 192, 768, 2, 6, 3, 0, *_RESBLOCK, [10, 4, 2, 2, 2], 512, [16, 16, 4, 4, 4], 109, 256, 32000],
}

# Tiny sizes keep every structural feature (all upsample stages and rates, 3 resblock kernels, 2 heads,
# relative attention, 4 flows) but with a handful of channels, so tests and committed fixtures stay small.
TINY_OVERRIDES = {
    "inter_channels": 8,
    "hidden_channels": 16,
    "filter_channels": 32,
    "n_heads": 2,
    "n_layers": 2,
    "upsample_initial_channel": 32,
    "spk_embed_dim": 3,
    "gin_channels": 8,
}


@dataclasses.dataclass(frozen=True)
class DemoPreset:
    name: str
    version: str
    f0: bool
    config: list[Any]

    @property
    def sample_rate_tag(self) -> str:
        return f"{self.config[-1] // 1000}k"


def _presets() -> dict[str, DemoPreset]:
    presets = {}
    for base, config in FULL_SIZE_CONFIGS.items():
        version = base.split("-")[0]
        for f0 in (True, False):
            for tiny in (False, True):
                name = base + ("" if f0 else "-nof0") + ("-tiny" if tiny else "")
                cfg = list(config)
                if tiny:
                    for field, value in TINY_OVERRIDES.items():
                        cfg[CONFIG_FIELDS.index(field)] = value
                presets[name] = DemoPreset(name, version, f0, cfg)
    return presets


PRESETS: dict[str, DemoPreset] = _presets()
FLAVORS = ("rvc-webui", "applio")


def preset(name: str) -> DemoPreset:
    if name not in PRESETS:
        raise RvcIosError(f"Unknown demo preset {name!r}. Known presets: {', '.join(sorted(PRESETS))}.")
    return PRESETS[name]


def upstream_class(version: str, f0: bool):
    """The upstream synthesizer class upstream's own loader picks for (version, f0)."""
    try:
        from rvc.lib.infer_pack import models
    except ImportError as exc:
        raise RvcIosError(
            "Demo voices are built from the upstream RVC model code, which is not installed. Run the README's "
            f"set-up command, or `pip install --no-deps rvc==0.3.5` ({exc})."
        ) from None
    return {
        ("v1", True): models.SynthesizerTrnMs256NSFsid,
        ("v1", False): models.SynthesizerTrnMs256NSFsid_nono,
        ("v2", True): models.SynthesizerTrnMs768NSFsid,
        ("v2", False): models.SynthesizerTrnMs768NSFsid_nono,
    }[(version, f0)]


def build_upstream_voice(preset_name: str, seed: int = 0):
    """Upstream torch synthesizer (float32, eval mode, weight norm still attached) with seeded parameters."""
    spec = preset(preset_name)
    cls = upstream_class(spec.version, spec.f0)
    with warnings.catch_warnings():
        # rvc 0.3.5 uses torch.nn.utils.weight_norm, which PyTorch deprecates; the stored keys are what matter.
        warnings.simplefilter("ignore", FutureWarning)
        model = cls(*spec.config, is_half=False)
    model.eval()
    randomise_parameters(model, seed)
    return model


def randomise_parameters(model, seed: int) -> None:
    """Every parameter from a seeded generator, scaled so activations stay in a useful range.

    Weight-norm layers get a direction `v` and gain `g` whose folded weight has a 1/sqrt(fan_in) scale and
    a per-row gain that differs from the direction's norm, so a wrong fold changes the output.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            shape = tuple(param.shape)
            if name.endswith("weight_g") or name.endswith("original0"):
                continue  # set together with its direction below
            if name.endswith("weight_v") or name.endswith("original1"):
                direction = torch.randn(shape, generator=generator)
                gain_name = name[: -len("weight_v")] + "weight_g" if name.endswith("weight_v") else name[:-1] + "0"
                gain = dict(model.named_parameters())[gain_name]
                # Folded row norm ~ U(0.5, 1.5): the scale of a 1/sqrt(fan_in) init, independent of ||v||.
                param.copy_(direction)
                gain.copy_(0.5 + torch.rand(gain.shape, generator=generator))
                continue
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("gamma",):
                param.copy_(1.0 + 0.2 * torch.randn(shape, generator=generator))
            elif leaf in ("beta", "bias"):
                param.copy_(0.1 * torch.randn(shape, generator=generator))
            elif leaf in ("emb_rel_k", "emb_rel_v"):
                param.copy_(torch.randn(shape, generator=generator) * shape[-1] ** -0.5)
            elif param.ndim >= 2 and "emb" not in name:
                fan_in = int(np.prod(shape[1:]))
                scale = 1.0 / math.sqrt(fan_in)
                if ".post." in name:
                    scale *= 0.5  # flow output convs: non-zero but gentle, the reverse flow stays stable
                param.copy_(torch.randn(shape, generator=generator) * scale)
            else:
                param.copy_(torch.randn(shape, generator=generator) * (1.0 if param.ndim >= 2 else 0.1))


def voice_payload(model, spec: DemoPreset, flavor: str, name: str) -> dict[str, Any]:
    """The dict upstream's `savee` (RVC WebUI) or Applio's `extract_model` writes for a trained voice."""
    state = model.state_dict()
    weights = {key: tensor.detach().half() for key, tensor in state.items() if "enc_q" not in key}
    config = list(spec.config)
    if flavor == "rvc-webui":
        return {
            "weight": weights,
            "config": config,
            "info": "200epoch",
            "sr": spec.sample_rate_tag,
            "f0": int(spec.f0),
            "version": spec.version,
        }
    if flavor == "applio":
        # Applio trains with torch.nn.utils.parametrizations.weight_norm: gain/direction are original0/1.
        renamed = {}
        for key, tensor in weights.items():
            if key.endswith(".weight_g"):
                key = key[: -len("weight_g")] + "parametrizations.weight.original0"
            elif key.endswith(".weight_v"):
                key = key[: -len("weight_v")] + "parametrizations.weight.original1"
            renamed[key] = tensor
        return {
            "weight": renamed,
            "config": config,
            "version": spec.version,
            "sr": int(spec.config[-1]),
            "f0": bool(spec.f0),
            "info": "200epoch",
            "model_name": name,
            "epoch": 200,
            "step": 4000,
            "author": "rvc-ios-tools demo",
            "embedder_model": "contentvec",
            "speakers_id": int(spec.config[CONFIG_FIELDS.index("spk_embed_dim")]),
            "vocoder": "HiFi-GAN",
            "dataset_length": 0,
            "overtrain_info": "",
            "model_hash": "",
        }
    raise RvcIosError(f"Unknown flavor {flavor!r}; use one of {', '.join(FLAVORS)}.")


def write_demo_voice(path: Path, preset_name: str, seed: int = 0, flavor: str = "rvc-webui") -> Path:
    """Write a deterministic voice file; the same arguments give byte-identical files."""
    import torch

    spec = preset(preset_name)
    model = build_upstream_voice(preset_name, seed)
    payload = voice_payload(model, spec, flavor, Path(path).stem)
    # torch.save names the zip's inner folder after the file it writes to; saving to memory gives the fixed
    # name "archive", so the bytes do not depend on the (temporary) file name.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)
