"""Upstream PyTorch RMVPE (`rvc.lib.rmvpe`) as the ground truth: built at any demo architecture, run module by
module in `E2E.forward`'s order, every golden intermediate captured.

torch and the upstream `rvc` package are imported lazily: the rest of the package runs without them.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..core.figures import compare_runs
from ..core.pitch_track import f0_agreement


def upstream_rmvpe_e2e(architecture: Mapping[str, Any]):
    """Upstream's `E2E` at `architecture`'s sizes, built from upstream's own classes.

    Upstream hard-codes `E2E(4, 1, (2, 2))` in `RMVPE.__init__` and `BiGRU(3 * 128, 256, ...)` in
    `E2E.__init__`; the tiny demo preset shrinks both, so a GRU head of the preset's width is swapped in.
    """
    import torch.nn as nn
    from rvc.lib import rmvpe as upstream

    a = architecture
    model = upstream.E2E(a["n_blocks"], a["n_gru"], tuple(a["kernel_size"]), a["en_de_layers"], a["inter_layers"],
                         a["in_channels"], a["en_out_channels"])
    if a["gru_hidden_size"] != 256:
        hidden = a["gru_hidden_size"]
        model.fc = nn.Sequential(
            upstream.BiGRU(3 * a["n_mels"], hidden, a["n_gru"]),
            nn.Linear(2 * hidden, a["n_class"]),
            nn.Dropout(0.25),
            nn.Sigmoid(),
        )
    return model


def load_upstream_rmvpe(checkpoint, architecture: Mapping[str, Any] | None = None):
    """Upstream `RMVPE(checkpoint)` (its loader, mel extractor, padding and decoding) for `architecture`."""
    from unittest import mock

    from rvc.lib import rmvpe as upstream

    from .convert import ARCHITECTURE

    if architecture is None or dict(architecture) == ARCHITECTURE:
        return upstream.RMVPE(str(checkpoint), is_half=False, device="cpu")
    network = upstream_rmvpe_e2e(architecture)  # built before upstream's class name is replaced
    with mock.patch.object(upstream, "E2E", lambda *args: network):
        return upstream.RMVPE(str(checkpoint), is_half=False, device="cpu")


def run_upstream_rmvpe(upstream, audio: np.ndarray, pad_mode: str) -> dict[str, np.ndarray]:
    """Upstream's modules called one by one, in `E2E.forward`'s order, with `mel2hidden`'s padding mode."""
    import torch
    import torch.nn.functional as F

    from .reference import FRAME_MULTIPLE, THRESHOLD

    e2e = upstream.model
    with torch.no_grad():
        mel = upstream.mel_extractor(torch.from_numpy(np.asarray(audio, np.float32))[None], center=True)
        n_frames = mel.shape[-1]
        padded = F.pad(mel, (0, -n_frames % FRAME_MULTIPLE), mode=pad_mode)
        x, skips = e2e.unet.encoder(padded.transpose(-1, -2).unsqueeze(1))
        out = {"mel": mel, "padded_mel": padded, "unet.encoder": x}
        out.update({f"unet.encoder.skip_{i}": skip for i, skip in enumerate(skips)})
        out["unet.intermediate"] = x = e2e.unet.intermediate(x)
        out["unet.decoder"] = x = e2e.unet.decoder(x, skips)
        out["cnn"] = x = e2e.cnn(x)
        gru, linear, dropout, sigmoid = e2e.fc
        out["fc.gru"] = x = gru(x.transpose(1, 2).flatten(-2))
        out["salience"] = sigmoid(dropout(linear(x)))[:, :n_frames]
    tensors = {name: tensor.numpy() for name, tensor in out.items()}
    tensors["f0"] = upstream.decode(tensors["salience"][0], thred=THRESHOLD)[None]
    return tensors


def rmvpe_parity_figures(preset: str, samples: int, model_seed: int, audio_seed: int, pad_mode: str = "reflect"):
    """MLX RMVPE vs upstream on a demo rmvpe.pt: (figures per tensor except f0, f0 agreement)."""
    import tempfile
    from pathlib import Path

    from .export import export_rmvpe
    from .demo import DEMO_ARCHITECTURES, demo_audio, write_demo_rmvpe
    from .reference import load_rmvpe, rmvpe_golden_tensors

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = write_demo_rmvpe(Path(tmp) / "rmvpe.pt", seed=model_seed, preset=preset)
        upstream = load_upstream_rmvpe(checkpoint, DEMO_ARCHITECTURES[preset])
        weights_path, _ = export_rmvpe(checkpoint, Path(tmp) / "export")
        ours = load_rmvpe(weights_path)
    audio = demo_audio(samples, seed=audio_seed)
    reference = run_upstream_rmvpe(upstream, audio, pad_mode)
    candidate = rmvpe_golden_tensors(ours, audio, pad_mode=pad_mode)
    figures = compare_runs({k: v for k, v in reference.items() if k != "f0"}, candidate)
    return figures, f0_agreement(reference["f0"], candidate["f0"], reference["salience"])
