"""Read RVC voice files safely and check them against their own config.

Two flavors exist in the wild:
- RVC WebUI (`process_ckpt.savee`): `weight` (fp16 state dict without `enc_q`), `config` (18-item list),
  `sr` as "32k"/"40k"/"48k", `f0` as 0/1, `version` "v1"/"v2", `info`.
- Applio: the same core keys, but `sr` is an int, `f0` a bool, extra metadata (`model_name`, `epoch`,
  `vocoder`, `embedder_model`, `speakers_id`, ...), and weight norm often stored as
  `parametrizations.weight.original0/original1` (PyTorch's newer weight-norm API).

Like upstream's loaders, the speaker count comes from the rows of `emb_g.weight` and the sample rate from
`config[-1]`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..core.pickles import load_pickle_safely, non_plain_item, state_dict_to_numpy
from ..core.rules import split_weight_norm_key
from ..core.errors import (
    ConfigMismatchError,
    MissingKeyError,
    NotAVoiceError,
    UnsupportedVoiceError,
)

CONFIG_FIELDS = (
    "spec_channels",
    "segment_size",
    "inter_channels",
    "hidden_channels",
    "filter_channels",
    "n_heads",
    "n_layers",
    "kernel_size",
    "p_dropout",
    "resblock",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "upsample_rates",
    "upsample_initial_channel",
    "upsample_kernel_sizes",
    "spk_embed_dim",
    "gin_channels",
    "sample_rate",
)

# Applio writes the vocoder's name; only the original HiFi-GAN (NSF) decoder is RVC's architecture.
SUPPORTED_VOCODERS = ("HiFi-GAN",)

# Upstream TextEncoder256/768: v1 voices consume 256-dim HuBERT features, v2 voices 768-dim ones.
FEATURE_DIMS = {"v1": 256, "v2": 768}

# Upstream's attentions.Encoder is built with window_size=10 and heads_share=True.
ATTENTION_WINDOW = 10
# Upstream's ResidualCouplingBlock(inter, hidden, 5, 1, 3): 4 coupling layers, WaveNet kernel 5, 3 layers.
FLOW_COUNT = 4
FLOW_KERNEL = 5
FLOW_WN_LAYERS = 3


@dataclasses.dataclass(frozen=True)
class VoiceConfig:
    """The 18-item upstream config, as named fields."""

    spec_channels: int
    segment_size: int
    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    p_dropout: float
    resblock: str
    resblock_kernel_sizes: list[int]
    resblock_dilation_sizes: list[list[int]]
    upsample_rates: list[int]
    upsample_initial_channel: int
    upsample_kernel_sizes: list[int]
    spk_embed_dim: int
    gin_channels: int
    sample_rate: int

    @classmethod
    def from_list(cls, raw: list[Any]) -> "VoiceConfig":
        if not isinstance(raw, (list, tuple)) or len(raw) != len(CONFIG_FIELDS):
            count = len(raw) if isinstance(raw, (list, tuple)) else type(raw).__name__
            raise NotAVoiceError(
                f"The voice's `config` must be a list of {len(CONFIG_FIELDS)} items "
                f"({', '.join(CONFIG_FIELDS)}), found {count}. Re-save the voice with RVC WebUI or Applio."
            )
        problem = non_plain_item(list(raw), "config")
        if problem:
            raise NotAVoiceError(f"The voice's {problem}, not a number, string or list; upstream configs are plain.")
        values = dict(zip(CONFIG_FIELDS, raw))
        try:
            return cls(
                spec_channels=int(values["spec_channels"]),
                segment_size=int(values["segment_size"]),
                inter_channels=int(values["inter_channels"]),
                hidden_channels=int(values["hidden_channels"]),
                filter_channels=int(values["filter_channels"]),
                n_heads=int(values["n_heads"]),
                n_layers=int(values["n_layers"]),
                kernel_size=int(values["kernel_size"]),
                p_dropout=float(values["p_dropout"]),
                resblock=str(values["resblock"]),
                resblock_kernel_sizes=[int(k) for k in values["resblock_kernel_sizes"]],
                resblock_dilation_sizes=[[int(d) for d in ds] for ds in values["resblock_dilation_sizes"]],
                upsample_rates=[int(r) for r in values["upsample_rates"]],
                upsample_initial_channel=int(values["upsample_initial_channel"]),
                upsample_kernel_sizes=[int(k) for k in values["upsample_kernel_sizes"]],
                spk_embed_dim=int(values["spk_embed_dim"]),
                gin_channels=int(values["gin_channels"]),
                sample_rate=_sample_rate(values["sample_rate"]),
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise NotAVoiceError(f"The voice's `config` has an item of the wrong type: {exc}.") from None

    def to_list(self) -> list[Any]:
        return [getattr(self, name) for name in CONFIG_FIELDS]

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CONFIG_FIELDS}

    @property
    def upsample_factor(self) -> int:
        return math.prod(self.upsample_rates)


@dataclasses.dataclass
class VoiceCheckpoint:
    """A validated voice: config, flags, and the raw upstream state dict as numpy arrays."""

    path: Path
    flavor: str  # "rvc-webui" or "applio"
    version: str  # "v1" or "v2"
    f0: bool
    config: VoiceConfig
    raw_config: list[Any]
    state_dict: dict[str, np.ndarray]
    metadata: dict[str, Any]

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def speaker_count(self) -> int:
        return int(self.state_dict["emb_g.weight"].shape[0])

    @property
    def feature_dim(self) -> int:
        return FEATURE_DIMS[self.version]

    @property
    def parameter_count(self) -> int:
        return int(sum(int(np.prod(t.shape)) for t in self.state_dict.values()))

    @property
    def dtypes(self) -> list[str]:
        return sorted({str(t.dtype) for t in self.state_dict.values()})


def _sample_rate(value: Any) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        if text.endswith("k") and text[:-1].isdigit():
            return int(text[:-1]) * 1000
        return int(text)
    return int(value)


def load_voice(path: Path) -> VoiceCheckpoint:
    """Load and validate an RVC voice file; every problem raises an `RvcIosError` naming what to do."""
    path = Path(path)
    payload = load_pickle_safely(path)
    return voice_from_payload(payload, path)


def voice_from_payload(payload: Any, path: Path) -> VoiceCheckpoint:
    if not isinstance(payload, dict):
        raise NotAVoiceError(
            f"{path.name} holds a {type(payload).__name__}, not an RVC voice (a dict with `weight` and `config`)."
        )
    if "weight" not in payload or "config" not in payload:
        if "model" in payload and ("optimizer" in payload or "iteration" in payload or "learning_rate" in payload):
            raise NotAVoiceError(
                f"{path.name} is a training checkpoint (G_*.pth with `model`/`optimizer`), not a voice. "
                "Extract the voice first (RVC WebUI: ckpt processing > extract model; Applio: the model's "
                ".pth in logs/<name>/ written at the end of training)."
            )
        keys = ", ".join(sorted(map(str, payload))[:8]) or "nothing"
        raise NotAVoiceError(
            f"{path.name} is not an RVC voice: it has no `weight`/`config` entries (found: {keys}). Pass the voice's "
            ".pth (RVC WebUI keeps it in assets/weights/, Applio in logs/<name>/)."
        )

    vocoder = payload.get("vocoder", "HiFi-GAN")
    if vocoder not in SUPPORTED_VOCODERS:
        raise UnsupportedVoiceError(
            f"{path.name} uses Applio's {vocoder!r} vocoder; only the original HiFi-GAN (NSF) decoder of RVC "
            "is supported. Retrain or export the voice with the HiFi-GAN vocoder."
        )

    weights = payload["weight"]
    if not isinstance(weights, dict) or not weights:
        raise NotAVoiceError(f"{path.name}: `weight` must be a non-empty state dict.")
    state_dict = state_dict_to_numpy(weights, path.name)

    config = VoiceConfig.from_list(payload["config"])
    raw_config = [_plain(item) for item in payload["config"]]

    flavor = "applio" if _looks_like_applio(payload) else "rvc-webui"
    version = str(payload.get("version", "v1"))
    if version not in FEATURE_DIMS:
        raise NotAVoiceError(f"{path.name}: unknown RVC version {version!r}; expected 'v1' or 'v2'.")
    try:
        f0 = bool(int(payload.get("f0", 1)))
        declared = _sample_rate(payload["sr"]) if "sr" in payload else None
    except (TypeError, ValueError, OverflowError):
        raise NotAVoiceError(
            f"{path.name}: `f0` ({payload.get('f0')!r:.40}) or `sr` ({payload.get('sr')!r:.40}) is not a number; "
            "RVC writes f0 as 0/1 and sr as e.g. \"40k\" or 40000."
        ) from None

    if declared is not None:
        if declared != config.sample_rate:
            raise ConfigMismatchError(
                f"{path.name}: `sr` says {declared} Hz but config[-1] says {config.sample_rate} Hz. "
                "Fix the file's `sr` entry to match the model it was trained as."
            )

    emb_g = state_dict.get("emb_g.weight")
    if emb_g is None:
        raise MissingKeyError(f"{path.name}: `emb_g.weight` (speaker embedding) is missing from `weight`.")
    # Upstream loaders overwrite config[-3] with the embedding's row count; so do we.
    config = dataclasses.replace(config, spk_embed_dim=int(emb_g.shape[0]))

    checkpoint = VoiceCheckpoint(
        path=path,
        flavor=flavor,
        version=version,
        f0=f0,
        config=config,
        raw_config=raw_config,
        state_dict=state_dict,
        metadata={k: _plain(v) for k, v in payload.items() if k not in ("weight", "config")},
    )
    check_shapes(checkpoint)
    return checkpoint


def _looks_like_applio(payload: dict[str, Any]) -> bool:
    applio_only = ("model_name", "vocoder", "embedder_model", "speakers_id", "epoch", "step", "author")
    return isinstance(payload.get("sr"), int) or isinstance(payload.get("f0"), bool) or any(
        key in payload for key in applio_only
    )


def _plain(value: Any) -> Any:
    """JSON-friendly copy of config items and metadata (tensors and numpy scalars become numbers)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------------
# Expected shapes (PyTorch layout) of every tensor an inference voice must hold, derived from the config.
# ---------------------------------------------------------------------------------------------------

def expected_shapes(config: VoiceConfig, version: str, f0: bool) -> dict[str, tuple[int, ...]]:
    """Shapes of every module weight upstream's synthesizer has (weight-norm layers listed as `weight`)."""
    c = config
    h, i, f, g = c.hidden_channels, c.inter_channels, c.filter_channels, c.gin_channels
    shapes: dict[str, tuple[int, ...]] = {
        "enc_p.emb_phone.weight": (h, FEATURE_DIMS[version]),
        "enc_p.emb_phone.bias": (h,),
        "enc_p.proj.weight": (2 * i, h, 1),
        "enc_p.proj.bias": (2 * i,),
        "emb_g.weight": (c.spk_embed_dim, g),
    }
    if f0:
        shapes["enc_p.emb_pitch.weight"] = (256, h)
    k_channels = h // c.n_heads
    for n in range(c.n_layers):
        prefix = f"enc_p.encoder.attn_layers.{n}"
        for name in ("q", "k", "v", "o"):
            shapes[f"{prefix}.conv_{name}.weight"] = (h, h, 1)
            shapes[f"{prefix}.conv_{name}.bias"] = (h,)
        shapes[f"{prefix}.emb_rel_k"] = (1, 2 * ATTENTION_WINDOW + 1, k_channels)
        shapes[f"{prefix}.emb_rel_v"] = (1, 2 * ATTENTION_WINDOW + 1, k_channels)
        for norm in ("norm_layers_1", "norm_layers_2"):
            shapes[f"enc_p.encoder.{norm}.{n}.gamma"] = (h,)
            shapes[f"enc_p.encoder.{norm}.{n}.beta"] = (h,)
        shapes[f"enc_p.encoder.ffn_layers.{n}.conv_1.weight"] = (f, h, c.kernel_size)
        shapes[f"enc_p.encoder.ffn_layers.{n}.conv_1.bias"] = (f,)
        shapes[f"enc_p.encoder.ffn_layers.{n}.conv_2.weight"] = (h, f, c.kernel_size)
        shapes[f"enc_p.encoder.ffn_layers.{n}.conv_2.bias"] = (h,)

    for k in range(FLOW_COUNT):
        prefix = f"flow.flows.{2 * k}"
        shapes[f"{prefix}.pre.weight"] = (h, i // 2, 1)
        shapes[f"{prefix}.pre.bias"] = (h,)
        shapes[f"{prefix}.post.weight"] = (i // 2, h, 1)
        shapes[f"{prefix}.post.bias"] = (i // 2,)
        if g:
            shapes[f"{prefix}.enc.cond_layer.weight"] = (2 * h * FLOW_WN_LAYERS, g, 1)
            shapes[f"{prefix}.enc.cond_layer.bias"] = (2 * h * FLOW_WN_LAYERS,)
        for layer in range(FLOW_WN_LAYERS):
            shapes[f"{prefix}.enc.in_layers.{layer}.weight"] = (2 * h, h, FLOW_KERNEL)
            shapes[f"{prefix}.enc.in_layers.{layer}.bias"] = (2 * h,)
            skip = 2 * h if layer < FLOW_WN_LAYERS - 1 else h
            shapes[f"{prefix}.enc.res_skip_layers.{layer}.weight"] = (skip, h, 1)
            shapes[f"{prefix}.enc.res_skip_layers.{layer}.bias"] = (skip,)

    u = c.upsample_initial_channel
    shapes["dec.conv_pre.weight"] = (u, i, 7)
    shapes["dec.conv_pre.bias"] = (u,)
    if g:
        shapes["dec.cond.weight"] = (u, g, 1)
        shapes["dec.cond.bias"] = (u,)
    stages = len(c.upsample_rates)
    kernels_per_stage = len(c.resblock_kernel_sizes)
    for n, (rate, kernel) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)):
        c_in, c_out = u // 2**n, u // 2 ** (n + 1)
        shapes[f"dec.ups.{n}.weight"] = (c_in, c_out, kernel)  # ConvTranspose1d: (in, out, k)
        shapes[f"dec.ups.{n}.bias"] = (c_out,)
        if f0:
            if n + 1 < stages:
                stride = math.prod(c.upsample_rates[n + 1 :])
                shapes[f"dec.noise_convs.{n}.weight"] = (c_out, 1, 2 * stride)
            else:
                shapes[f"dec.noise_convs.{n}.weight"] = (c_out, 1, 1)
            shapes[f"dec.noise_convs.{n}.bias"] = (c_out,)
        for r, rk in enumerate(c.resblock_kernel_sizes):
            block = f"dec.resblocks.{n * kernels_per_stage + r}"
            if c.resblock == "1":
                convs = [f"convs1.{m}" for m in range(3)] + [f"convs2.{m}" for m in range(3)]
            else:
                convs = [f"convs.{m}" for m in range(2)]
            for conv in convs:
                shapes[f"{block}.{conv}.weight"] = (c_out, c_out, rk)
                shapes[f"{block}.{conv}.bias"] = (c_out,)
    last = u // 2**stages
    shapes["dec.conv_post.weight"] = (1, last, 7)
    if f0:
        shapes["dec.m_source.l_linear.weight"] = (1, 1)
        shapes["dec.m_source.l_linear.bias"] = (1,)
    return shapes


def check_config_fits_weights(config: VoiceConfig, tensor_count: int, name: str) -> None:
    """The counts the config names (layers, heads, decoder stages and blocks) are ones `expected_shapes` can
    build a table for: at least one head, and no more layers or blocks than the file has tensors (each holds
    several), so a damaged config cannot make the table as large as the number it names."""
    c = config
    counts = {
        "n_layers": c.n_layers,
        "upsample_rates": len(c.upsample_rates),
        "resblock_kernel_sizes": len(c.resblock_kernel_sizes),
        "upsample stages x resblock kernels": len(c.upsample_rates) * len(c.resblock_kernel_sizes),
    }
    too_many = next((field for field, count in counts.items() if count > tensor_count), None)
    if too_many is not None:
        raise ConfigMismatchError(
            f"{name}: the config's {too_many} ({counts[too_many]}) implies more layers than the voice's "
            f"{tensor_count} tensors; the config is damaged. Re-export the voice with RVC WebUI or Applio."
        )
    if c.n_heads < 1 or c.n_layers < 0 or any(rate < 1 for rate in c.upsample_rates):
        raise ConfigMismatchError(
            f"{name}: the config has n_heads {c.n_heads}, n_layers {c.n_layers} and upsample_rates "
            f"{c.upsample_rates}; a voice has at least one head and positive rates. The config is damaged."
        )


def check_shapes(checkpoint: VoiceCheckpoint) -> None:
    """Every tensor the config implies is present with the implied shape, or a named error."""
    state = checkpoint.state_dict
    name = checkpoint.path.name
    check_config_fits_weights(checkpoint.config, len(state), name)
    expected = expected_shapes(checkpoint.config, checkpoint.version, checkpoint.f0)

    phone = state.get("enc_p.emb_phone.weight")
    if phone is not None and phone.ndim == 2 and phone.shape[1] != FEATURE_DIMS[checkpoint.version]:
        raise ConfigMismatchError(
            f"{name}: `version` is {checkpoint.version!r} ({FEATURE_DIMS[checkpoint.version]}-dim features) but "
            f"`enc_p.emb_phone.weight` has shape {tuple(phone.shape)}. Set `version` to "
            f"{'v2' if phone.shape[1] == 768 else 'v1'}."
        )
    has_pitch = "enc_p.emb_pitch.weight" in state
    if has_pitch != checkpoint.f0:
        raise ConfigMismatchError(
            f"{name}: `f0` is {int(checkpoint.f0)} but the weights {'have' if has_pitch else 'lack'} the pitch "
            f"embedding `enc_p.emb_pitch.weight`. Set `f0` to {int(has_pitch)}."
        )

    present: dict[str, tuple[int, ...]] = {}
    for key, tensor in state.items():
        if key.startswith("enc_q."):
            continue
        split = split_weight_norm_key(key)
        if split is None:
            present[key] = tuple(tensor.shape)
        elif split[1] == "weight_v":
            present[split[0]] = tuple(tensor.shape)
    for key, shape in expected.items():
        if key not in present:
            raise MissingKeyError(
                f"{name}: the config implies `{key}` with shape {shape}, but the voice has no such tensor. "
                "The file is incomplete or was saved by an incompatible tool."
            )
        if present[key] != shape:
            raise ConfigMismatchError(
                f"{name}: `{key}` has shape {present[key]} but the config implies {shape}. "
                "The config list does not describe these weights; fix the config or re-export the voice."
            )
    for key, tensor in state.items():
        split = split_weight_norm_key(key)
        if split is not None and split[1] == "weight_g":
            v_shape = present.get(split[0])
            g_shape = tuple(tensor.shape)
            if v_shape is not None and g_shape != (v_shape[0],) + (1,) * (len(v_shape) - 1):
                raise ConfigMismatchError(
                    f"{name}: weight-norm gain `{key}` has shape {g_shape}, expected "
                    f"{(v_shape[0],) + (1,) * (len(v_shape) - 1)} for a direction of shape {v_shape}."
                )
