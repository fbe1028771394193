"""RVC's voice synthesizer (SynthesizerTrnMs256NSFsid / 768NSFsid and the _nono variants): loading, the rule
table and export, the MLX model, the reference stage runner, the upstream run and the demo voices."""
