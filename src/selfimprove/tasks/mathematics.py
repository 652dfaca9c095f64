"""Task `math`: competition mathematics (Hendrycks et al. 2021) in the MATH or MATH-500 format.

MATH-500 lines hold `problem`, `solution`, `answer`, `subject`, `level` (1-5) and `unique_id`;
original MATH lines hold `problem`, `solution` (the answer inside its last `\\boxed{}`), `type`
(the subject) and `level` ("Level 3"). Answers are graded by mathematical equivalence
(grading/math_answers.py). Few-shot exemplars come from a `fewshot` file in either format, else
from the four short problems below (written for this project), each ending in a boxed answer.
"""

from __future__ import annotations

import re
from pathlib import Path

from selfimprove.core.errors import ConfigError, DataError
from selfimprove.core.types import Problem
from selfimprove.grading.math_answers import canonical_answer, extract_math_answer, last_boxed, math_equal
from selfimprove.tasks.base import FileBackedTask, registry
from selfimprove.tasks.jsonl import identify_source, read_records, require_str
from selfimprove.tasks.prompting import FEW_SHOT_STOP, few_shot_prompt

BUILTIN_EXEMPLARS = (
    (
        "What is the sum of the roots of $x^2 - 7x + 10 = 0$?",
        "The quadratic factors as $(x-2)(x-5)=0$, so the roots are $2$ and $5$ and their sum is $7$. "
        "The answer is $\\boxed{7}$.",
    ),
    (
        "Simplify $\\frac{3}{4} + \\frac{1}{6}$.",
        "With the common denominator $12$: $\\frac{9}{12} + \\frac{2}{12} = \\frac{11}{12}$. "
        "The answer is $\\boxed{\\frac{11}{12}}$.",
    ),
    (
        "How many positive divisors does $36$ have?",
        "$36 = 2^2 \\cdot 3^2$, so it has $(2+1)(2+1) = 9$ positive divisors. The answer is $\\boxed{9}$.",
    ),
    (
        "Find all $x$ with $|x - 3| < 2$. Express your answer in interval notation.",
        "$|x-3|<2$ means $-2 < x - 3 < 2$, that is $1 < x < 5$. The answer is $\\boxed{(1,5)}$.",
    ),
)


def _level(value: object, path: str | Path, line: int) -> str | None:
    if value is None:
        return None
    match = re.search(r"\d+", str(value))
    if match is None:
        raise DataError(path, f"expected a level such as 3 or 'Level 3', got {value!r:.40}", line=line, field="level")
    return match.group(0)


def load_math(path: str | Path, split: str = "test") -> list[Problem]:
    """Every problem of a MATH or MATH-500 JSONL file (or hub dataset)."""
    problems = []
    for line, record in read_records(path, split):
        question = require_str(record, "problem", path, line)
        solution = record.get("solution") if isinstance(record.get("solution"), str) else ""
        answer = record.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            answer = last_boxed(solution)
            if answer is None:
                why = "no 'answer' field and no \\boxed{} answer in the solution"
                raise DataError(path, why, line=line, field="solution")
        metadata: dict = {"solution": solution, "line": line}
        level = _level(record.get("level"), path, line)
        if level is not None:
            metadata["level"] = level
        subject = record.get("subject") or record.get("type")
        if isinstance(subject, str):
            metadata["subject"] = subject
        identifier = record.get("unique_id")
        problems.append(
            Problem(
                id=identifier if isinstance(identifier, str) and identifier else f"{Path(str(path)).stem}-{line}",
                question=question.strip(),
                reference=answer.strip(),
                metadata=metadata,
            )
        )
    return problems


@registry.register("math")
class MathTask(FileBackedTask):
    """`data`: a MATH / MATH-500 JSONL file (or hub name); `fewshot`: a file exemplars come from;
    `level`: only these levels (1-5, e.g. `3` or `1-2`)."""

    name = "math"
    stop = FEW_SHOT_STOP

    def __init__(self, data: str | None = None, fewshot: str | None = None, shots: int = 4, level: str | None = None):
        super().__init__(data, "a MATH or MATH-500 JSONL file (problem, solution)")
        self.fewshot, self.shots = fewshot, int(shots)
        self.levels = _parse_levels(level)

    def describe(self) -> dict:
        return {
            "task": self.name,
            "data": identify_source(self.data),
            "fewshot": identify_source(self.fewshot),
            "shots": self.shots,
            "levels": sorted(self.levels) if self.levels else None,
        }

    def load(self, source: str, split: str) -> list[Problem]:
        return load_math(source, split)

    def split_files(self) -> dict[str, str | None]:
        return {"test": self.data, "train": self.fewshot}

    def select(self, problems: list[Problem]) -> list[Problem]:
        return [p for p in problems if not self.levels or p.metadata.get("level") in self.levels]

    def exemplars(self) -> list[tuple[str, str]]:
        if self.shots == 0:
            return []
        if self.fewshot is None:
            return list(BUILTIN_EXEMPLARS[: self.shots])
        pool = self.loaded("train")[: self.shots + 1]
        return [(p.question, f"{p.metadata['solution']} The answer is $\\boxed{{{p.reference}}}$.") for p in pool]

    def format_prompt(self, problem: Problem) -> str:
        shots = [(q, a) for q, a in self.exemplars() if q != problem.question][: self.shots]
        return few_shot_prompt(shots, problem.question)

    def extract(self, text: str) -> str | None:
        answer = extract_math_answer(text)
        return canonical_answer(answer) if answer else None

    def grade(self, problem: Problem, answer: str | None) -> bool | None:
        if problem.reference is None:
            return None
        return math_equal(problem.reference, answer)


def _parse_levels(level: str | None) -> set[str]:
    if level in (None, ""):
        return set()
    levels: set[str] = set()
    for part in str(level).split(","):
        low, _, high = part.partition("-")
        try:
            levels.update(str(n) for n in range(int(low), int(high or low) + 1))
        except ValueError:
            raise ConfigError(f"level {level!r}: expected levels such as 3, 1-2 or 1,3") from None
    return levels
