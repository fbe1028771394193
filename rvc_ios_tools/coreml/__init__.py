"""Core ML export of the networks (coremltools), and its numbers checked on Linux by a numpy MIL interpreter."""
