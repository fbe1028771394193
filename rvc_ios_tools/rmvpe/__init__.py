"""RMVPE, the pitch model: loading rmvpe.pt, the rule table and export, the MLX log-mel and E2E network, the
reference stage runner and f0 decoding, the upstream run and the demo model."""
