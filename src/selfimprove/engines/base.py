"""The Engine contract and its registry.

`generate(prompts, n, sampling, on_complete=None)` returns, for every prompt, one Completion per
sample id (`Prompt.ids(n)`, in that order). `on_complete(prompt_index, sample_id, completion)`
is called as each completion finishes, which lets the run store persist it before the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

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


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the earliest stop string starts in `text` (engines cut completions there), or None."""
    positions = [text.find(stop) for stop in stops if stop and stop in text]
    return min(positions) if positions else None


def plain_transcript(messages: Sequence[dict[str, str]]) -> str:
    """Chat messages as "User: ... / Assistant:" text, for a model that has no chat template."""
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages) + "\nAssistant:"


registry: Registry[Engine] = Registry(
    "engine",
    builtins=("selfimprove.engines.llama_cpp", "selfimprove.engines.openai_compat", "selfimprove.engines.hf"),
)
get = registry.get
names = registry.names
