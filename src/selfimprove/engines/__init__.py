"""Engines generate completions from a real model: llama.cpp, OpenAI-compatible servers, ..."""

from selfimprove.engines.base import Engine, get, names

__all__ = ["Engine", "get", "names"]
