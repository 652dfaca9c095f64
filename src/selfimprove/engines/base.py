"""The Engine contract and its registry.

`generate(prompts, n, sampling, on_complete=None)` returns, for every prompt, one Completion per
sample id (`Prompt.ids(n)`, in that order). `on_complete(prompt_index, sample_id, completion)`
is called as each completion finishes, which lets the run store persist it before the next one.

An engine that can report text as it is generated sets `streams_text = True` and takes `on_text(prompt_index,
sample_id, delta)`: the deltas of one sample, joined, are exactly its completion's text (text that may yet turn
out to be the start of a stop string is held back until it is known not to be; see `TextStream`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from selfimprove.core.registry import Registry
from selfimprove.core.types import Completion, Prompt, PromptContent, Sampling

OnComplete = Callable[[int, int, Completion], None]
OnText = Callable[[int, int, str], None]


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


def streams_text(engine: object) -> bool:
    """Whether `engine.generate` takes `on_text` (engines without it report whole completions only)."""
    return bool(getattr(engine, "streams_text", False))


class TextStream:
    """One sample's text as it grows, told out in deltas that never need taking back: a suffix that could be the
    beginning of a stop string is held until the next tokens show it is not (the engine cuts the text there)."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [stop for stop in stops if stop]
        self.sent = 0  # characters of the text told so far

    def delta(self, text: str, final: bool = False) -> str:
        """The new part of `text` safe to tell now (all of what is left when `final`)."""
        safe = len(text) if final else len(text) - self._held(text)
        if safe <= self.sent:
            return ""
        piece, self.sent = text[self.sent : safe], safe
        return piece

    def _held(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of a stop string."""
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest


def plain_transcript(messages: Sequence[dict[str, str]]) -> str:
    """Chat messages as "User: ... / Assistant:" text, for a model that has no chat template."""
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages) + "\nAssistant:"


registry: Registry[Engine] = Registry(
    "engine",
    builtins=(
        "selfimprove.engines.llama_cpp",
        "selfimprove.engines.openai_compat",
        "selfimprove.engines.hf",
        "selfimprove.engines.vllm",
    ),
)
get = registry.get
names = registry.names
