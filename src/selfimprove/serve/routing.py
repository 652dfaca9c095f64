"""Which strategy answers a request, with which settings: picked by the model name's prefix
(`self-consistency-8/gemma`, `lot+cot/gemma`, `adaptive-consistency/gemma`) or by the request's `selfimprove`
field (`{"strategy": "...", "settings": {...}, "answers": "number"}`), with the request's own `temperature`,
`top_p`, `max_tokens` and `seed` applied to the settings the strategy has. Everything is built per request: no
setting outlives the request that gave it.

A model name without a strategy prefix (or the prefix `plain`) is plain generation: the request's own sampling,
`n` choices, as any OpenAI-compatible server.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from selfimprove.core.errors import ConfigError, SelfImproveError
from selfimprove.core.types import Problem
from selfimprove.grading.numeric import extract_number
from selfimprove.strategies import base as strategies
from selfimprove.tasks.base import TaskBase

PLAIN = "plain"
ANSWER_KINDS = ("number", "text")
_SAMPLES_SUFFIX = re.compile(r"^(?P<name>.+?)-(?P<k>\d+)$")
_STATED = re.compile(r"answer is\s*:?\s*(.+?)\s*(?:\.\s*$|\.\s*\n|\n|$)", re.IGNORECASE)
# The request fields that map onto strategy settings of the same meaning.
_REQUEST_SETTINGS = ("temperature", "top_p", "max_tokens", "seed")


class RequestError(SelfImproveError):
    """A request the server refuses: an HTTP status, OpenAI's error type and the offending parameter."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


@dataclass
class Route:
    """A request's strategy (None: plain generation) and the served model it asked for."""

    strategy: Any
    strategy_name: str
    model: str
    answers: str = "number"
    settings: dict[str, Any] = field(default_factory=dict)


def parse_model(requested: str, served: str) -> tuple[str, dict[str, Any]]:
    """(strategy name, settings from the name) of `STRATEGY[-K]/MODEL`; the model part must be the served one."""
    if "/" not in requested:
        if requested not in (served, ""):
            raise RequestError(f"model {requested!r} is not served here (try {served!r} or "
                               f"'self-consistency-8/{served}')", 404, "model", "model_not_found")  # fmt: skip
        return PLAIN, {}
    prefix, model = requested.split("/", 1)
    if model != served:
        raise RequestError(f"model {model!r} is not served here (this server serves {served!r})", 404, "model",
                           "model_not_found")  # fmt: skip
    if prefix == PLAIN or prefix in known_strategies():
        return prefix, {}
    match = _SAMPLES_SUFFIX.match(prefix)
    if match and match["name"] in known_strategies():
        return match["name"], {"samples": int(match["k"])}
    raise RequestError(f"unknown strategy {prefix!r} in model {requested!r}; known: {', '.join(known_strategies())}",
                       400, "model", "unknown_strategy")  # fmt: skip


def known_strategies() -> list[str]:
    return sorted(strategies.names())


def build_route(body: dict[str, Any], served: str, max_samples: int, scorer: Any = None) -> Route:
    """The Route of a request body (its `model`, its `selfimprove` field, its sampling fields). A strategy that
    ranks by reward (best-of-n) gets the server's `scorer`; a client never names a reward model's files."""
    name, settings = parse_model(str(body.get("model", "")), served)
    extension = body.get("selfimprove") or {}
    if not isinstance(extension, dict):
        raise RequestError("selfimprove must be an object", 400, "selfimprove")
    if "strategy" in extension:
        name, settings = str(extension["strategy"]), {}
    answers = str(extension.get("answers", "number"))
    if answers not in ANSWER_KINDS:
        raise RequestError(f"selfimprove.answers {answers!r}: one of {', '.join(ANSWER_KINDS)}", 400,
                           "selfimprove.answers")  # fmt: skip
    settings.update(extension.get("settings") or {})
    if name == PLAIN:
        return Route(None, PLAIN, served, answers, settings)
    if "+" not in name and name not in known_strategies():
        raise RequestError(f"unknown strategy {name!r}; known: {', '.join(known_strategies())}", 400,
                           "selfimprove.strategy", "unknown_strategy")  # fmt: skip
    try:
        factory = strategies.get(name)
    except SelfImproveError as exc:
        raise RequestError(str(exc), 400, "selfimprove.strategy", "unknown_strategy") from exc
    accepted = inspect.signature(factory).parameters
    for key in _REQUEST_SETTINGS:
        if body.get(key) is not None and key in accepted and key not in settings:
            settings[key] = body[key]
    if "scorer" in accepted:
        _attach_scorer(settings, scorer, name)
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise RequestError(f"strategy {name!r} has no setting {', '.join(unknown)}", 400, "selfimprove.settings")
    for key in ("samples", "turn_samples", "breadth"):
        if isinstance(settings.get(key), int) and settings[key] > max_samples:
            raise RequestError(f"{key} = {settings[key]} is over this server's cap of {max_samples}", 400, key)
    try:
        strategy = factory(**settings)
    except (ConfigError, TypeError, ValueError) as exc:
        raise RequestError(f"strategy {name!r}: {exc}", 400, "selfimprove.settings") from exc
    return Route(strategy, name, served, answers, settings)


def _attach_scorer(settings: dict[str, Any], scorer: Any, name: str) -> None:
    """The server's scorer in `settings`; an ensemble re-aggregated as the request asks (members shared)."""
    from selfimprove.rewards.model import RewardEnsemble

    for forbidden in ("reward_model", "scorer"):
        if forbidden in settings:
            raise RequestError(f"{forbidden} is the server's to choose (selfimprove serve --reward-model)", 400,
                               f"selfimprove.settings.{forbidden}")  # fmt: skip
    if scorer is None:
        raise RequestError(f"strategy {name!r} needs a reward model and this server has none (start it with "
                           "--reward-model FOLDER)", 400, "model", "no_reward_model")  # fmt: skip
    if isinstance(scorer, RewardEnsemble) and ("aggregator" in settings or "uncertainty_weight" in settings):
        rule = settings.get("aggregator", scorer.aggregator)
        weight = settings.get("uncertainty_weight", scorer.uncertainty_weight)
        try:
            scorer = RewardEnsemble(scorer.members, rule, weight)
        except ConfigError as exc:
            raise RequestError(str(exc), 400, "selfimprove.settings.aggregator") from exc
    elif settings.get("aggregator", "mean") != "mean":
        raise RequestError("this server's reward model is one model, not an ensemble: no aggregator to choose", 400,
                           "selfimprove.settings.aggregator")  # fmt: skip
    settings["scorer"] = scorer


class RequestTask(TaskBase):
    """A request as a one-problem task: its prompt is the request's messages (or text) as they came, its answers
    are read as numbers (`answers="number"`: after "the answer is", else the last number) or as the stated
    answer's text (`"text"`), and nothing is graded (no reference)."""

    name = "request"

    def __init__(self, content: Any, stop: tuple[str, ...], answers: str = "number"):
        self.content, self.stop, self.answers = content, stop, answers
        self.problem = Problem(id="request", question=content if isinstance(content, str) else "")

    def problems(self, split: str = "test", limit: int | None = None) -> list[Problem]:
        return [self.problem]

    def format_prompt(self, problem: Problem) -> Any:
        return self.content

    def extract(self, text: str) -> str | None:
        if self.answers == "number":
            return extract_number(text)
        stated = _STATED.findall(text)
        if stated:
            return stated[-1].strip()
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return lines[-1] if lines else None

    def grade(self, problem: Problem, answer: str | None) -> None:
        return None

    def describe(self) -> dict:
        return {"task": self.name, "answers": self.answers}
