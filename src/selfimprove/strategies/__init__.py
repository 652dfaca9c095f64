"""Inference-time strategies: chain-of-thought, self-consistency, ..."""

from selfimprove.strategies.base import Strategy, get, names

__all__ = ["Strategy", "get", "names"]
