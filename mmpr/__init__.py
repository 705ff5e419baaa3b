"""mmpr: build multimodal reasoning preference datasets (MMPR) by sampling, judging and pairing VLM answers."""

__version__ = "0.1.0"
