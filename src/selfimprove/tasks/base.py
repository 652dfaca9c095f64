"""The Task contract and its registry.

A task yields Problems, formats prompts, extracts an answer from generated text and grades it.
A task never calls an engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from selfimprove.core.errors import ConfigError
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
        The optional parts a task may add are TaskBase's methods (strategies use them where present)."""
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


class TaskBase:
    """The Task contract's optional parts, with their defaults; every built-in task derives from it, and a task
    of yours may (a task that only has the protocol's methods works too: these defaults stand in).

    - `extract_for(problem, text)`: answers that depend on the problem (multiple-choice option texts);
      default `extract(text)`.
    - `grade_many(pairs)`: grade a batch of (problem, answer) first, in parallel (code tasks run them on
      the sandbox's workers); `grade` then reads the results. Default: nothing to do.
    - `grade_detail(problem, answer)`: how a grade came about, stored with each sample (a code task: the
      judge's status and message). Default None.
    - `sandbox()`: the Sandbox a code task's programs run in (the CLI prints its isolation gaps). Default None.
    """

    name: str = "task"
    stop: tuple[str, ...] = ()

    def extract(self, text: str) -> str | None:
        raise NotImplementedError

    def extract_for(self, problem: Problem, text: str) -> str | None:
        return self.extract(text)

    def grade_many(self, pairs: Sequence[tuple[Problem, str | None]]) -> None:
        return None

    def grade_detail(self, problem: Problem, answer: str | None) -> str | None:
        return None

    def sandbox(self) -> Any:
        return None


class FileBackedTask(TaskBase):
    """A task whose problems come from files: `data` is the test split, `split_files()` names every split's
    file, and the subclass's `load(source, split)` parses one (errors naming file:line:field). Each file is
    read once per task object; `select` narrows a split (MATH's levels)."""

    def __init__(self, data: str | None, needs: str):
        if data is None:
            raise ConfigError(f"task {self.name!r} needs --data PATH to {needs}")
        self.data = data
        self._cache: dict[tuple[str, str], list[Problem]] = {}

    def load(self, source: str, split: str) -> list[Problem]:
        raise NotImplementedError

    def split_files(self) -> dict[str, str | None]:
        """Split name -> its file (None: the split exists but no file was given or found)."""
        return {"test": self.data}

    def missing_split(self, split: str) -> str:
        """The hint when a split has no file."""
        return f"task {self.name!r} has no {split} file: pass -O fewshot=PATH"

    def loaded(self, split: str) -> list[Problem]:
        files = self.split_files()
        if split not in files:
            raise ConfigError(f"task {self.name!r} has no {split!r} split (it has {', '.join(files)})")
        source = files[split]
        if source is None:
            raise ConfigError(self.missing_split(split))
        if (source, split) not in self._cache:
            self._cache[source, split] = self.load(source, split)
        return self._cache[source, split]

    def select(self, problems: list[Problem]) -> list[Problem]:
        return problems

    def problems(self, split: str = "test", limit: int | None = None) -> Iterator[Problem]:
        yield from self.select(self.loaded(split))[:limit]


class NumericAnswers:
    """Extraction and grading for tasks whose answers are numbers (see grading/numeric.py)."""

    def extract(self, text: str) -> str | None:
        return extract_number(text)

    def grade(self, problem: Problem, answer: str | None) -> bool | None:
        if problem.reference is None:
            return None
        return numbers_equal(answer, problem.reference)
