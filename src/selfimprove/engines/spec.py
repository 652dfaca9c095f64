"""EngineSpec: an engine named by its registered name and settings, built where it is needed.

A run sharded across Ray workers cannot ship a loaded model: each worker builds its own engine from the same
recipe (the GGUF path, the checkpoint, the server URL). `EngineSpec("llama-cpp", {"model": "m.gguf"})` is that
recipe; locally it is built once, like the engine it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from selfimprove.engines.base import Engine, registry


@dataclass(frozen=True)
class EngineSpec:
    name: str
    """A registered engine name: llama-cpp, hf, openai, vllm (see `selfimprove.engines.names()`)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of that engine's constructor (model, base_url, n_ctx, ...); None values are dropped."""

    def build(self) -> Engine:
        return registry.get(self.name)(**{k: v for k, v in self.options.items() if v is not None})
