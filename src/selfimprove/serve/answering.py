"""One request, answered: plain generation or a strategy, for each of its `n` choices, with every completion
kept for the run store and reported as it arrives. No HTTP here (app.py is the HTTP side)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from selfimprove.core.types import Completion, Problem, Prompt, PromptContent, Sampling, Solution, normalize_prompts
from selfimprove.engines.base import Engine, OnComplete, streams_text
from selfimprove.serve.routing import RequestError, RequestTask, Route

PLAIN_PROBLEM = "request"  # the problem id of plain generation's prompt


class Cancelled(Exception):
    """The client went away or the request timed out: no further engine call is made for it."""


@dataclass
class Kept:
    problem_id: str
    step: str
    sample: int
    completion: Completion


@dataclass
class TextDelta:
    """New text of one choice, as the engine produced it (a streaming request's events)."""

    choice: int
    text: str


ChoiceText = Callable[[int, str], None]
"""(choice index, new text): a choice's text as the engine produces it."""


def streams_choices(route: Route) -> bool:
    """Whether a choice's text is one completion told out as it is generated: plain generation (a choice is a
    sample) and greedy chain-of-thought (a choice is its one completion). Other strategies' text is known only
    once their samples are in (the vote, the ranking, the last turn)."""
    from selfimprove.strategies.cot import ChainOfThought

    return route.strategy is None or type(route.strategy) is ChainOfThought


class RequestEngine:
    """The engine as one request sees it: every completion kept (for the store, the usage, the progress events),
    each choice's text told to `on_choice_text` as it grows (where the engine streams and the route allows),
    and no engine call made once the request is cancelled."""

    def __init__(self, engine: Engine, on_event: Callable[[Kept], None] | None = None):
        self.engine, self.name, self.on_event = engine, engine.name, on_event
        self.on_choice_text: ChoiceText | None = None
        self.kept: list[Kept] = []
        self.cancelled = threading.Event()
        self._lock = threading.Lock()

    def describe(self) -> dict:
        return self.engine.describe()

    def close(self) -> None:  # the server's engine outlives its requests
        pass

    def generate(
        self,
        prompts: Sequence[Prompt | PromptContent],
        n: int,
        sampling: Sampling,
        on_complete: OnComplete | None = None,
    ) -> list[list[Completion]]:
        if self.cancelled.is_set():
            raise Cancelled("request cancelled")
        prompts = normalize_prompts(prompts)

        def keep(index: int, sample_id: int, completion: Completion) -> None:
            kept = Kept(prompts[index].problem_id, prompts[index].step, sample_id, completion)
            with self._lock:
                self.kept.append(kept)
            if self.on_event is not None:
                self.on_event(kept)
            if on_complete is not None:
                on_complete(index, sample_id, completion)

        told = self.on_choice_text
        if told is None or not streams_text(self.engine):
            return self.engine.generate(prompts, n, sampling, on_complete=keep)

        def tell(index: int, sample_id: int, delta: str) -> None:
            choice = _choice_index(prompts[index].problem_id, sample_id)
            if choice is not None:
                told(choice, delta)

        return self.engine.generate(prompts, n, sampling, on_complete=keep, on_text=tell)


def _choice_index(problem_id: str, sample_id: int) -> int | None:
    """Which choice a completion's text is: plain generation's sample `i` is choice `i`; a strategy's prompts
    belong to problem `choice-i`."""
    if problem_id == PLAIN_PROBLEM:
        return sample_id
    prefix, _, number = problem_id.partition("choice-")
    return int(number) if not prefix and number.isdigit() else None


@dataclass
class Choice:
    text: str
    finish_reason: str
    answer: str | None = None
    solution: Solution | None = None


@dataclass
class Answered:
    request_id: str
    choices: list[Choice]
    kept: list[Kept]
    route: Route
    extension: dict[str, Any] = field(default_factory=dict)

    @property
    def completion_tokens(self) -> int:
        return sum(k.completion.completion_tokens for k in self.kept)

    @property
    def prompt_tokens(self) -> int:
        """Each engine prompt's tokens once (its samples share it)."""
        seen: dict[tuple[str, str], int] = {}
        for k in self.kept:
            seen.setdefault((k.problem_id, k.step), k.completion.prompt_tokens)
        return sum(seen.values())


def plain_sampling(body: dict[str, Any], stop: tuple[str, ...], default_max_tokens: int) -> Sampling:
    """The request's own sampling (OpenAI's defaults: temperature 1, top_p 1)."""
    try:
        return Sampling(
            temperature=float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0),
            top_p=float(body.get("top_p") if body.get("top_p") is not None else 1.0),
            max_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or default_max_tokens),
            stop=stop,
            seed=int(body.get("seed") or 0),
            frequency_penalty=float(body.get("frequency_penalty") or 0.0),
            presence_penalty=float(body.get("presence_penalty") or 0.0),
        )
    except (TypeError, ValueError) as exc:
        raise RequestError(str(exc), 400) from exc


def answer(
    content: PromptContent,
    route: Route,
    n: int,
    body: dict[str, Any],
    stop: tuple[str, ...],
    engine: RequestEngine,
    default_max_tokens: int = 256,
) -> Answered:
    """The request's n choices. Plain: one engine call with n samples. A strategy: n solves run side by side
    (each its own seed where the strategy has one), whose engine calls the shared engine merges."""
    request_id = uuid.uuid4().hex[:24]
    if route.strategy is None:
        sampling = plain_sampling(body, stop, default_max_tokens)
        (row,) = engine.generate([Prompt(content, problem_id=PLAIN_PROBLEM, step="plain")], n, sampling)
        choices = [Choice(c.text, c.finish_reason) for c in row]
        return Answered(request_id, choices, engine.kept, route)
    task = RequestTask(content, stop, route.answers)
    strategies = [route.strategy] + [_reseeded(route.strategy, i) for i in range(1, n)]

    def solve(index: int) -> Solution:
        problem = Problem(id=f"choice-{index}", question=task.problem.question)
        return strategies[index].solve([problem], task, engine)[0]

    with ThreadPoolExecutor(max_workers=n) as pool:
        solutions = list(pool.map(solve, range(n)))
    choices = [_choice(s) for s in solutions]
    extension = {
        "strategy": route.strategy_name,
        "settings": route.strategy.describe(),
        "choices": [
            {
                "answer": s.answer,
                "votes": s.votes,
                "confidence": s.confidence,
                "samples": len(s.samples),
                "extra": _plain(s.extra),
                **_rewards(s),
            }
            for s in solutions
        ],  # fmt: skip
    }
    return Answered(request_id, choices, engine.kept, route, extension)


def _rewards(solution: Solution) -> dict[str, Any]:
    """Each sample's reward (and its ensemble members'), where a reward model scored them."""
    scored = [r for r in solution.samples if r.reward is not None]
    if not scored:
        return {}
    return {"rewards": [r.reward for r in scored], "reward_members": [list(r.reward_members or ()) for r in scored]}


def _reseeded(strategy: Any, offset: int) -> Any:
    """The same strategy with seed + offset (a strategy without a seed is used as it is)."""
    seed = getattr(strategy, "seed", None)
    if seed is None:
        return strategy
    try:
        return replace(strategy, seed=seed + offset)
    except TypeError:
        clone = type(strategy).__new__(type(strategy))
        clone.__dict__.update({**strategy.__dict__, "seed": seed + offset})
        return clone


def _choice(solution: Solution) -> Choice:
    """The text a client reads: the last turn of a self-correction, else the first sampled path that reached
    the chosen answer (the greedy baseline only if nothing else did), else the last answering completion."""
    turns = solution.extra.get("turns")
    if turns:
        return Choice(turns[-1]["text"], "stop", solution.answer, solution)
    answering = [r for r in solution.samples if not r.auxiliary]
    chosen = solution.extra.get("chosen_sample")
    if chosen is not None:  # best-of-n: the sample the reward chose
        record = next(r for r in answering if r.step == "sample" and r.index == chosen)
        return Choice(record.text, record.finish_reason or "stop", solution.answer, solution)
    agreeing = [r for r in answering if r.answer is not None and r.answer == solution.answer]
    preferred = [r for r in agreeing if r.step != "greedy"] or agreeing or answering[-1:]
    if not preferred:
        return Choice("", "stop", solution.answer, solution)
    record = preferred[0]
    return Choice(record.text, record.finish_reason or "stop", solution.answer, solution)


def _plain(extra: dict[str, Any]) -> dict[str, Any]:
    """A solution's extra without bulky traces (the tree, the turns' texts are in the store)."""
    return {k: v for k, v in extra.items() if k not in ("tree", "turns")}


def leader(kept: Sequence[Kept], task: RequestTask) -> str | None:
    """The most common answer among the completions so far (the progress events' "current leader")."""
    answers = [task.extract(k.completion.text) for k in kept]
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None
