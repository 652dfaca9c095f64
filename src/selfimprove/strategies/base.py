"""The Strategy contract and its registry, plus the sampling helper every strategy shares.

`solve(problems, task, engine) -> list[Solution]`: the strategy builds prompts from the task,
asks the engine for completions (tagging each prompt with its problem id and step so the run
store can key them), extracts and grades answers, and returns Solutions with the whole trace.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from selfimprove.core.errors import ConfigError
from selfimprove.core.registry import Registry
from selfimprove.core.types import Completion, Problem, Prompt, SampleRecord, Sampling, Solution
from selfimprove.engines.base import Engine
from selfimprove.tasks.base import Task


@runtime_checkable
class Strategy(Protocol):
    name: str

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]: ...

    def describe(self) -> dict:
        """Every setting that changes the outputs (for the run's config hash)."""
        ...


registry: Registry[Strategy] = Registry(
    "strategy",
    builtins=(
        "selfimprove.strategies.cot",
        "selfimprove.strategies.self_consistency",
        "selfimprove.strategies.adaptive_consistency",
        "selfimprove.strategies.weighted_consistency",
        "selfimprove.strategies.deepconf",
        "selfimprove.strategies.self_correct",
        "selfimprove.strategies.least_to_most",
        "selfimprove.strategies.logic_of_thought",
        "selfimprove.strategies.tree_of_thoughts",
        "selfimprove.strategies.best_of_n",
    ),
)
names = registry.names


def get(name: str) -> Callable[..., Strategy]:
    """A strategy factory; `OUTER+INNER` (e.g. `lot+self-consistency`) wraps INNER in OUTER. The composed
    factory takes OUTER's own settings and INNER's, so CLI flags and configs reach the right one."""
    if "+" not in name:
        factory = registry.get(name)
        if getattr(factory, "wraps", False):
            raise ConfigError(f"strategy {name!r} wraps another strategy: name both, e.g. {name}+cot")
        return factory
    outer_name, inner_name = name.split("+", 1)
    outer = registry.get(outer_name)
    if not getattr(outer, "wraps", False):
        raise ConfigError(f"strategy {outer_name!r} does not wrap another strategy, so {name!r} means nothing")
    inner = get(inner_name)
    own = {k: p for k, p in inspect.signature(outer).parameters.items() if k != "inner"}
    theirs = {k: p for k, p in inspect.signature(inner).parameters.items() if k not in own}

    def composed(**settings: Any) -> Strategy:
        mine = {k: settings.pop(k) for k in list(settings) if k in own}
        return outer(inner=inner(**settings), **mine)

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in (*own.values(), *theirs.values())]
    composed.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return composed


def sample_step(
    problems: Sequence[Problem], task: Task, engine: Engine, step: str, n: int, sampling: Sampling
) -> list[list[SampleRecord]]:
    """n completions per problem for one step, each with its extracted answer and grade."""
    prompts = [Prompt(content=task.format_prompt(p), problem_id=p.id, step=step) for p in problems]
    outputs = engine.generate(prompts, n, sampling)
    answers = [[extract_answer(task, p, c.text) for c in row] for p, row in zip(problems, outputs)]
    # One parallel batch across all problems (a code task runs them in the sandbox's worker pool).
    prefetch_grades(task, [(p, a) for p, row in zip(problems, answers) for a in row])
    return [
        records_for(task, p, step, range(n), completions, extracted)
        for p, completions, extracted in zip(problems, outputs, answers)
    ]


def records_for(
    task: Task,
    problem: Problem,
    step: str,
    sample_ids: Sequence[int],
    completions: Sequence[Completion],
    answers: Sequence[str | None] | None = None,
    auxiliary: bool = False,
) -> list[SampleRecord]:
    """Completions as SampleRecords: the answer extracted (unless `answers` already are) and graded,
    tokens and seconds kept; `auxiliary` marks a step that holds no answer (see SampleRecord)."""
    records = []
    if answers is None:
        answers = [extract_answer(task, problem, c.text) for c in completions]
        prefetch_grades(task, [(problem, a) for a in answers])
    explain = getattr(task, "grade_detail", None)
    for index, completion, answer in zip(sample_ids, completions, answers):
        records.append(
            SampleRecord(
                step=step,
                index=index,
                text=completion.text,
                answer=answer,
                correct=task.grade(problem, answer),
                completion_tokens=completion.completion_tokens,
                prompt_tokens=completion.prompt_tokens,
                seconds=completion.seconds,
                prompt_evaluated=completion.prompt_evaluated,
                finish_reason=completion.finish_reason,
                mean_logprob=mean_logprob(completion),
                detail=explain(problem, answer) if explain is not None else None,
                auxiliary=auxiliary,
            )
        )
    return records


def mean_logprob(completion: Completion) -> float | None:
    """The completion's length-normalised log-probability (None without log-probabilities; 0 for no tokens)."""
    if completion.logprobs is None:
        return None
    return sum(completion.logprobs) / len(completion.logprobs) if completion.logprobs else 0.0


def extract_answer(task: Task, problem: Problem, text: str) -> str | None:
    """The task's answer in `text`; a task whose answers depend on the problem (its options) has `extract_for`."""
    extract_for = getattr(task, "extract_for", None)
    return extract_for(problem, text) if extract_for is not None else task.extract(text)


def prefetch_grades(task: Task, pairs: Sequence[tuple[Problem, str | None]]) -> None:
    """Lets a task whose grading is slow (code run in the sandbox) grade a whole batch in parallel first."""
    grade_many = getattr(task, "grade_many", None)
    if grade_many is not None and pairs:
        grade_many(pairs)


class NoAnswers:
    """Stands in for the task when recording auxiliary completions (an extraction, a rating): they carry no
    answer to extract or grade."""

    def extract(self, text: str) -> None:
        return None

    def grade(self, problem: Problem, answer: str | None) -> None:
        return None
