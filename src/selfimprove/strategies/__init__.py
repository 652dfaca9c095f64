"""Inference-time strategies: chain-of-thought, self-consistency, adaptive-consistency, self-correct,
least-to-most, Logic-of-Thought, tree-of-thoughts."""

from selfimprove.strategies.base import Strategy, get, names

__all__ = ["Strategy", "get", "names"]
