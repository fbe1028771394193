"""rmvpe.pt (upstream `E2E(4, 1, (2, 2))` state dict) -> Swift-ready safetensors + manifest (`kind: "rmvpe"`).

The conversion knowledge is `RMVPE_RULES`, read by `core.rules.convert_state_dict` like the voice table:
upstream module path -> exported key, module kind (which fixes the parameter names and layouts).

| upstream (PyTorch) | exported key | layout |
|---|---|---|
| `unet.encoder.bn.*` (BatchNorm2d of the 1-channel input) | `unet.encoder.bn.*` | `C` |
| `unet.encoder.layers.L.conv.B.conv.{0,3}.weight` (Conv2d 3x3, no bias) | `unet.encoder.layer_L.conv_B.{conv1,conv2}.weight` | `OHWI` |
| `unet.encoder.layers.L.conv.B.conv.{1,4}.*` (BatchNorm2d) | `unet.encoder.layer_L.conv_B.{bn1,bn2}.*` | `C` |
| `unet.encoder.layers.L.conv.B.shortcut.{weight,bias}` (Conv2d 1x1) | `unet.encoder.layer_L.conv_B.shortcut.*` | `OHWI` / `O` |
| `unet.intermediate.layers.L.conv.B.*` | `unet.intermediate.layer_L.conv_B.*` (as above) | |
| `unet.decoder.layers.L.conv1.0.weight` (ConvTranspose2d 3x3 stride 2) | `unet.decoder.layer_L.conv1.weight` | `OHWI` (from `IOHW`) |
| `unet.decoder.layers.L.conv1.1.*` (BatchNorm2d) | `unet.decoder.layer_L.bn1.*` | `C` |
| `unet.decoder.layers.L.conv2.B.*` (ConvBlockRes) | `unet.decoder.layer_L.conv2_B.*` (as above) | |
| `cnn.{weight,bias}` (Conv2d 16 -> 3) | same | `OHWI` / `O` |
| `fc.0.gru.{weight_ih,weight_hh,bias_ih,bias_hh}_l0` | `fc.gru.forward.{weight_ih,weight_hh,bias_ih,bias_hh}` | `OI` / `O` |
| `fc.0.gru.*_l0_reverse` | `fc.gru.reverse.*` | `OI` / `O` |
| `fc.1.{weight,bias}` (Linear 512 -> 360) | `fc.linear.*` | `OI` / `O` |
| `*.num_batches_tracked` | dropped (a training counter) | |

BatchNorm tensors keep PyTorch's names (`weight`, `bias`, `running_mean`, `running_var`). GRU matrices keep
PyTorch's row order: three blocks of 256 rows for the reset, update and new gates (`gru_gate_order: "rzn"`).

The architecture (`ARCHITECTURE`, recorded in the manifest's `rmvpe.architecture`) is rmvpe.pt's. The demo
presets (`TINY_ARCHITECTURE`, used by `demo`) shrink the same network (fewer blocks, layers, channels and GRU units) so committed
test fixtures stay small; a file's shapes select which known architecture it is (`select_architecture`), and
the full one is what every real rmvpe.pt is checked against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.errors import ConfigMismatchError, CorruptFileError, MissingKeyError, UnknownKeyError
from ..core.manifest import exact_fields
from ..core.pickles import load_pickle_safely, state_dict_to_numpy
from ..core.rules import ConvertedTensor, DroppedTensor, Rule, convert_state_dict

# torch.nn.GRU(num_layers=1, bidirectional=True) names its tensors `<param>_l0` and `<param>_l0_reverse`.


def conv_block_res_rules(source: str, target: str) -> tuple[Rule, ...]:
    """Upstream ConvBlockRes: `conv` is Sequential(Conv2d, BN, ReLU, Conv2d, BN, ReLU), so its weighted
    children are 0, 1, 3, 4; `shortcut` (1x1 conv with bias, no BN) exists only when channels change."""
    return (
        Rule(source + r"\.conv\.0", target + ".conv1", "conv2d"),
        Rule(source + r"\.conv\.1", target + ".bn1", "batch_norm"),
        Rule(source + r"\.conv\.3", target + ".conv2", "conv2d"),
        Rule(source + r"\.conv\.4", target + ".bn2", "batch_norm"),
        Rule(source + r"\.shortcut", target + ".shortcut", "conv2d"),
    )


RMVPE_RULES: tuple[Rule, ...] = (
    Rule(r"unet\.encoder\.bn", "unet.encoder.bn", "batch_norm"),
    *conv_block_res_rules(r"unet\.(encoder|intermediate)\.layers\.(\d+)\.conv\.(\d+)", "unet.{0}.layer_{1}.conv_{2}"),
    Rule(r"unet\.decoder\.layers\.(\d+)\.conv1\.0", "unet.decoder.layer_{0}.conv1", "conv_transpose2d"),
    Rule(r"unet\.decoder\.layers\.(\d+)\.conv1\.1", "unet.decoder.layer_{0}.bn1", "batch_norm"),
    *conv_block_res_rules(r"unet\.decoder\.layers\.(\d+)\.conv2\.(\d+)", "unet.decoder.layer_{0}.conv2_{1}"),
    Rule(r"cnn", "cnn", "conv2d"),
    Rule(r"fc\.0\.gru", "fc.gru", "bidirectional_gru"),
    Rule(r"fc\.1", "fc.linear", "linear"),
)

# rmvpe.pt is upstream `E2E(n_blocks=4, n_gru=1, kernel_size=(2, 2))` with the defaults below (upstream
# hard-codes the BiGRU's 256 units; `gru_hidden_size` only differs in the demo presets).
ARCHITECTURE = {
    "n_blocks": 4,
    "n_gru": 1,
    "kernel_size": [2, 2],
    "en_de_layers": 5,
    "inter_layers": 4,
    "in_channels": 1,
    "en_out_channels": 16,
    "gru_hidden_size": 256,
    "n_mels": 128,
    "n_class": 360,
    "batch_norm_eps": 1e-5,
}


# What the ported pipeline fixes: upstream pads frames to a multiple of 32 and its `BiGRU(3 * 128, ...)` and
# `Linear(..., 360)` are literals, so only the U-Net's size and the GRU's width may vary.
# The smallest network that still has every layer kind of rmvpe.pt: two ConvBlockRes per block (so both the
# 1x1-conv shortcut and the identity residual occur in the encoder, intermediate and decoder), three U-Net
# levels (every pooling and transposed conv still halves/doubles both axes; 8 divides the 32-frame padding),
# one intermediate layer and an 8-unit BiGRU. About 42 k parameters, 165 KB in float32.
TINY_ARCHITECTURE = {
    **ARCHITECTURE,
    "n_blocks": 2,
    "en_de_layers": 3,
    "inter_layers": 1,
    "en_out_channels": 2,
    "gru_hidden_size": 8,
}
DEMO_ARCHITECTURES = {"full": ARCHITECTURE, "tiny": TINY_ARCHITECTURE}

FIXED_ARCHITECTURE_FIELDS = ("n_gru", "kernel_size", "in_channels", "n_mels", "n_class", "batch_norm_eps")
PADDED_FRAME_MULTIPLE = 32


def check_architecture(architecture: Mapping[str, Any]) -> dict[str, Any]:
    """A complete architecture block (every field of `ARCHITECTURE`) this port can run, as a plain dict."""
    architecture = exact_fields(architecture, ARCHITECTURE, "RMVPE architecture block")
    for name in FIXED_ARCHITECTURE_FIELDS:
        if architecture[name] != ARCHITECTURE[name]:
            raise ConfigMismatchError(
                f"RMVPE architecture field {name} is {architecture[name]!r}; only {ARCHITECTURE[name]!r} (rmvpe.pt's) "
                "is supported."
            )
    for name in ("n_blocks", "en_de_layers", "inter_layers", "en_out_channels", "gru_hidden_size"):
        if not isinstance(architecture[name], int) or architecture[name] < 1:
            raise ConfigMismatchError(f"RMVPE architecture field {name} must be a whole number >= 1, not {architecture[name]!r}.")
    # Each encoder level halves time and mel bins: both 32 padded frames and 128 bins must divide evenly.
    if PADDED_FRAME_MULTIPLE % 2 ** architecture["en_de_layers"]:
        raise ConfigMismatchError(
            f"RMVPE en_de_layers is {architecture['en_de_layers']}; at most 5 levels fit frames padded to a multiple of 32."
        )
    return architecture


def upstream_rmvpe_shapes(architecture: Mapping[str, Any] = ARCHITECTURE) -> dict[str, tuple[int, ...]]:
    """Every tensor of upstream `E2E(n_blocks, 1, (2, 2), en_de_layers, inter_layers, 1, en_out_channels)`'s
    state dict, with its PyTorch shape (for rmvpe.pt: `E2E(4, 1, (2, 2))`)."""
    a = architecture
    shapes: dict[str, tuple[int, ...]] = {}

    def batch_norm(prefix: str, channels: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (channels,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    def conv_block_res(prefix: str, c_in: int, c_out: int) -> None:
        shapes[f"{prefix}.conv.0.weight"] = (c_out, c_in, 3, 3)
        batch_norm(f"{prefix}.conv.1", c_out)
        shapes[f"{prefix}.conv.3.weight"] = (c_out, c_out, 3, 3)
        batch_norm(f"{prefix}.conv.4", c_out)
        if c_in != c_out:
            shapes[f"{prefix}.shortcut.weight"] = (c_out, c_in, 1, 1)
            shapes[f"{prefix}.shortcut.bias"] = (c_out,)

    def res_blocks(prefix: str, c_in: int, c_out: int) -> None:
        for b in range(a["n_blocks"]):
            conv_block_res(f"{prefix}.{b}", c_in if b == 0 else c_out, c_out)

    batch_norm("unet.encoder.bn", a["in_channels"])
    c_in, c_out = a["in_channels"], a["en_out_channels"]
    for layer in range(a["en_de_layers"]):
        res_blocks(f"unet.encoder.layers.{layer}.conv", c_in, c_out)
        c_in, c_out = c_out, c_out * 2
    # The encoder's `out_channel` is one doubling past its last block (512 for rmvpe.pt).
    for layer in range(a["inter_layers"]):
        res_blocks(f"unet.intermediate.layers.{layer}.conv", c_in if layer == 0 else c_out, c_out)
    c_in = c_out
    for layer in range(a["en_de_layers"]):
        c_out = c_in // 2
        shapes[f"unet.decoder.layers.{layer}.conv1.0.weight"] = (c_in, c_out, 3, 3)  # ConvTranspose2d: (I, O, H, W)
        batch_norm(f"unet.decoder.layers.{layer}.conv1.1", c_out)
        res_blocks(f"unet.decoder.layers.{layer}.conv2", 2 * c_out, c_out)
        c_in = c_out
    shapes["cnn.weight"] = (3, a["en_out_channels"], 3, 3)
    shapes["cnn.bias"] = (3,)
    gru_in, hidden = 3 * a["n_mels"], a["gru_hidden_size"]
    for suffix in ("", "_reverse"):
        shapes[f"fc.0.gru.weight_ih_l0{suffix}"] = (3 * hidden, gru_in)
        shapes[f"fc.0.gru.weight_hh_l0{suffix}"] = (3 * hidden, hidden)
        shapes[f"fc.0.gru.bias_ih_l0{suffix}"] = (3 * hidden,)
        shapes[f"fc.0.gru.bias_hh_l0{suffix}"] = (3 * hidden,)
    shapes["fc.1.weight"] = (a["n_class"], 2 * hidden)
    shapes["fc.1.bias"] = (a["n_class"],)
    return shapes


def known_architectures() -> tuple[dict[str, Any], ...]:
    """rmvpe.pt's architecture first, then the demo presets (small networks for committed test fixtures)."""
    return (ARCHITECTURE, *(a for a in DEMO_ARCHITECTURES.values() if a != ARCHITECTURE))


def select_architecture(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The known architecture whose every tensor the file holds with its shape, and nothing else; rmvpe.pt's
    when none fits exactly, so a damaged or foreign file is reported against the network RVC uses."""
    for architecture in known_architectures():
        expected = upstream_rmvpe_shapes(architecture)
        if set(expected) == set(state_dict) and all(tuple(state_dict[k].shape) == v for k, v in expected.items()):
            return dict(architecture)
    return dict(ARCHITECTURE)


def describe_architecture(architecture: Mapping[str, Any]) -> str:
    a = architecture
    if dict(a) == ARCHITECTURE:
        return "RMVPE's E2E(4, 1, (2, 2)) network"
    return (f"the RMVPE demo network E2E({a['n_blocks']}, 1, (2, 2), en_de_layers={a['en_de_layers']}, "
            f"inter_layers={a['inter_layers']}, en_out_channels={a['en_out_channels']}) with a "
            f"{a['gru_hidden_size']}-unit BiGRU")


def check_rmvpe_state_dict(
    state_dict: Mapping[str, np.ndarray], source_name: str, architecture: Mapping[str, Any] = ARCHITECTURE
) -> None:
    """Every tensor of the architecture's E2E present with its shape, and nothing else."""
    expected = upstream_rmvpe_shapes(architecture)
    network = describe_architecture(architecture)
    for key in state_dict:
        if key not in expected:
            raise UnknownKeyError(
                f"{source_name}: `{key}` is not a tensor of {network}. This file is not "
                "the rmvpe.pt that RVC WebUI and Applio use; if it is a variant, report the key."
            )
    for key, shape in expected.items():
        if key not in state_dict:
            raise MissingKeyError(
                f"{source_name}: `{key}` (shape {shape}) is missing. The file is incomplete: download rmvpe.pt again."
            )
        if tuple(state_dict[key].shape) != shape:
            raise ConfigMismatchError(
                f"{source_name}: `{key}` has shape {tuple(state_dict[key].shape)}, but {network} "
                f"needs {shape}. This is a different network from the rmvpe.pt RVC uses."
            )


def convert_rmvpe_state_dict(
    state_dict: Mapping[str, Any], dtype: str = "float32", source_name: str = "rmvpe state dict"
) -> tuple[dict[str, ConvertedTensor], list[DroppedTensor], dict[str, Any]]:
    """Upstream E2E state dict -> (exported key -> channels-last tensor, the tensors dropped by name, the
    architecture the file's shapes select)."""
    arrays = state_dict_to_numpy(state_dict, source_name)
    architecture = select_architecture(arrays)
    check_rmvpe_state_dict(arrays, source_name, architecture)
    converted, dropped = convert_state_dict(arrays, RMVPE_RULES, dtype)
    return converted, dropped, architecture


def convert_rmvpe(state_dict: Mapping[str, Any], dtype: str = "float32") -> dict[str, np.ndarray]:
    """Exported key -> array, for the MLX reference (`E2E.load_weights`) and the tests."""
    converted, _, _ = convert_rmvpe_state_dict(state_dict, dtype)
    return {key: tensor.array for key, tensor in converted.items()}


def load_rmvpe_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """rmvpe.pt, loaded without running any pickle code, as a flat dict of numpy arrays."""
    path = Path(path)
    payload = load_pickle_safely(path)
    if isinstance(payload, dict) and "weight" in payload and "config" in payload:
        raise CorruptFileError(
            f"{path.name} is an RVC voice, not the RMVPE pitch model. Export voices with `rvc-ios export NAME`."
        )
    if not isinstance(payload, dict) or not payload:
        raise CorruptFileError(
            f"{path.name} holds a {type(payload).__name__}, not RMVPE's state dict (a dict of tensors such as "
            "`unet.encoder.bn.weight`). Use the rmvpe.pt that ships with RVC WebUI or Applio."
        )
    return state_dict_to_numpy(payload, path.name)
