"""Engines generate completions from a real model: llama.cpp (GGUF, in-process), transformers (`hf`), and any
OpenAI-compatible server."""

from selfimprove.engines.base import Engine, get, names

__all__ = ["Engine", "get", "names"]
