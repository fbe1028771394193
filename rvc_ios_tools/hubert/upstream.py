"""transformers' `HubertModel` (+ `final_proj`, as RVC main and Applio subclass it) as the ground truth, every
golden stage captured with forward hooks.

transformers computes fairseq's HuBERT (the same function to within 2.7e-6 on random weights, bit-exact
against a transcription of fairseq's forward), and installs without fairseq's build. It is a test-only
dependency, imported lazily. Never install torchaudio beside it: a torchaudio built for another torch breaks
`import transformers`.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np

from .convert import default_v1_layer
from .stages import v1_layer_for


@functools.lru_cache(maxsize=None)
def hubert_with_final_proj_class():
    """RVC main's `infer/hubert.py` `HubertModelWithFinalProj` (Applio's `rvc/lib/utils.py` is the same)."""
    import torch.nn as nn
    from transformers import HubertModel

    class HubertModelWithFinalProj(HubertModel):
        def __init__(self, config):
            super().__init__(config)
            self.final_proj = nn.Linear(config.hidden_size, config.classifier_proj_size)

    return HubertModelWithFinalProj


def load_upstream_hubert(state_dict: Mapping[str, Any], architecture: Mapping[str, Any]):
    """transformers' model of `architecture` holding `state_dict` (transformers names), strictly, in eval mode
    (dropout, layerdrop and SpecAugment off)."""
    import torch
    from transformers import HubertConfig, HubertModel

    from .demo import hf_config

    config = HubertConfig(**{k: v for k, v in hf_config(architecture).items() if k not in ("architectures", "model_type")})
    model_class = hubert_with_final_proj_class() if architecture["final_proj_dim"] is not None else HubertModel
    model = model_class(config)
    tensors = {key: torch.as_tensor(np.asarray(value)) if isinstance(value, np.ndarray) else value
               for key, value in state_dict.items()}
    model.load_state_dict({key: tensor.float() for key, tensor in tensors.items()}, strict=True)
    return model.eval()


def run_upstream_hubert(model, audio: np.ndarray, v1_convention: str = "rvc") -> dict[str, np.ndarray]:
    """The golden stages of transformers' forward on raw audio, captured by hooks: conv layers, the feature
    LayerNorm and projection, the positional convolution, every `hidden_states[k]`, final_proj."""
    import torch

    captured: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, inputs, output):
            captured[name] = output[0] if isinstance(output, tuple) else output
        return hook

    handles = [layer.register_forward_hook(keep(f"conv_{i}")) for i, layer in enumerate(model.feature_extractor.conv_layers)]
    handles.append(model.feature_projection.layer_norm.register_forward_hook(keep("features")))
    handles.append(model.feature_projection.projection.register_forward_hook(keep("projected")))
    handles.append(model.encoder.pos_conv_embed.register_forward_hook(keep("pos_conv")))
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    try:
        with torch.no_grad():
            result = model(torch.from_numpy(audio), output_hidden_states=True)
            out = {"audio": audio}
            out.update({name: tensor.numpy() for name, tensor in captured.items()})
            for k, hidden in enumerate(result.hidden_states):
                out[f"layer_{k}"] = hidden.numpy()
            if hasattr(model, "final_proj"):
                layers = model.config.num_hidden_layers
                layer = v1_layer_for({"num_layers": layers, "v1_layer": default_v1_layer(layers)}, v1_convention)
                out["v1"] = model.final_proj(result.hidden_states[layer]).numpy()
            out["v2"] = result.last_hidden_state.numpy()
    finally:
        for handle in handles:
            handle.remove()
    return out


def upstream_stage_tensors(
    state_dict: Mapping[str, Any], architecture: Mapping[str, Any], audio: np.ndarray, v1_convention: str = "rvc"
) -> dict[str, np.ndarray]:
    """`run_upstream_hubert` on a model built from `state_dict` (transformers names)."""
    return run_upstream_hubert(load_upstream_hubert(state_dict, architecture), audio, v1_convention)
