"""RMVPE's E2E network as the torch module traced into Core ML, built from upstream's own modules.

The piece runs `E2E.forward` from the padded log-mel on (the mel front end, the padding to a multiple of 32
frames and the decoding to Hz stay with the host, as the reference's `rmvpe.reference` does them) and returns
every golden stage it computes. The BiGRU converts to two `while_loop`s over the frames, so one program takes
any frame count. torch and upstream's `rvc` are imported lazily.
"""

from __future__ import annotations

from ..rmvpe.stages import encoder_levels


def network_outputs(levels: int) -> list[str]:
    return ["unet.encoder", *(f"unet.encoder.skip_{i}" for i in range(levels)), "unet.intermediate",
            "unet.decoder", "cnn", "fc.gru", "salience"]


NETWORK_INPUTS = ["padded_mel"]


def build_network(e2e):
    import torch

    class Network(torch.nn.Module):
        """Upstream `E2E.forward` module by module, as `rmvpe.upstream.run_upstream_rmvpe` calls it; the salience
        keeps the padded frame count (the host crops it)."""

        def __init__(self):
            super().__init__()
            # E2E's own modules under their own names, so the traced consts keep upstream's key paths.
            self.unet, self.cnn, self.fc = e2e.unet, e2e.cnn, e2e.fc

        def forward(self, padded_mel):
            e2e = self
            x, skips = e2e.unet.encoder(padded_mel.transpose(-1, -2).unsqueeze(1))
            intermediate = e2e.unet.intermediate(x)
            decoded = e2e.unet.decoder(intermediate, skips)
            cnn = e2e.cnn(decoded)
            gru, linear, dropout, sigmoid = e2e.fc
            hidden = gru(cnn.transpose(1, 2).flatten(-2))
            return (x, *skips, intermediate, decoded, cnn, hidden, sigmoid(dropout(linear(hidden))))

    return Network().eval()


def upstream_network(checkpoint_path, architecture):
    """Upstream's E2E for an rmvpe.pt, loaded by upstream's own `RMVPE` class, in eval mode."""
    from ..rmvpe.upstream import load_upstream_rmvpe

    e2e = load_upstream_rmvpe(checkpoint_path, architecture).model.eval()
    return e2e, encoder_levels(e2e)
