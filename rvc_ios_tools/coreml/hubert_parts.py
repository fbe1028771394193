"""The content encoder as the torch module traced into Core ML: transformers' `HubertModel` (+ `final_proj`), the
model `hubert.upstream` holds our port to, with every golden stage as an output.

The stages are read as `hubert.upstream.run_upstream_hubert` reads them: forward hooks on the conv layers, the
feature LayerNorm and projection and the positional convolution, and `hidden_states`. The positional
convolution's weight norm is removed first (torch computes the fold, as the safetensors export's). Audio of any
length converts (a flexible input). transformers is imported lazily.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Mapping

from ..hubert.stages import v1_layer_for


# fairseq tensors transformers' model has no place for: the pre-training label embeddings (unused at inference).
FAIRSEQ_ONLY = ("label_embs_concat",)


def transformers_key(fairseq_key: str) -> str:
    """A fairseq tensor name under transformers' name, by the inverse of `hubert.demo.FAIRSEQ_NAMES` (the table
    that writes fairseq names)."""
    for pattern, replacement in _inverse_fairseq_names():
        fairseq_key = re.sub("^" + pattern, replacement, fairseq_key)
    return fairseq_key


@functools.lru_cache(maxsize=1)
def _inverse_fairseq_names() -> tuple[tuple[str, str], ...]:
    from ..hubert.demo import FAIRSEQ_NAMES

    inverse = []
    for pattern, replacement in FAIRSEQ_NAMES:
        anchored = pattern.endswith("$")
        fairseq = re.escape(replacement).replace(re.escape("\\1"), r"(\d+)") + ("$" if anchored else "")
        transformers = pattern.rstrip("$").replace(r"(\d+)", r"\1").replace("\\.", ".")
        inverse.append((fairseq, transformers))
    return tuple(inverse)


def transformers_state_dict(checkpoint) -> dict[str, Any]:
    """The checkpoint's tensors under transformers' names: as stored for a Hugging Face folder, renamed by
    `transformers_key` for a fairseq file."""
    if checkpoint.flavor != "fairseq":
        return dict(checkpoint.state_dict)
    return {transformers_key(key): value for key, value in checkpoint.state_dict.items() if key not in FAIRSEQ_ONLY}


def traced_key(checkpoint):
    """Source key -> the traced content encoder's module path (`build_content_encoder` holds the model as `hubert`)."""
    rename = transformers_key if checkpoint.flavor == "fairseq" else (lambda key: key)
    return lambda key: "hubert." + rename(key)


def stage_outputs(architecture: Mapping[str, Any]) -> list[str]:
    convs = [f"conv_{i}" for i in range(len(architecture["conv_layers"]))]
    layers = [f"layer_{n}" for n in range(architecture["num_layers"] + 1)]
    # `v2` is the last layer itself; one traced value cannot be two Core ML outputs, so the host names it.
    return [*convs, "features", "projected", "pos_conv", *layers,
            *(["v1"] if architecture["final_proj_dim"] is not None else [])]


ENCODER_INPUTS = ["audio"]


def build_content_encoder(model, architecture: Mapping[str, Any], v1_convention: str = "rvc"):
    import torch

    class ContentEncoder(torch.nn.Module):
        """transformers' forward on raw 16 kHz audio; every golden stage, in the stage table's order."""

        def __init__(self):
            super().__init__()
            self.hubert = model
            self.v1_layer = v1_layer_for(dict(architecture), v1_convention)

        def forward(self, audio):
            captured: dict[str, Any] = {}

            def keep(name: str):
                def hook(module, inputs, output):
                    captured[name] = output[0] if isinstance(output, tuple) else output
                return hook

            hubert = self.hubert
            handles = [layer.register_forward_hook(keep(f"conv_{i}"))
                       for i, layer in enumerate(hubert.feature_extractor.conv_layers)]
            handles.append(hubert.feature_projection.layer_norm.register_forward_hook(keep("features")))
            handles.append(hubert.feature_projection.projection.register_forward_hook(keep("projected")))
            handles.append(hubert.encoder.pos_conv_embed.register_forward_hook(keep("pos_conv")))
            try:
                result = hubert(audio, output_hidden_states=True)
            finally:
                for handle in handles:
                    handle.remove()
            out = [captured[name] for name in stage_outputs(architecture) if name in captured]
            out.extend(result.hidden_states)
            if hasattr(hubert, "final_proj"):
                out.append(hubert.final_proj(result.hidden_states[self.v1_layer]))
            return tuple(out)

    return ContentEncoder().eval()


def upstream_content_encoder(checkpoint):
    """transformers' model for the checkpoint, its positional conv's weight norm folded by torch."""
    import torch

    from ..hubert.upstream import load_upstream_hubert

    model = load_upstream_hubert(transformers_state_dict(checkpoint), checkpoint.architecture)
    for module in model.modules():
        if torch.nn.utils.parametrize.is_parametrized(module, "weight"):
            torch.nn.utils.parametrize.remove_parametrizations(module, "weight")
    return model
