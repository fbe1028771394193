"""The voice's rule table: every upstream synthesizer tensor converted or dropped by a named rule.

`VOICE_RULES` is read by the converter (`core.rules`), the exporter's manifest and the tests; nothing else
renames voice keys.
"""

from __future__ import annotations

import numpy as np

from ..core.rules import Rule, convert_state_dict
from .checkpoint import VoiceCheckpoint

VOICE_RULES: tuple[Rule, ...] = (
    Rule(r"enc_q(\..*)?", None, "drop", "posterior encoder: used in training only"),
    Rule(r"enc_p\.emb_phone", "enc_p.emb_phone", "linear"),
    Rule(r"enc_p\.emb_pitch", "enc_p.emb_pitch", "embedding"),
    Rule(r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_([qkvo])", "enc_p.encoder.attn_{0}.conv_{1}", "conv1d"),
    Rule(r"enc_p\.encoder\.attn_layers\.(\d+)", "enc_p.encoder.attn_{0}", "relative_attention"),
    Rule(r"enc_p\.encoder\.norm_layers_1\.(\d+)", "enc_p.encoder.norm1_{0}", "layer_norm_gamma_beta"),
    Rule(r"enc_p\.encoder\.norm_layers_2\.(\d+)", "enc_p.encoder.norm2_{0}", "layer_norm_gamma_beta"),
    Rule(r"enc_p\.encoder\.ffn_layers\.(\d+)\.conv_([12])", "enc_p.encoder.ffn_{0}.conv_{1}", "conv1d"),
    Rule(r"enc_p\.proj", "enc_p.proj", "conv1d"),
    Rule(r"flow\.flows\.(\d*[02468])\.(pre|post)", "flow.flow_{half}.{1}", "conv1d"),
    Rule(r"flow\.flows\.(\d*[02468])\.enc\.in_layers\.(\d+)", "flow.flow_{half}.enc.in_layer_{1}", "conv1d"),
    Rule(
        r"flow\.flows\.(\d*[02468])\.enc\.res_skip_layers\.(\d+)",
        "flow.flow_{half}.enc.res_skip_layer_{1}",
        "conv1d",
    ),
    Rule(r"flow\.flows\.(\d*[02468])\.enc\.cond_layer", "flow.flow_{half}.enc.cond_layer", "conv1d"),
    Rule(r"dec\.conv_pre", "dec.conv_pre", "conv1d"),
    Rule(r"dec\.cond", "dec.cond", "conv1d"),
    Rule(r"dec\.ups\.(\d+)", "dec.up_{0}", "conv_transpose1d"),
    Rule(r"dec\.resblocks\.(\d+)\.convs1\.(\d+)", "dec.resblock_{0}.c1_{1}", "conv1d"),
    Rule(r"dec\.resblocks\.(\d+)\.convs2\.(\d+)", "dec.resblock_{0}.c2_{1}", "conv1d"),
    Rule(r"dec\.resblocks\.(\d+)\.convs\.(\d+)", "dec.resblock_{0}.c_{1}", "conv1d"),
    Rule(r"dec\.noise_convs\.(\d+)", "dec.noise_conv_{0}", "conv1d"),
    Rule(r"dec\.m_source\.l_linear", "dec.m_source.l_linear", "linear"),
    Rule(r"dec\.conv_post", "dec.conv_post", "conv1d"),
    Rule(r"emb_g", "emb_g", "embedding"),
)


def convert_voice(checkpoint: VoiceCheckpoint, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Swift key -> channels-last array, for the MLX reference and the exporter."""
    converted, _ = convert_state_dict(checkpoint.state_dict, VOICE_RULES, dtype)
    return {key: tensor.array for key, tensor in converted.items()}
