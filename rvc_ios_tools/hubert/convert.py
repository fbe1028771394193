"""HuBERT-base / ContentVec checkpoints (fairseq or Hugging Face) -> Swift-ready safetensors (`kind: "hubert"`).

Two source formats hold the same network (transformers' `HubertModel` computes fairseq's `HubertModel`):

- fairseq (RVC's `hubert_base.pt`, ContentVec's `checkpoint_best_legacy_500.pt`): a training dict with the
  weights under `model`, the architecture under `cfg["model"]`, and `task_state` holding a pickled
  `fairseq.data.dictionary.Dictionary` (the label set). That one global is read into an inert stand-in
  (`FairseqDictionary`); fairseq is never imported and nothing in the file runs.
- Hugging Face (Applio's embedders, RVC main's `assets/hubert_base/`): a folder with `config.json` and
  `model.safetensors` or `pytorch_model.bin`, `HubertModel` keys plus an optional `final_proj`.

`HUBERT_RULES` is the one rename table, read by `core.rules.convert_state_dict`, the manifest writer and the
tests; both spellings of each module map to one exported key:

| fairseq | Hugging Face | exported key | layout |
|---|---|---|---|
| `feature_extractor.conv_layers.i.0` | `feature_extractor.conv_layers.i.conv` | `feature_extractor.conv_i` | `OKI` |
| `feature_extractor.conv_layers.0.2` (GroupNorm) | `feature_extractor.conv_layers.0.layer_norm` | `feature_extractor.norm_0` | `C` |
| `layer_norm` | `feature_projection.layer_norm` | `feature_projection.layer_norm` | `C` |
| `post_extract_proj` | `feature_projection.projection` | `feature_projection.projection` | `OI` |
| `encoder.pos_conv.0` (weight norm, dim 2) | `encoder.pos_conv_embed.conv` | `encoder.pos_conv` (folded) | `OKI` |
| `encoder.layer_norm` | `encoder.layer_norm` | `encoder.layer_norm` | `C` |
| `encoder.layers.N.self_attn.{q,k,v,out}_proj` | `encoder.layers.N.attention.{q,k,v,out}_proj` | `encoder.layer_N.attention.{q,k,v,out}_proj` | `OI` |
| `encoder.layers.N.self_attn_layer_norm` | `encoder.layers.N.layer_norm` | `encoder.layer_N.attention_norm` | `C` |
| `encoder.layers.N.fc1` / `fc2` | `encoder.layers.N.feed_forward.intermediate_dense` / `output_dense` | `encoder.layer_N.fc1` / `fc2` | `OI` |
| `encoder.layers.N.final_layer_norm` | `encoder.layers.N.final_layer_norm` | `encoder.layer_N.final_norm` | `C` |
| `final_proj` | `final_proj` | `final_proj` (v1 features need it) | `OI` |
| `mask_emb`, `label_embs_concat` | `masked_spec_embed` | dropped (training only) | |

The positional convolution's weight norm is over dim 2 (one gain per kernel tap, `g` is (1, 1, 128));
`core.rules.fold_weight_norm` reads the dim from `g`'s shape.

The architecture (`ARCHITECTURE` for HuBERT-base; recorded as the manifest's `hubert.architecture`) comes
from the file's own config, never assumed: `cfg["model"]` (fairseq's defaults where a field is absent) or
`config.json` (transformers' `HubertConfig` defaults likewise). Every tensor it implies is checked.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.errors import (
    ConfigMismatchError,
    CorruptFileError,
    MissingKeyError,
    NotAVoiceError,
    UnknownKeyError,
    UnsupportedVoiceError,
)
from ..core.manifest import exact_fields
from ..core.pickles import load_pickle_safely, non_plain_item, read_zip_pickle, state_dict_to_numpy
from ..core.rules import (
    ConversionPlan,
    ConvertedTensor,
    DroppedTensor,
    PlannedTensor,
    Rule,
    WeightNormPair,
    plan_conversion,
    run_conversion,
)

HUBERT_RULES: tuple[Rule, ...] = (
    Rule(r"feature_extractor\.conv_layers\.(\d+)\.(?:0|conv)", "feature_extractor.conv_{0}", "conv1d"),
    # fairseq's conv block is Sequential(conv, dropout, GroupNorm, GELU); HF names the GroupNorm `layer_norm`.
    Rule(r"feature_extractor\.conv_layers\.(0)\.(?:2|layer_norm)", "feature_extractor.norm_{0}", "layer_norm"),
    Rule(r"(?:feature_projection\.)?layer_norm", "feature_projection.layer_norm", "layer_norm"),
    Rule(r"post_extract_proj|feature_projection\.projection", "feature_projection.projection", "linear"),
    Rule(r"encoder\.pos_conv\.0|encoder\.pos_conv_embed\.conv", "encoder.pos_conv", "conv1d"),
    Rule(r"encoder\.layer_norm", "encoder.layer_norm", "layer_norm"),
    Rule(r"encoder\.layers\.(\d+)\.(?:self_attn|attention)\.(q|k|v|out)_proj", "encoder.layer_{0}.attention.{1}_proj",
         "linear"),
    Rule(r"encoder\.layers\.(\d+)\.(?:self_attn_layer_norm|layer_norm)", "encoder.layer_{0}.attention_norm", "layer_norm"),
    Rule(r"encoder\.layers\.(\d+)\.(?:fc1|feed_forward\.intermediate_dense)", "encoder.layer_{0}.fc1", "linear"),
    Rule(r"encoder\.layers\.(\d+)\.(?:fc2|feed_forward\.output_dense)", "encoder.layer_{0}.fc2", "linear"),
    Rule(r"encoder\.layers\.(\d+)\.final_layer_norm", "encoder.layer_{0}.final_norm", "layer_norm"),
    Rule(r"final_proj", "final_proj", "linear"),
    Rule(r"mask_emb|masked_spec_embed", None, "parameter",
         why="training only: the embedding that replaces masked frames in masked-prediction pretraining"),
    Rule(r"label_embs_concat", None, "parameter",
         why="training only: the label embeddings of the pretraining targets"),
)

# HuBERT-base as RVC's hubert_base.pt and ContentVec have it (fairseq `HubertConfig` with
# hubert_base_librispeech.yaml; transformers `HubertConfig()` defaults).
ARCHITECTURE: dict[str, Any] = {
    "conv_layers": [[512, 10, 5]] + [[512, 3, 2]] * 4 + [[512, 2, 2]] * 2,  # (channels, kernel, stride)
    "hidden_size": 768,
    "num_layers": 12,
    "num_heads": 12,
    "intermediate_size": 3072,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "layer_norm_eps": 1e-5,
    "final_proj_dim": 256,  # None: the file has no final_proj (v2 features only)
    # RVC v1 voices read final_proj(layer 9) (fairseq `output_layer=9`); v2 voices read layer 12.
    "v1_layer": 9,
}

# The same structure at toy sizes, for the committed fixtures and fast tests: every layer kind, the same conv
# strides (so the same frame count), grouped positional convolution with an even kernel, a final_proj.
TINY_ARCHITECTURE: dict[str, Any] = {
    **ARCHITECTURE,
    "conv_layers": [[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
    "hidden_size": 48,
    "num_layers": 3,
    "num_heads": 4,
    "intermediate_size": 64,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "final_proj_dim": 24,
    "v1_layer": 2,
}
DEMO_ARCHITECTURES = {"full": ARCHITECTURE, "tiny": TINY_ARCHITECTURE}

# What both formats may say and this port computes; anything else is another network.
SAMPLE_RATE = 16000

FAIRSEQ_DICTIONARY_GLOBAL = "fairseq.data.dictionary.Dictionary"


class FairseqDictionary:
    """Inert stand-in for fairseq's label `Dictionary` in `task_state`: unpickling only fills `__dict__`.

    No methods run (no `__setstate__`, and construction ignores whatever arguments a pickle passes).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "FairseqDictionary":
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class HubertCheckpoint:
    """A loaded content encoder: tensors as stored (numpy), the architecture its config gives, where from."""

    flavor: str  # "fairseq" or "huggingface"
    state_dict: dict[str, np.ndarray]
    architecture: dict[str, Any]
    weights_file: Path  # the file holding the tensors (checksummed into the manifest)
    dropped_entries: tuple[str, ...] = ()  # top-level entries of a fairseq dict that are not weights

    @property
    def parameter_count(self) -> int:
        return int(sum(array.size for array in self.state_dict.values()))

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(sorted({str(array.dtype) for array in self.state_dict.values()}))


def check_architecture(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """A complete architecture block (every field of `ARCHITECTURE`) this port can run, as a plain dict."""
    a = exact_fields(architecture, ARCHITECTURE, "HuBERT architecture block")
    conv_layers = a["conv_layers"]
    if not (isinstance(conv_layers, list) and conv_layers
            and all(isinstance(c, list) and len(c) == 3 and all(_positive_int(v) for v in c) for c in conv_layers)):
        raise ConfigMismatchError(f"HuBERT conv_layers must be a list of [channels, kernel, stride], not {conv_layers!r}.")
    for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "conv_pos", "conv_pos_groups", "v1_layer"):
        if not _positive_int(a[name]):
            raise ConfigMismatchError(f"HuBERT architecture field {name} must be a whole number >= 1, not {a[name]!r}.")
    if a["hidden_size"] % a["num_heads"] or a["hidden_size"] % a["conv_pos_groups"]:
        raise ConfigMismatchError(
            f"HuBERT hidden_size {a['hidden_size']} is not divisible by num_heads {a['num_heads']} and "
            f"conv_pos_groups {a['conv_pos_groups']}; the config does not describe a HuBERT."
        )
    if a["v1_layer"] > a["num_layers"]:
        raise ConfigMismatchError(f"HuBERT v1_layer {a['v1_layer']} is past the last layer ({a['num_layers']}).")
    if a["final_proj_dim"] is not None and not _positive_int(a["final_proj_dim"]):
        raise ConfigMismatchError(f"HuBERT final_proj_dim must be None or a whole number >= 1, not {a['final_proj_dim']!r}.")
    if not (isinstance(a["layer_norm_eps"], float) and 0 < a["layer_norm_eps"] < 1):
        raise ConfigMismatchError(f"HuBERT layer_norm_eps must be a small positive number, not {a['layer_norm_eps']!r}.")
    return a


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def default_v1_layer(num_layers: int) -> int:
    """RVC's layer 9 of HuBERT-base's 12; smaller test networks take their second-to-last layer."""
    if not _positive_int(num_layers):
        return 1  # `check_architecture` then refuses num_layers itself, by name
    return 9 if num_layers >= 9 else max(1, num_layers - 1)


def frame_count(samples: int, architecture: Mapping[str, Any] = ARCHITECTURE) -> int:
    """Frames the unpadded conv front end makes of `samples`: (N - 400) // 320 + 1 for HuBERT-base, 0 below 400."""
    length = samples
    for _, kernel, stride in architecture["conv_layers"]:
        length = (length - kernel) // stride + 1 if length >= kernel else 0
    return max(length, 0)


def hubert_export_shapes(architecture: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every exported tensor of `architecture`, with its (channels-last) shape."""
    a = architecture
    shapes: dict[str, tuple[int, ...]] = {}
    channels = 1
    for i, (out_channels, kernel, _) in enumerate(a["conv_layers"]):
        shapes[f"feature_extractor.conv_{i}.weight"] = (out_channels, kernel, channels)
        channels = out_channels
    first = a["conv_layers"][0][0]
    hidden, ffn = a["hidden_size"], a["intermediate_size"]

    def norm(prefix: str, size: int) -> None:
        shapes[f"{prefix}.weight"] = (size,)
        shapes[f"{prefix}.bias"] = (size,)

    def linear(prefix: str, out_size: int, in_size: int) -> None:
        shapes[f"{prefix}.weight"] = (out_size, in_size)
        shapes[f"{prefix}.bias"] = (out_size,)

    norm("feature_extractor.norm_0", first)
    norm("feature_projection.layer_norm", channels)
    linear("feature_projection.projection", hidden, channels)
    shapes["encoder.pos_conv.weight"] = (hidden, a["conv_pos"], hidden // a["conv_pos_groups"])
    shapes["encoder.pos_conv.bias"] = (hidden,)
    norm("encoder.layer_norm", hidden)
    for n in range(a["num_layers"]):
        for proj in ("q", "k", "v", "out"):
            linear(f"encoder.layer_{n}.attention.{proj}_proj", hidden, hidden)
        norm(f"encoder.layer_{n}.attention_norm", hidden)
        linear(f"encoder.layer_{n}.fc1", ffn, hidden)
        linear(f"encoder.layer_{n}.fc2", hidden, ffn)
        norm(f"encoder.layer_{n}.final_norm", hidden)
    if a["final_proj_dim"] is not None:
        linear("final_proj", a["final_proj_dim"], hidden)
    return shapes


# --- architecture from each format's config ------------------------------------------------------------

# fairseq `HubertConfig` defaults (fairseq v0.12.2 hubert.py), for fields a checkpoint's cfg leaves out.
FAIRSEQ_DEFAULTS: dict[str, Any] = {
    "extractor_mode": "default",
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
    "conv_bias": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "layer_norm_first": False,
    "final_dim": 0,
}

# transformers `HubertConfig` defaults, for fields a config.json leaves out.
HF_DEFAULTS: dict[str, Any] = {
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "layer_norm_eps": 1e-5,
    "classifier_proj_size": 256,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "hidden_act": "gelu",
    "feat_proj_layer_norm": True,
    "do_stable_layer_norm": False,
    "conv_bias": False,
    "conv_pos_batch_norm": False,
}

# (field, the value this port computes, what the other value would mean)
FAIRSEQ_REQUIRED = (
    ("extractor_mode", "default", "a layer-norm front end (HuBERT-large style)"),
    ("layer_norm_first", False, "pre-LN transformer layers (HuBERT-large style)"),
    ("conv_bias", False, "biased front-end convolutions"),
    ("activation_fn", "gelu", "another activation"),
)
HF_REQUIRED = (
    ("feat_extract_norm", "group", "a layer-norm front end (HuBERT-large style)"),
    ("do_stable_layer_norm", False, "pre-LN transformer layers (HuBERT-large style)"),
    ("conv_bias", False, "biased front-end convolutions"),
    ("feat_proj_layer_norm", True, "no LayerNorm before the projection"),
    ("feat_extract_activation", "gelu", "another front-end activation"),
    ("hidden_act", "gelu", "another activation"),
    ("conv_pos_batch_norm", False, "a batch-norm positional convolution"),
)


def _require(config: Mapping[str, Any], required, source_name: str) -> None:
    for field, expected, meaning in required:
        if config.get(field) != expected:
            raise UnsupportedVoiceError(
                f"{source_name}: {field} is {config.get(field)!r}, which means {meaning}. Only HuBERT-base / "
                f"ContentVec content encoders ({field} = {expected!r}) are supported."
            )


# HuBERT has 7 front-end convolutions; a config string describing more than this many is not a content encoder.
MAX_CONV_LAYERS = 64


def parse_conv_feature_layers(text: Any, source_name: str) -> list[list[int]]:
    """fairseq's `conv_feature_layers` string, e.g. "[(512,10,5)] + [(512,3,2)] * 4", read without `eval`:
    only lists of integer triples joined by `+` and repeated by `*` are accepted."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.List):
            return [value(item) for item in node.elts]
        if isinstance(node, ast.Tuple):
            return [value(item) for item in node.elts]
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = value(node.left), value(node.right)
            if isinstance(left, list) and isinstance(right, list) and len(left) + len(right) <= MAX_CONV_LAYERS:
                return left + right
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            left, right = value(node.left), value(node.right)
            # Bounded as it is built: `[(1,1,1)] * 64 * 64 * 64 * 64` is 30 characters and 16 million layers.
            if isinstance(left, list) and isinstance(right, int) and 0 <= len(left) * right <= MAX_CONV_LAYERS:
                return left * right
        raise ValueError

    try:
        layers = value(ast.parse(str(text), mode="eval"))
        if not (isinstance(layers, list) and all(isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) for v in c)
                                                 for c in layers)):
            raise ValueError
    except (SyntaxError, ValueError, RecursionError):
        raise ConfigMismatchError(
            f"{source_name}: conv_feature_layers {text!r} is not a list of (channels, kernel, stride) triples."
        ) from None
    return [list(c) for c in layers]


def architecture_from_fairseq_cfg(model_cfg: Mapping[str, Any], state_dict: Mapping[str, np.ndarray],
                                  source_name: str) -> dict[str, Any]:
    problem = non_plain_item(dict(model_cfg), "cfg.model")
    if problem:
        raise CorruptFileError(f"{source_name}: {problem}, not plain config data; fairseq writes plain values.")
    cfg = {**FAIRSEQ_DEFAULTS, **{k: v for k, v in model_cfg.items() if v is not None}}
    _require(cfg, FAIRSEQ_REQUIRED, source_name)
    if cfg.get("conv_pos_batch_norm"):
        raise UnsupportedVoiceError(f"{source_name}: a batch-norm positional convolution is not HuBERT-base.")
    hidden = cfg["encoder_embed_dim"]
    final_dim = cfg["final_dim"] if _positive_int(cfg["final_dim"]) else hidden
    has_final_proj = "final_proj.weight" in state_dict
    return check_architecture({
        "conv_layers": parse_conv_feature_layers(cfg["conv_feature_layers"], source_name),
        "hidden_size": hidden,
        "num_layers": cfg["encoder_layers"],
        "num_heads": cfg["encoder_attention_heads"],
        "intermediate_size": cfg["encoder_ffn_embed_dim"],
        "conv_pos": cfg["conv_pos"],
        "conv_pos_groups": cfg["conv_pos_groups"],
        "layer_norm_eps": 1e-5,  # fairseq's LayerNorm and nn.GroupNorm default; not configurable there
        "final_proj_dim": final_dim if has_final_proj else None,
        "v1_layer": default_v1_layer(cfg["encoder_layers"]),
    })


def architecture_from_hf_config(config: Mapping[str, Any], state_dict: Mapping[str, np.ndarray],
                                source_name: str) -> dict[str, Any]:
    cfg = {**HF_DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    _require(cfg, HF_REQUIRED, source_name)
    dims, kernels, strides = (cfg[name] for name in ("conv_dim", "conv_kernel", "conv_stride"))
    if not all(isinstance(values, list) for values in (dims, kernels, strides)):
        raise ConfigMismatchError(f"{source_name}: conv_dim, conv_kernel and conv_stride must be lists of whole numbers.")
    if not len(dims) == len(kernels) == len(strides):
        raise ConfigMismatchError(
            f"{source_name}: conv_dim, conv_kernel and conv_stride have {len(dims)}, {len(kernels)} and "
            f"{len(strides)} entries; they must have one per convolution."
        )
    has_final_proj = "final_proj.weight" in state_dict
    return check_architecture({
        "conv_layers": [[d, k, s] for d, k, s in zip(dims, kernels, strides)],  # checked below
        "hidden_size": cfg["hidden_size"],
        "num_layers": cfg["num_hidden_layers"],
        "num_heads": cfg["num_attention_heads"],
        "intermediate_size": cfg["intermediate_size"],
        "conv_pos": cfg["num_conv_pos_embeddings"],
        "conv_pos_groups": cfg["num_conv_pos_embedding_groups"],
        "layer_norm_eps": cfg["layer_norm_eps"],
        "final_proj_dim": cfg["classifier_proj_size"] if has_final_proj else None,
        "v1_layer": default_v1_layer(cfg["num_hidden_layers"]),
    })


# --- loading -------------------------------------------------------------------------------------------

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_FILE_NAMES = ("config.json",) + HF_WEIGHT_FILES


def load_fairseq_hubert(path: Path) -> HubertCheckpoint:
    """A fairseq training dict (hubert_base.pt): `model` and `cfg["model"]` read, every other entry dropped."""
    path = Path(path)
    payload = load_pickle_safely(path, stand_ins=[(FairseqDictionary, FAIRSEQ_DICTIONARY_GLOBAL)])
    if not isinstance(payload, dict) or "model" not in payload:
        if isinstance(payload, dict) and "weight" in payload and "config" in payload:
            raise NotAVoiceError(f"{path.name} is an RVC voice, not a content encoder. Export it with `rvc-ios export --model-name`.")
        raise CorruptFileError(
            f"{path.name} is not a fairseq HuBERT checkpoint (a dict with `model` and `cfg`, like RVC's "
            "hubert_base.pt). For a Hugging Face model pass its folder (config.json + model.safetensors)."
        )
    state = payload["model"]
    if not isinstance(state, Mapping):
        raise CorruptFileError(f"{path.name}: `model` holds a {type(state).__name__}, not a state dict of tensors.")
    cfg = payload.get("cfg")
    if cfg is None and payload.get("args") is not None:
        raise UnsupportedVoiceError(
            f"{path.name} keeps its config as pre-2021 fairseq `args`; load it in fairseq once and save it again, "
            "or use the Hugging Face export of the same model."
        )
    model_cfg = cfg.get("model") if isinstance(cfg, Mapping) else None
    if not isinstance(model_cfg, Mapping):
        raise CorruptFileError(f"{path.name}: `cfg` has no `model` section, so the architecture is unknown.")
    arrays = state_dict_to_numpy(state, path.name)
    architecture = architecture_from_fairseq_cfg(model_cfg, arrays, path.name)
    dropped = tuple(sorted(str(key) for key in payload if key not in ("model", "cfg")))
    return HubertCheckpoint("fairseq", arrays, architecture, path, dropped)


def load_hf_hubert(folder: Path) -> HubertCheckpoint:
    """A Hugging Face folder: `config.json` plus `model.safetensors` (preferred) or `pytorch_model.bin`."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CorruptFileError(
            f"{folder} has no config.json; a Hugging Face content encoder is a folder with config.json and "
            "model.safetensors or pytorch_model.bin. Download the model's config.json into it."
        )
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorruptFileError(f"{config_path} is not readable JSON ({exc}); download it again.") from None
    if not isinstance(config, dict):
        raise CorruptFileError(f"{config_path} holds a {type(config).__name__}, not a config object; download it again.")
    model_type = config.get("model_type", "hubert")
    if model_type != "hubert":
        raise UnsupportedVoiceError(f"{config_path}: model_type is {model_type!r}; only HuBERT content encoders are supported.")
    weights_path = next((folder / name for name in HF_WEIGHT_FILES if (folder / name).is_file()), None)
    if weights_path is None:
        raise CorruptFileError(f"{folder} has config.json but neither {' nor '.join(HF_WEIGHT_FILES)}; download the "
                               "model's weights file into it.")
    if weights_path.suffix == ".safetensors":
        import safetensors.torch

        try:
            state = safetensors.torch.load_file(str(weights_path))
        except Exception as exc:  # safetensors reports damage as several exception types
            raise CorruptFileError(f"{weights_path} is damaged or not a safetensors file ({exc}); download it "
                                   "again.") from None
    else:
        state = load_pickle_safely(weights_path)
        if not isinstance(state, Mapping):
            raise CorruptFileError(f"{weights_path} holds a {type(state).__name__}, not a state dict of tensors; "
                                   "download it again.")
    arrays = state_dict_to_numpy(state, weights_path.name)
    architecture = architecture_from_hf_config(config, arrays, config_path.name)
    return HubertCheckpoint("huggingface", arrays, architecture, weights_path)


def load_hubert(path: Path) -> HubertCheckpoint:
    """A content encoder from a fairseq .pt file, a Hugging Face folder, or a file inside such a folder."""
    path = Path(path)
    if path.is_dir():
        return load_hf_hubert(path)
    if path.name in HF_FILE_NAMES:
        return load_hf_hubert(path.parent)
    return load_fairseq_hubert(path)


def is_hubert_source(path: Path) -> bool:
    """Whether `path` looks like a content encoder, judged without unpickling anything: a folder with a
    config.json, a file of such a folder, or a torch zip whose pickle names fairseq HuBERT's modules."""
    path = Path(path)
    if path.is_dir():
        return (path / "config.json").is_file()
    if path.name in HF_FILE_NAMES:
        return True
    try:
        data = read_zip_pickle(path)
    except CorruptFileError:  # then it is not a content encoder either; the voice loader says what it is
        return False
    return b"post_extract_proj" in data and b"feature_extractor.conv_layers" in data


# --- conversion ----------------------------------------------------------------------------------------


def plan_hubert_conversion(
    state_dict: Mapping[str, np.ndarray], architecture: Mapping[str, Any], source_name: str = "HuBERT state dict",
) -> ConversionPlan:
    """The conversion plan, after checking that every tensor the architecture implies is there with its shape,
    and nothing else (beyond the named drops): a key no rule knows is an error, never a silent drop."""
    architecture = check_architecture(architecture)
    # Each encoder layer holds 16 tensors: a config naming more layers than the file has tensors does not
    # describe it, and would make the table of expected shapes as long as the number it names.
    if architecture["num_layers"] > len(state_dict):
        raise ConfigMismatchError(
            f"{source_name}: the config names {architecture['num_layers']} encoder layers but the file holds only "
            f"{len(state_dict)} tensors. Use the config and weights of one model (download both again)."
        )
    plan = plan_conversion(dict(state_dict), HUBERT_RULES, source_name=source_name, network="HuBERT content encoder")
    expected = hubert_export_shapes(architecture)
    planned = {item.key: item for item in plan.tensors}
    same_model = "Use the config and weights of one model (download both again)."
    for key, item in planned.items():
        if key not in expected:
            raise UnknownKeyError(
                f"{source_name}: `{item.source_key}` (exported as `{key}`) is not a tensor of a "
                f"{architecture['num_layers']}-layer HuBERT of this config. The weights and config.json/cfg "
                f"disagree. {same_model}"
            )
        if item.shape != expected[key]:
            raise ConfigMismatchError(
                f"{source_name}: `{item.source_key}` has shape {plan_source_shape(plan, item)}, but the config "
                f"implies {expected[key]} (channels-last) for `{key}`. The weights and the config disagree. {same_model}"
            )
    for key, shape in expected.items():
        if key not in planned:
            raise MissingKeyError(
                f"{source_name}: the tensor exported as `{key}` (shape {shape}) is missing. The file is incomplete "
                "or from another network: download the content encoder again."
            )
    return plan


def convert_hubert_state_dict(
    state_dict: Mapping[str, np.ndarray], architecture: Mapping[str, Any], dtype: str = "float32",
    source_name: str = "HuBERT state dict",
) -> tuple[dict[str, ConvertedTensor], list[DroppedTensor]]:
    """Stored tensors (either format's names) -> (exported key -> channels-last tensor, tensors dropped by name),
    checked by `plan_hubert_conversion`."""
    plan = plan_hubert_conversion(state_dict, architecture, source_name)
    return run_conversion(plan, dtype), list(plan.dropped)


def plan_source_shape(plan: ConversionPlan, item: PlannedTensor) -> tuple[int, ...]:
    """The stored shape of a planned tensor (a weight-norm pair's: its direction's)."""
    value = plan.merged[item.source_key]
    return tuple(np.shape(value.v if isinstance(value, WeightNormPair) else value))


def convert_hubert(checkpoint: HubertCheckpoint, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Exported key -> array, for the MLX reference (`reference.build_hubert`) and the tests."""
    converted, _ = convert_hubert_state_dict(checkpoint.state_dict, checkpoint.architecture, dtype,
                                             str(checkpoint.weights_file))
    return {key: tensor.array for key, tensor in converted.items()}
