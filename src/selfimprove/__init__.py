"""selfimprove: make language models reason better and improve themselves, measured honestly."""

__version__ = "0.1.0"
