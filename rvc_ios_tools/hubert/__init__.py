"""The content encoder: HuBERT-base / ContentVec, from fairseq or Hugging Face checkpoints to features."""
