"""Deterministic stand-ins for hubert_base.pt / ContentVec: every tensor drawn from a seed, written in the
Hugging Face folder format and in the fairseq training-dict format.

No pretrained encoder can be fetched here. A freshly initialised transformers model would leave every norm at
weight 1 / bias 0 and the positional convolution's gain at `g = ||v||` (so folding it is a no-op and a port that
ignores `g` passes); here every parameter is random and `g` is not `||v||`. Attention queries and keys are
scaled up and values down so that frames still differ at the last layer (with default scales a 12-layer
random stack makes every frame nearly the same vector, and a frame dropped at the wrong end barely shows).
"""

from __future__ import annotations

import io
import json
import math
import sys
import types
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.files import write_bytes_atomic
from .convert import ARCHITECTURE, DEMO_ARCHITECTURES, check_architecture

QUERY_KEY_GAIN = 2.0
VALUE_GAIN = 0.35
# The label set of ContentVec's 500-class legacy model: 500 units plus fairseq's 4 special symbols.
DICTIONARY_SIZE = 504


def demo_architecture(preset: str) -> dict[str, Any]:
    try:
        return check_architecture(DEMO_ARCHITECTURES[preset])
    except KeyError:
        raise ValueError(f"Unknown HuBERT demo preset {preset!r}; use one of {', '.join(DEMO_ARCHITECTURES)}.") from None


def random_hubert_state_dict(seed: int = 0, architecture: Mapping[str, Any] = ARCHITECTURE):
    """transformers `HubertModel` (+ `final_proj`) key -> float32 torch tensor, the same for the same seed; the
    positional convolution as `parametrizations.weight.original0/1` (transformers 5's spelling)."""
    import torch

    a = check_architecture(architecture)
    generator = torch.Generator().manual_seed(seed)

    def normal(shape, std: float, mean: float = 0.0):
        return mean + std * torch.randn(shape, generator=generator)

    def uniform(shape, low: float, high: float):
        return low + (high - low) * torch.rand(shape, generator=generator)

    state: dict[str, Any] = {}

    def norm(prefix: str, size: int) -> None:
        state[f"{prefix}.weight"] = normal((size,), 0.2, 1.0)
        state[f"{prefix}.bias"] = normal((size,), 0.2)

    def linear(prefix: str, out_size: int, in_size: int, gain: float = 1.0) -> None:
        state[f"{prefix}.weight"] = normal((out_size, in_size), gain / math.sqrt(in_size))
        state[f"{prefix}.bias"] = normal((out_size,), 0.05)

    channels = 1
    for i, (out_channels, kernel, _) in enumerate(a["conv_layers"]):
        # sqrt(2 / fan_in): GELU passes about half the power, so activations keep their scale layer to layer.
        state[f"feature_extractor.conv_layers.{i}.conv.weight"] = normal((out_channels, channels, kernel),
                                                                       math.sqrt(2.0 / (channels * kernel)))
        if i == 0:
            norm("feature_extractor.conv_layers.0.layer_norm", out_channels)
        channels = out_channels
    norm("feature_projection.layer_norm", channels)
    linear("feature_projection.projection", a["hidden_size"], channels)
    hidden, kernel, width = a["hidden_size"], a["conv_pos"], a["hidden_size"] // a["conv_pos_groups"]
    direction = normal((hidden, width, kernel), 1.0)
    # weight_norm(dim=2): one gain per kernel tap, g = ||v|| over axes (0, 1) at init; perturbed so it matters,
    # and sized so the folded weight's elements have fan-in scale 1 / sqrt(width * kernel).
    tap_norm = direction.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
    gain = tap_norm * uniform(tap_norm.shape, 0.5, 1.5) / math.sqrt(width * kernel)
    state["encoder.pos_conv_embed.conv.parametrizations.weight.original0"] = gain
    state["encoder.pos_conv_embed.conv.parametrizations.weight.original1"] = direction
    state["encoder.pos_conv_embed.conv.bias"] = normal((hidden,), 0.05)
    norm("encoder.layer_norm", hidden)
    for n in range(a["num_layers"]):
        prefix = f"encoder.layers.{n}"
        linear(f"{prefix}.attention.q_proj", hidden, hidden, QUERY_KEY_GAIN)
        linear(f"{prefix}.attention.k_proj", hidden, hidden, QUERY_KEY_GAIN)
        linear(f"{prefix}.attention.v_proj", hidden, hidden, VALUE_GAIN)
        linear(f"{prefix}.attention.out_proj", hidden, hidden)
        norm(f"{prefix}.layer_norm", hidden)
        linear(f"{prefix}.feed_forward.intermediate_dense", a["intermediate_size"], hidden)
        linear(f"{prefix}.feed_forward.output_dense", hidden, a["intermediate_size"])
        norm(f"{prefix}.final_layer_norm", hidden)
    if a["final_proj_dim"] is not None:
        linear("final_proj", a["final_proj_dim"], hidden)
    # SpecAugment's mask embedding (fairseq `mask_emb`): in every file, used only in training.
    state["masked_spec_embed"] = uniform((hidden,), 0.0, 1.0)
    return state


def hf_config(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """config.json of a `HubertModelWithFinalProj` of `architecture`, as transformers writes it (the fields
    the loaders read; transformers fills the rest with its defaults)."""
    a = check_architecture(architecture)
    return {
        "architectures": ["HubertModelWithFinalProj"],
        "model_type": "hubert",
        "conv_dim": [c for c, _, _ in a["conv_layers"]],
        "conv_kernel": [k for _, k, _ in a["conv_layers"]],
        "conv_stride": [s for _, _, s in a["conv_layers"]],
        "conv_bias": False,
        "feat_extract_norm": "group",
        "feat_extract_activation": "gelu",
        "feat_proj_layer_norm": True,
        "do_stable_layer_norm": False,
        "hidden_act": "gelu",
        "hidden_size": a["hidden_size"],
        "num_hidden_layers": a["num_layers"],
        "num_attention_heads": a["num_heads"],
        "intermediate_size": a["intermediate_size"],
        "num_conv_pos_embeddings": a["conv_pos"],
        "num_conv_pos_embedding_groups": a["conv_pos_groups"],
        "layer_norm_eps": a["layer_norm_eps"],
        "classifier_proj_size": a["final_proj_dim"] or 256,
        # Training-time settings of ContentVec's config; inert in eval mode.
        "layerdrop": 0.1,
        "mask_time_prob": 0.05,
        "apply_spec_augment": True,
    }


LEGACY_WEIGHT_NORM = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}


def with_legacy_weight_norm(state: Mapping[str, Any]) -> dict[str, Any]:
    """`...parametrizations.weight.original0/1` -> `...weight_g/weight_v`, as transformers 4.27 wrote ContentVec."""
    renamed = {}
    for key, value in state.items():
        for new, old in LEGACY_WEIGHT_NORM.items():
            if key.endswith(new):
                key = key[: -len(new)] + old
        renamed[key] = value
    return renamed


def write_demo_hf_folder(
    folder: Path, seed: int = 0, preset: str = "full", *, weights_format: str = "safetensors",
    legacy_weight_norm: bool = False, final_proj: bool = True,
) -> Path:
    """A Hugging Face content-encoder folder: config.json + model.safetensors (or pytorch_model.bin)."""
    import torch

    architecture = demo_architecture(preset)
    if not final_proj:
        architecture = {**architecture, "final_proj_dim": None}
    state = random_hubert_state_dict(seed, architecture)
    if legacy_weight_norm:
        state = with_legacy_weight_norm(state)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / "config.json", (json.dumps(hf_config(architecture), indent=2) + "\n").encode())
    if weights_format == "safetensors":
        import safetensors.torch

        write_bytes_atomic(folder / "model.safetensors",
                           safetensors.torch.save({k: v.contiguous() for k, v in state.items()}, metadata={"format": "pt"}))
    elif weights_format == "bin":
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_bytes_atomic(folder / "pytorch_model.bin", buffer.getvalue())
    else:
        raise ValueError(f"weights_format must be safetensors or bin, not {weights_format!r}")
    return folder


# transformers name -> fairseq name, per module (the inverse of `convert.HUBERT_RULES`' two spellings).
FAIRSEQ_NAMES = (
    (r"masked_spec_embed$", "mask_emb"),
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"feature_extractor\.conv_layers\.0\.layer_norm\.", "feature_extractor.conv_layers.0.2."),
    (r"feature_projection\.layer_norm\.", "layer_norm."),
    (r"feature_projection\.projection\.", "post_extract_proj."),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv.0.weight_g"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv.0.weight_v"),
    (r"encoder\.pos_conv_embed\.conv\.", "encoder.pos_conv.0."),
    (r"encoder\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
    (r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
)


def to_fairseq_names(state: Mapping[str, Any]) -> dict[str, Any]:
    import re

    renamed = {}
    for key, value in state.items():
        for pattern, replacement in FAIRSEQ_NAMES:
            key = re.sub("^" + pattern, replacement, key)
        renamed[key] = value
    return renamed


def fairseq_model_cfg(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """`cfg["model"]` as fairseq's trainer writes it (a plain dict), for hubert_base_librispeech.yaml's model."""
    a = check_architecture(architecture)
    layers = " + ".join(f"[({c},{k},{s})]" for c, k, s in a["conv_layers"])
    return {
        "_name": "hubert",
        "label_rate": 50.0,
        "extractor_mode": "default",
        "encoder_layers": a["num_layers"],
        "encoder_embed_dim": a["hidden_size"],
        "encoder_ffn_embed_dim": a["intermediate_size"],
        "encoder_attention_heads": a["num_heads"],
        "activation_fn": "gelu",
        "layer_type": "transformer",
        "dropout": 0.1,
        "final_dim": a["final_proj_dim"] or 0,
        "untie_final_proj": True,
        "layer_norm_first": False,
        "conv_feature_layers": layers,
        "conv_bias": False,
        "feature_grad_mult": 0.1,
        "conv_pos": a["conv_pos"],
        "conv_pos_groups": a["conv_pos_groups"],
        "mask_prob": 0.8,
    }


def write_demo_fairseq(path: Path, seed: int = 0, preset: str = "full", dtype: str = "float32") -> Path:
    """A fairseq training dict like RVC's hubert_base.pt: `model` (fairseq names, weight_g/weight_v, the
    training-only `mask_emb` and `label_embs_concat`), a plain-dict `cfg`, and `task_state` holding a pickled
    `fairseq.data.dictionary.Dictionary` (made from a stand-in module, so fairseq is not needed)."""
    import torch

    architecture = demo_architecture(preset)
    torch_dtype = {"float32": torch.float32, "float16": torch.float16}[dtype]
    state = to_fairseq_names(random_hubert_state_dict(seed, architecture))
    generator = torch.Generator().manual_seed(seed + 1)
    if architecture["final_proj_dim"] is not None:
        state["label_embs_concat"] = torch.randn((DICTIONARY_SIZE, architecture["final_proj_dim"]), generator=generator)
    model = {key: tensor.to(torch_dtype) for key, tensor in sorted(state.items())}
    payload = {
        "args": None,
        "cfg": {
            "_name": None,
            "common": {"fp16": dtype == "float16", "seed": 1337},
            "model": fairseq_model_cfg(architecture),
            "task": {"_name": "hubert_pretraining", "normalize": False, "sample_rate": 16000, "labels": ["km"]},
        },
        "model": model,
        "criterion": None,
        "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": 4.2}, "num_updates": 400000}],
        "task_state": {"dictionaries": []},  # filled below, where the pickled class name exists
        "extra_state": {"metrics": {}, "previous_training_time": 1.0},
    }
    buffer = io.BytesIO()
    with _fairseq_dictionary_module() as dictionary_class:
        payload["task_state"]["dictionaries"] = [_fill_dictionary(dictionary_class())]
        torch.save(payload, buffer)
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)


def _fill_dictionary(dictionary: Any) -> Any:
    symbols = ["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(DICTIONARY_SIZE - 4)]
    dictionary.bos_word, dictionary.unk_word, dictionary.pad_word, dictionary.eos_word = "<s>", "<unk>", "<pad>", "</s>"
    dictionary.symbols = symbols
    dictionary.count = [1] * len(symbols)
    dictionary.indices = {symbol: i for i, symbol in enumerate(symbols)}
    dictionary.bos_index, dictionary.pad_index, dictionary.eos_index, dictionary.unk_index = 0, 1, 2, 3
    dictionary.nspecial = 4
    return dictionary


class _fairseq_dictionary_module:
    """Registers `fairseq.data.dictionary.Dictionary` (a plain class) in `sys.modules` while a file is saved,
    so pickle records exactly the global fairseq's own files hold; removed again afterwards."""

    NAMES = ("fairseq", "fairseq.data", "fairseq.data.dictionary")

    def __enter__(self) -> type:
        if any(name in sys.modules for name in self.NAMES):
            raise RuntimeError("a `fairseq` module is already imported; the stand-in would shadow it")
        modules = {name: types.ModuleType(name) for name in self.NAMES}
        Dictionary = type("Dictionary", (), {"__module__": "fairseq.data.dictionary"})
        modules["fairseq.data.dictionary"].Dictionary = Dictionary
        modules["fairseq"].data = modules["fairseq.data"]
        modules["fairseq.data"].dictionary = modules["fairseq.data.dictionary"]
        sys.modules.update(modules)
        return Dictionary

    def __exit__(self, *exc: Any) -> None:
        for name in self.NAMES:
            sys.modules.pop(name, None)


def demo_speech_like(n_samples: int, seed: int = 0, sample_rate: int = 16000) -> np.ndarray:
    """A float32 test signal when no speech synthesiser is around: a gliding harmonic tone with a formant-like
    loudness pattern and a noise floor (raw amplitude about 0.3, as 16-bit speech read as floats)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sample_rate
    f0 = 140.0 * (1.0 + 0.2 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    harmonics = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 12))
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 2 * np.pi)) ** 2
    noise = 0.02 * rng.standard_normal(n_samples)
    return (0.15 * syllables * harmonics + noise).astype(np.float32)


# A read passage for synthesised test speech (espeak-ng): varied phones, pauses at the commas and stops.
SPEECH_TEXT = (
    "The content encoder turns speech into features, fifty frames every second. Each frame hears four hundred "
    "samples, and the next one starts three hundred and twenty samples later. A careful port keeps every layer "
    "in order: the convolutions, the group norm over time, the projection, the positional convolution, and twelve "
    "transformer layers. Quick brown foxes jump over lazy dogs, while seven violins play a quiet melody. "
    "Would you like some tea, or perhaps a glass of cold water?"
)


class SpeechSynthesisError(RuntimeError):
    """espeak-ng or sox is missing or failed (the set-up command installs both)."""


def synthesized_speech(n_samples: int, text: str = SPEECH_TEXT, voice: str = "en-us") -> np.ndarray:
    """`n_samples` of real (synthetic) speech at 16 kHz, float32 in [-1, 1): espeak-ng reads `text` (again and
    again, with a pause between, until long enough), sox resamples it to 16 kHz 16-bit mono."""
    import shutil
    import subprocess
    import tempfile

    from ..core.wav import read_wav_16k_mono

    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise SpeechSynthesisError(
            f"{' and '.join(missing)} not found: install them (`apt-get install -y espeak-ng sox`, as "
            "scripts/bootstrap.sh does) to synthesise test speech."
        )
    with tempfile.TemporaryDirectory() as tmp:
        raw, resampled = Path(tmp) / "speech.wav", Path(tmp) / "speech16k.wav"
        try:
            subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(raw), text], check=True,
                           capture_output=True)
            # -D: sox dithers by default when it reduces the bit depth, with a fresh random draw each run;
            # test speech must be the same every time.
            subprocess.run(["sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(resampled)], check=True,
                           capture_output=True)
        except subprocess.CalledProcessError as exc:
            raise SpeechSynthesisError(f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None
        speech = read_wav_16k_mono(resampled)[0]
    pause = np.zeros(4000, dtype=np.float32)
    pieces, total = [], 0
    while total < n_samples:
        pieces += [speech, pause]
        total += speech.size + pause.size
    return np.concatenate(pieces)[:n_samples]
