"""What every network shares: errors, files and checksums, BLAS and the native kernels, the shared MLX layers,
the rule-table machinery, manifests, stage tables, golden sets, the diff and its plots. Imports no network."""
