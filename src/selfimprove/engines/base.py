"""The Engine contract and its registry.

`generate(prompts, n, sampling, on_complete=None)` returns, for every prompt, one Completion per
sample id (`Prompt.ids(n)`, in that order). `on_complete(prompt_index, sample_id, completion)`
is called as each completion finishes, which lets the run store persist it before the next one.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

from selfimprove.core.registry import Registry
from selfimprove.core.types import Completion, Prompt, PromptContent, Sampling

OnComplete = Callable[[int, int, Completion], None]


@runtime_checkable
class Engine(Protocol):
    name: str

    def generate(
        self,
        prompts: Sequence[Prompt | PromptContent],
        n: int,
        sampling: Sampling,
        on_complete: OnComplete | None = None,
    ) -> list[list[Completion]]: ...

    def describe(self) -> dict:
        """What identifies this engine's outputs (model file, settings) for the run's config hash."""
        ...

    def close(self) -> None: ...


registry: Registry[Engine] = Registry("engine")


def get(name: str) -> Callable[..., Engine]:
    """The engine factory registered as `name` (imports the built-in engines lazily)."""
    _load_builtins()
    return registry.get(name)


def names() -> list[str]:
    _load_builtins()
    return registry.names()


def _load_builtins() -> None:
    # Imported here, not at module top, so that `import selfimprove.engines` never pulls llama.cpp or openai.
    from selfimprove.engines import llama_cpp, openai_compat  # noqa: F401
