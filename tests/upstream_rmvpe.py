"""Upstream RMVPE (`rvc.lib.rmvpe`) for any architecture of `rmvpe_convert`, built from upstream's own classes.

Upstream hard-codes `E2E(4, 1, (2, 2))` in `RMVPE.__init__` and `BiGRU(3 * 128, 256, ...)` in `E2E.__init__`;
the demo presets shrink both. `upstream_e2e` builds upstream's E2E with the preset's sizes and swaps in a
BiGRU and Linear of the preset's width (upstream's own classes, nothing reimplemented);
`load_upstream_rmvpe` runs upstream's `RMVPE` loader on a checkpoint with that network in place of its literal one.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

from rvc_ios_tools.rmvpe_convert import ARCHITECTURE


def upstream_e2e(architecture):
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


def load_upstream_rmvpe(checkpoint: Path, architecture=ARCHITECTURE):
    """Upstream `RMVPE(checkpoint)` (its loader, mel extractor, padding and decoding) for `architecture`."""
    from rvc.lib import rmvpe as upstream

    if dict(architecture) == ARCHITECTURE:
        return upstream.RMVPE(str(checkpoint), is_half=False, device="cpu")
    tiny = upstream_e2e(architecture)  # built before upstream's class name is replaced
    with mock.patch.object(upstream, "E2E", lambda *args: tiny):
        return upstream.RMVPE(str(checkpoint), is_half=False, device="cpu")
