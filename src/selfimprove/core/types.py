"""The values that flow between Task, Strategy, Engine and RunStore (see docs/architecture.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.validation import require_sampling_ranges

ChatMessages = list[dict[str, str]]
PromptContent = str | ChatMessages


@dataclass(frozen=True)
class Problem:
    """One question. `reference` is the gold answer in the task's canonical form, or None if unknown."""

    id: str
    question: str
    reference: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sampling:
    """Decoding settings. temperature 0 means greedy. `seed` makes sampling repeatable.

    The repetition penalties act on the tokens this completion has generated (never the prompt's: a few-shot
    prompt's digits and phrasing are not repetitions), with llama.cpp's rule: a token seen c times in the
    window has its logit divided by `repeat_penalty` (multiplied when negative), then lowered by
    c * frequency_penalty + (c > 0) * presence_penalty (OpenAI's rule for the last two). They apply before
    greedy choice too, so off (the defaults) greedy stays the papers' greedy. An engine that cannot honour
    one refuses it by name.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0
    repeat_penalty: float = 1.0
    """Divides the logits of tokens already generated (1: off; llama.cpp's and transformers' repetition penalty)."""
    frequency_penalty: float = 0.0
    """Subtracted from a token's logit once per time it was generated (0: off; -2..2 as in the OpenAI API)."""
    presence_penalty: float = 0.0
    """Subtracted from a token's logit once it was generated at all (0: off; -2..2)."""
    penalty_window: int = 0
    """How many of the latest generated tokens the penalties look at (0: all of them)."""
    logprobs: bool = False
    """Return the log-probability the model gave each generated token (`Completion.logprobs`)."""
    top_logprobs: int = 0
    """Also return, per generated token, the k most likely tokens and their log-probabilities (0: none)."""
    stop_below_confidence: float = 0.0
    """End a trace (finish_reason "low_confidence") once the mean token confidence of its latest `confidence_window`
    tokens falls below this (0: never). Token confidence is DeepConf's, from the `top_logprobs` alternatives (see
    core/confidence.py), so this needs top_logprobs > 0."""
    confidence_window: int = 32
    """Tokens per group for `stop_below_confidence`."""

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        if self.stop_below_confidence and not self.top_logprobs:
            raise ConfigError("stop_below_confidence needs top_logprobs > 0 (token confidence is made from them)")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @property
    def penalized(self) -> bool:
        return self.repeat_penalty != 1.0 or self.frequency_penalty != 0.0 or self.presence_penalty != 0.0

    @property
    def wants_logprobs(self) -> bool:
        return self.logprobs or self.top_logprobs > 0


@dataclass(frozen=True)
class Prompt:
    """What an engine is asked to continue, tagged with where it belongs in a run.

    `problem_id` and `step` key the completions in the run store; engines ignore them.
    `sample_ids` picks which of the prompt's samples to draw (default: 0..n-1); the sample id,
    not the position in a batch, seeds each sample, so a resumed run draws the samples it lacks
    with the seeds an uninterrupted run would have used. (llama.cpp's arithmetic depends a little
    on batch composition, so such a sample can still differ from the uninterrupted one; the same
    call with the same seed does give the same samples.)
    """

    content: PromptContent
    problem_id: str = ""
    step: str = "main"
    sample_ids: tuple[int, ...] | None = None
    seed: int | None = None
    """This prompt's run seed, in place of `Sampling.seed` (None: the Sampling's): lets calls whose seeds differ
    share one engine call (the server's SharedEngine)."""

    def ids(self, n: int) -> tuple[int, ...]:
        return tuple(range(n)) if self.sample_ids is None else self.sample_ids

    def text_for_hash(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\x1e".join(f"{m.get('role', '')}\x1f{m.get('content', '')}" for m in self.content)


def sample_seed(base_seed: int, prompt: Prompt, sample_id: int) -> int:
    """A 31-bit seed that depends only on the run seed, the prompt text and the sample id."""
    if prompt.seed is not None:
        base_seed = prompt.seed
    digest = hashlib.sha256(f"{base_seed}\x00{sample_id}\x00{prompt.text_for_hash()}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Completion:
    """One generated continuation. `seconds` is this completion's share of the engine's wall time."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    seconds: float = 0.0
    logprobs: Sequence[float] | None = None
    """The model's log-probability of each generated token (before temperature, top-k and top-p, as vLLM and the
    OpenAI API report it; an end token is not included), where `Sampling.logprobs` asked and the engine can."""
    top_logprobs: Sequence[Sequence[tuple[str, float]]] | None = None
    """Per generated token, the `Sampling.top_logprobs` most likely (token text, log-probability), best first."""
    prompt_evaluated: int | None = None
    """Prompt tokens the engine decoded for this completion's call (a prompt shared by n samples counts on the
    first of them; a prefix reused from the cache, not at all); None where the engine does not say."""


@dataclass
class SampleRecord:
    """A completion as a strategy used it: its text, the answer extracted from it, whether it was right."""

    step: str
    index: int
    text: str
    answer: str | None
    correct: bool | None
    completion_tokens: int
    prompt_tokens: int
    seconds: float
    detail: str | None = None
    """How the grade came about, where a task says (a code task: the sandbox's status and message)."""
    prompt_evaluated: int | None = None
    """Prompt tokens the engine decoded for it (see Completion); None where the engine does not say."""
    finish_reason: str | None = None
    """"stop" (end of text or a stop string), "length" (it ran to max_tokens: a loop, or a long answer) or
    "low_confidence" (ended by `Sampling.stop_below_confidence`)."""
    mean_logprob: float | None = None
    """Its tokens' mean log-probability (the length-normalised sequence log-probability), where the engine gave
    log-probabilities."""
    confidence: float | None = None
    """A confidence a strategy gave the trace (DeepConf's lowest group confidence), where one did."""
    reward: float | None = None
    """The reward a reward model (or an ensemble, aggregated) gave it, where a strategy scored it (best-of-n)."""
    reward_members: tuple[float, ...] | None = None
    """An ensemble's member rewards, each standardised, before aggregation."""
    auxiliary: bool = False
    """A step whose text is not meant to hold an answer (Logic-of-Thought's extraction, least-to-most's
    decomposition, tree-of-thoughts' partial steps and ratings): left out of extraction failures."""


@dataclass
class Solution:
    """A strategy's final answer to one problem, with the whole trace that led to it."""

    problem_id: str
    answer: str | None
    correct: bool | None
    samples: list[SampleRecord] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)
    confidence: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.samples)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.samples)


def normalize_prompts(prompts: Sequence[Prompt | PromptContent]) -> list[Prompt]:
    """Lets callers pass bare text or chat messages where a Prompt is expected."""
    return [p if isinstance(p, Prompt) else Prompt(content=p) for p in prompts]
