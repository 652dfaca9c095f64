"""The Task contract and its registry.

A task yields Problems, formats prompts, extracts an answer from generated text and grades it.
A task never calls an engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from selfimprove.core.registry import Registry
from selfimprove.core.types import Problem, PromptContent
from selfimprove.grading.numeric import extract_number, numbers_equal


@runtime_checkable
class Task(Protocol):
    name: str
    stop: tuple[str, ...]
    """Stop strings that end one answer (a base model otherwise goes on to write the next question)."""

    def problems(self, split: str = "test", limit: int | None = None) -> Iterator[Problem]: ...

    def format_prompt(self, problem: Problem) -> PromptContent: ...

    def extract(self, text: str) -> str | None:
        """The answer stated in `text`, canonicalised; None when there is none (it then casts no vote).

        Optional methods a task may add: `extract_for(problem, text)` when answers depend on the
        problem (multiple-choice option texts), `grade_many(pairs)` to grade a batch in parallel
        first, `grade_detail(problem, answer)` to say how a grade came about (stored per sample)."""
        ...

    def grade(self, problem: Problem, answer: str | None) -> bool | None:
        """True/False against the reference; None when the problem has no reference."""
        ...

    def describe(self) -> dict:
        """Everything that changes which problems or prompts this task makes (for the run's config hash)."""
        ...


registry: Registry[Task] = Registry(
    "task",
    builtins=(
        "selfimprove.tasks.arithmetic",
        "selfimprove.tasks.gsm8k",
        "selfimprove.tasks.mathematics",
        "selfimprove.tasks.mbpp",
        "selfimprove.tasks.humaneval",
        "selfimprove.tasks.multiple_choice",
        "selfimprove.tasks.questions",
    ),
)
get = registry.get
names = registry.names


class NumericAnswers:
    """Extraction and grading for tasks whose answers are numbers (see grading/numeric.py)."""

    def extract(self, text: str) -> str | None:
        return extract_number(text)

    def grade(self, problem: Problem, answer: str | None) -> bool | None:
        if problem.reference is None:
            return None
        return numbers_equal(answer, problem.reference)
