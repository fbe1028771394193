"""rvc-ios-tools: RVC voice models from PyTorch to Swift, with stage-by-stage proof of parity."""

__version__ = "0.1.0"
