"""A deterministic stand-in for rmvpe.pt: every tensor of upstream `E2E(4, 1, (2, 2))` drawn from a seed.

`DEMO_ARCHITECTURES` also offers a tiny version of the same network for the committed fixtures.

The real rmvpe.pt cannot be fetched here. A freshly initialised network would leave every BatchNorm at
mean 0 / variance 1 / weight 1 / bias 0, so a port that skipped or misapplied them would still pass; here
every parameter and every BatchNorm statistic is random, so every layer changes the output. Scales are
chosen so activations stay in a useful range through the 90 M-parameter U-Net and the salience straddles
the 0.03 voicing threshold (some frames voiced, some not).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..core.files import write_bytes_atomic
from .convert import ARCHITECTURE, DEMO_ARCHITECTURES, check_architecture, upstream_rmvpe_shapes

# The 1-channel input BatchNorm sees log-mel values (about -11.5 to +3); statistics of that range keep the
# U-Net's input near unit scale, as the trained model's do.
INPUT_BN_MEAN = -5.0
INPUT_BN_VAR = 9.0
# The final Linear's bias puts most of the 360 logits well below sigmoid^-1(0.03) = -3.48, and its weight
# scale lets the largest logit of a frame cross it on some frames and not on others.
SALIENCE_BIAS = -7.1
SALIENCE_WEIGHT_GAIN = 2.0
NUM_BATCHES_TRACKED = 100000
# Each ConvBlockRes adds its branch to its input; with unit-scale BatchNorm weights the 36 blocks would grow
# activations ~2x per U-Net level. The branch's last BatchNorm (`conv.4`) scales it down instead.
RESIDUAL_BRANCH_BN_WEIGHT = (0.2, 0.6)


def demo_architecture(preset: str) -> dict:
    try:
        return check_architecture(DEMO_ARCHITECTURES[preset])
    except KeyError:
        raise ValueError(f"Unknown RMVPE demo preset {preset!r}; use one of {', '.join(DEMO_ARCHITECTURES)}.") from None


def random_rmvpe_state_dict(seed: int = 0, architecture=ARCHITECTURE):
    """Upstream key -> float32 torch tensor (int64 for `num_batches_tracked`), the same for the same seed."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def normal(shape, std: float, mean: float = 0.0):
        return mean + std * torch.randn(shape, generator=generator)

    def uniform(shape, low: float, high: float):
        return low + (high - low) * torch.rand(shape, generator=generator)

    state = {}
    for key, shape in sorted(upstream_rmvpe_shapes(architecture).items()):
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            state[key] = torch.tensor(NUM_BATCHES_TRACKED, dtype=torch.int64)
        elif key.startswith("unet.encoder.bn."):
            state[key] = {
                "weight": lambda: uniform(shape, 0.8, 1.2),
                "bias": lambda: normal(shape, 0.1),
                "running_mean": lambda: normal(shape, 0.5, INPUT_BN_MEAN),
                "running_var": lambda: uniform(shape, 0.8 * INPUT_BN_VAR, 1.2 * INPUT_BN_VAR),
            }[leaf]()
        elif leaf == "running_mean":
            state[key] = normal(shape, 0.2)
        elif leaf == "running_var":
            state[key] = uniform(shape, 0.5, 2.0)
        elif key.startswith("fc.0.gru."):
            # Twice PyTorch's GRU init range (1/sqrt(hidden)): the gates respond to their input without saturating.
            # The input matrices keep rmvpe.pt's range in every preset: their 384 input features are the same, and
            # a narrow GRU's wider range would drive its gates into saturation.
            width = ARCHITECTURE["gru_hidden_size"] if "weight_ih" in leaf else architecture["gru_hidden_size"]
            bound = 2.0 / math.sqrt(width)
            state[key] = uniform(shape, -bound, bound) if leaf.startswith("weight") else normal(shape, 0.1)
        elif key == "fc.1.weight":
            state[key] = normal(shape, SALIENCE_WEIGHT_GAIN / math.sqrt(shape[1]))
        elif key == "fc.1.bias":
            state[key] = normal(shape, 0.5, SALIENCE_BIAS)
        elif len(shape) == 4:
            # ConvTranspose2d (I, O, H, W) with stride 2 sums over I * H * W / 4 inputs per output.
            fan_in = shape[0] * shape[2] * shape[3] / 4 if ".conv1.0." in key else math.prod(shape[1:])
            state[key] = normal(shape, 1.0 / math.sqrt(fan_in))
        elif key.endswith(".conv.4.weight"):
            state[key] = uniform(shape, *RESIDUAL_BRANCH_BN_WEIGHT)
        elif leaf == "weight":  # BatchNorm scale
            state[key] = uniform(shape, 0.5, 1.5)
        else:  # BatchNorm shift and conv biases
            state[key] = normal(shape, 0.1)
    return state


def demo_audio(n_samples: int, seed: int = 0, sample_rate: int = 16000) -> np.ndarray:
    """A voice-like float32 test signal: a harmonic tone whose pitch glides and wobbles (vibrato), a loudness
    that swells and fades, and a faint noise floor, so every mel frame differs from its neighbours."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sample_rate
    f0 = 180.0 * (1.0 + 0.25 * np.sin(2 * np.pi * 0.6 * t)) * (1.0 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    harmonics = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 9))
    loudness = 0.15 + 0.12 * np.sin(2 * np.pi * 0.8 * t + rng.uniform(0, 2 * np.pi))
    noise = 0.005 * rng.standard_normal(n_samples)
    return (loudness * harmonics + noise).astype(np.float32)


def write_demo_rmvpe(path: Path, seed: int = 0, dtype: str = "float32", preset: str = "full") -> Path:
    """Write a deterministic rmvpe.pt-format file (a flat state dict, as upstream `torch.load`s it) of the
    `DEMO_ARCHITECTURES[preset]` network."""
    import torch

    architecture = demo_architecture(preset)
    torch_dtype = {"float32": torch.float32, "float16": torch.float16}[dtype]
    state = {
        key: tensor if tensor.dtype == torch.int64 else tensor.to(torch_dtype)
        for key, tensor in random_rmvpe_state_dict(seed, architecture).items()
    }
    # torch.save names the zip's inner folder after the file it writes to (here it would be the temporary
    # name); saving to memory gives the fixed name "archive", so the same arguments give the same bytes.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)
