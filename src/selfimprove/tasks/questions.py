"""Task `questions`: your own questions, from a list in Python or a JSONL file, without writing a Task class.

Each item has a `question` and an `answer` (and optionally an `id`, and a worked `solution` for
exemplars). Answers are graded as numbers (`answers="numeric"`: "1,000" = "1000.0"), as exact
strings (`answers="exact"`: equal after trimming and case-folding), or by your own function
`grader(answer, reference) -> bool` on the extracted answer text. The prompt is the house's
few-shot format (`Question: ...\\nAnswer:`), zero-shot unless `examples` are given; a completion's
answer is what follows its last "The answer is" (numeric: the number there, else its last number).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError, DataError
from selfimprove.core.types import Problem
from selfimprove.grading.numeric import canonical_number, extract_number, numbers_equal
from selfimprove.tasks.base import TaskBase, registry
from selfimprove.tasks.jsonl import identify_source, read_jsonl
from selfimprove.tasks.prompting import FEW_SHOT_STOP, few_shot_prompt

ANSWER_KINDS = ("numeric", "exact")
_STATED = re.compile(r"answer is\s*:?\s*(.+?)\s*(?:\.\s*$|\.\s*\n|\n|$)", re.IGNORECASE)

Item = Mapping[str, Any] | tuple[str, Any]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _problems_from(items: Sequence[Item], where: str, numeric: bool) -> list[Problem]:
    """Problems of in-memory items; errors name the item's index (or the file's line) and the field."""
    problems = []
    for index, item in enumerate(items):
        line = item.get("__line__", index + 1) if isinstance(item, Mapping) else index + 1
        record = dict(item) if isinstance(item, Mapping) else {"question": item[0], "answer": item[1]}
        question = record.get("question")
        if not isinstance(question, str) or not question.strip():
            raise DataError(where, f"expected a non-empty question string, got {question!r:.60}", line, "question")
        if "answer" not in record or record["answer"] is None:
            raise DataError(where, "missing", line, "answer")
        reference = _text(record["answer"]).strip()
        if numeric:
            number = canonical_number(reference)
            if number is None:
                raise DataError(where, f"{reference!r:.40} is not a number (answers='exact'?)", line, "answer")
            reference = number
        problems.append(
            Problem(
                id=str(record.get("id", f"q{line}")),
                question=question.strip(),
                reference=reference,
                metadata={"solution": str(record.get("solution", "")), "line": line},
            )
        )
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise DataError(where, f"the id {duplicate!r} is used twice", field="id")
    return problems


def _read_items(path: str | Path) -> list[dict]:
    return [{**record, "__line__": line} for line, record in read_jsonl(path)]


def _fingerprint(items: Sequence[Item]) -> str:
    text = json.dumps([dict(i) if isinstance(i, Mapping) else list(i) for i in items], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _grader_identity(grader: Callable[[str, str], bool]) -> str:
    """Name and source hash of the grader function, so editing it starts a new run."""
    name = f"{getattr(grader, '__module__', '?')}.{getattr(grader, '__qualname__', type(grader).__name__)}"
    try:
        source = inspect.getsource(grader)
    except (OSError, TypeError):
        return name
    return f"{name}@{hashlib.sha256(source.encode()).hexdigest()[:12]}"


@registry.register("questions")
class QuestionsTask(TaskBase):
    """`data`: a JSONL file of {question, answer[, id, solution]} (or pass `items` in Python); `answers`:
    numeric or exact; `grader`: your function (answer, reference) -> bool; `examples`: solved items shown
    first (their `solution` then "The answer is ..."); `train`: items (or a JSONL path) of the train split."""

    name = "questions"
    stop = FEW_SHOT_STOP

    def __init__(
        self,
        data: str | Path | None = None,
        items: Sequence[Item] | None = None,
        answers: str = "numeric",
        grader: Callable[[str, str], bool] | None = None,
        examples: Sequence[Item] | str | None = None,
        train: Sequence[Item] | str | None = None,
    ):
        if (data is None) == (items is None):
            raise ConfigError("task 'questions' needs exactly one of data=PATH (a JSONL file) or items=[...]")
        if answers not in ANSWER_KINDS:
            raise ConfigError(f"answers = {answers!r} (-O answers=...): choose one of {', '.join(ANSWER_KINDS)}")
        if grader is not None and not callable(grader):
            raise ConfigError("grader must be a function (answer, reference) -> bool")
        self.data, self.answers, self.grader = data, answers, grader
        self._sources = {"test": data if data is not None else list(items or []), "train": train, "examples": examples}
        self._loaded: dict[str, list[Problem]] = {}
        self._numeric = answers == "numeric" and grader is None  # a grader gets the reference as written

    def _split(self, which: str) -> list[Problem]:
        if which not in self._loaded:
            source = self._sources[which]
            if source is None:
                raise ConfigError(f"task 'questions' has no {which} items (pass {which}=...)")
            if isinstance(source, (str, Path)):
                self._loaded[which] = _problems_from(_read_items(source), str(source), self._numeric)
            else:
                self._loaded[which] = _problems_from(source, f"{which} items", self._numeric)
        return self._loaded[which]

    def describe(self) -> dict:
        def identity(source: Any) -> Any:
            if source is None or isinstance(source, (str, Path)):
                return identify_source(None if source is None else str(source))
            return f"{len(source)} items@{_fingerprint(source)}"

        described = {"task": self.name, "answers": self.answers}
        described.update({name: identity(source) for name, source in self._sources.items()})
        if self.grader is not None:
            described["grader"] = _grader_identity(self.grader)
        return described

    def problems(self, split: str = "test", limit: int | None = None) -> Iterator[Problem]:
        if split not in ("test", "train"):
            raise ConfigError(f"task 'questions' has no {split!r} split (test or train)")
        yield from self._split(split)[:limit]

    def exemplars(self) -> list[Problem]:
        return [] if self._sources["examples"] is None else self._split("examples")

    def format_prompt(self, problem: Problem) -> str:
        shots = [e for e in self.exemplars() if e.question != problem.question]
        pairs = [(e.question, f"{e.metadata['solution']} The answer is {e.reference}.".strip()) for e in shots]
        return few_shot_prompt(pairs, problem.question)

    def extract(self, text: str) -> str | None:
        if self._numeric:
            return extract_number(text)
        stated = _STATED.findall(text)
        if stated:
            return stated[-1].strip()
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return lines[-1] if lines else None

    def grade(self, problem: Problem, answer: str | None) -> bool | None:
        if problem.reference is None:
            return None
        if answer is None:
            return False
        if self.grader is not None:
            return bool(self.grader(answer, problem.reference))
        if self.answers == "numeric":
            return numbers_equal(answer, problem.reference)
        return answer.strip().casefold() == problem.reference.strip().casefold()
