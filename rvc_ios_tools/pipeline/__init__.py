"""The whole audio-to-audio conversion, composing the networks as upstream's `Pipeline.pipeline` does. So far:
the signal processing around the networks (`audio.py`) and one segment's steps between them (`segment.py`)."""
