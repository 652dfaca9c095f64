"""Built-in synthetic arithmetic word problems with exact integer answers (no download).

Difficulty level = number of operations (1 to 6). Level 1 is one addition or subtraction of
small numbers; higher levels chain additions, subtractions, multiplications and exact divisions.
Every answer is computed while the problem is written, so it is correct by construction.

Train and test streams are disjoint by construction: a problem belongs to the test split iff the
SHA-256 of its text falls in the test fifth, and each stream rejects the other's problems.
Each stream is one seeded sequence, so problem i is the same whatever `limit` is.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Problem
from selfimprove.tasks.base import NumericAnswers, TaskBase, registry
from selfimprove.tasks.prompting import FEW_SHOT_STOP, few_shot_prompt

MAX_LEVEL = 6
_NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Dan",
    "Emma",
    "Finn",
    "Grace",
    "Hugo",
    "Ivy",
    "Jack",
    "Kate",
    "Leo",
    "Mia",
    "Noah",
    "Olive",
    "Paul",
    "Rosa",
    "Sam",
    "Tara",
    "Will",
]
_ITEMS = [
    "apples",
    "marbles",
    "stickers",
    "books",
    "pencils",
    "coins",
    "shells",
    "cards",
    "stamps",
    "cookies",
    "balloons",
    "buttons",
    "beads",
    "crayons",
    "toy cars",
]
_GAIN = ["buys {x} more", "finds {x} more", "is given {x} more", "picks up {x} more"]
_LOSE = ["gives away {x}", "loses {x}", "sells {x}", "gives {x} to a friend"]
_MULTIPLY = {
    2: "doubles the number of {items}",
    3: "triples the number of {items}",
    4: "ends up with four times as many {items}",
    5: "ends up with five times as many {items}",
}
_DIVIDE = "shares the {items} equally among {d} friends, keeping one friend's share"


@dataclass(frozen=True)
class _Step:
    op: str  # "+", "-", "*", "/"
    operand: int
    phrase: str


def parse_levels(spec: str | int) -> list[int]:
    """ "1" -> [1]; "1-3" -> [1, 2, 3]; "1,4" -> [1, 4]; every level within 1..6."""
    levels: list[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                levels.extend(range(low, high + 1))
            else:
                levels.append(int(part))
        except ValueError:
            raise ConfigError(f"arithmetic level {spec!r}: expected N, N-M or N,M with levels 1..{MAX_LEVEL}") from None
    if not levels or any(not 1 <= lv <= MAX_LEVEL for lv in levels):
        raise ConfigError(f"arithmetic level {spec!r}: levels must be within 1..{MAX_LEVEL}")
    return levels


def in_test_split(question: str) -> bool:
    return hashlib.sha256(question.encode()).digest()[0] % 5 == 0


def _write_problem(rng: random.Random, level: int) -> tuple[str, str, int, dict]:
    """(question, worked solution, answer, structure) for a chain of `level` operations; the structure (name,
    items, start, steps as [op, operand]) lets other solution formats be written (`arithmetic_solutions.py`)."""
    name, items = rng.choice(_NAMES), rng.choice(_ITEMS)
    small = level == 1
    value = rng.randint(2, 20) if small else rng.randint(2, 40)
    start = value
    steps: list[_Step] = []
    for _ in range(level):
        ops = ["+", "-"] if small else ["+", "-", "*", "/"]
        if value > 200:
            ops = [op for op in ops if op != "*"]
        divisors = [d for d in range(2, 6) if value % d == 0 and value // d >= 1]
        if not divisors and "/" in ops:
            ops.remove("/")
        if value < 2:
            ops = [op for op in ops if op != "-"]
        op = rng.choice(ops)
        if op == "+":
            x = rng.randint(1, 20 if small else 40)
            step = _Step("+", x, rng.choice(_GAIN).format(x=x))
            value += x
        elif op == "-":
            x = rng.randint(1, min(value - 1, 20 if small else 40))
            step = _Step("-", x, rng.choice(_LOSE).format(x=x))
            value -= x
        elif op == "*":
            m = rng.choice(sorted(_MULTIPLY))
            step = _Step("*", m, _MULTIPLY[m].format(items=items))
            value *= m
        else:
            d = rng.choice(divisors)
            step = _Step("/", d, _DIVIDE.format(items=items, d=d))
            value //= d
        steps.append(step)

    sentences = [f"{name} has {start} {items}."]
    for i, step in enumerate(steps):
        sentences.append(f"{'Then ' if i else ''}{name} {step.phrase}.")
    question = " ".join(sentences) + f" How many {items} does {name} have now?"

    work, current = [f"{name} starts with {start} {items}."], start
    for step in steps:
        after = {
            "+": current + step.operand,
            "-": current - step.operand,
            "*": current * step.operand,
            "/": current // step.operand,
        }[step.op]
        symbol = {"*": "x", "/": "/"}.get(step.op, step.op)
        work.append(f"{current} {symbol} {step.operand} = {after}.")
        current = after
    work.append(f"The answer is {current}.")
    structure = {"name": name, "items": items, "start": start, "steps": [[s.op, s.operand] for s in steps]}
    return question, " ".join(work), value, structure


@registry.register("arithmetic")
class ArithmeticTask(NumericAnswers, TaskBase):
    """Seeded synthetic word problems; `level` is a spec like "1", "1-6" or "2,4"."""

    name = "arithmetic"
    stop = FEW_SHOT_STOP

    def __init__(self, level: str | int = "1", seed: int = 0, shots: int = 4, data: str | None = None):
        if data is not None:
            raise ConfigError("task 'arithmetic' is generated, it takes no --data file")
        self.levels = parse_levels(level)
        self.seed = int(seed)
        self.shots = int(shots)
        self._exemplars: dict[int, list[tuple[str, str]]] = {}

    def describe(self) -> dict:
        return {"task": self.name, "levels": self.levels, "seed": self.seed, "shots": self.shots, "generator": 1}

    def problems(self, split: str = "test", limit: int | None = None) -> Iterator[Problem]:
        for index, (question, solution, answer, level, structure) in enumerate(self._stream(split)):
            if limit is not None and index >= limit:
                return
            yield Problem(
                id=f"{split}-{index}",
                question=question,
                reference=str(answer),
                metadata={"level": level, "solution": solution, "structure": structure},
            )

    def _stream(self, split: str) -> Iterator[tuple[str, str, int, int, dict]]:
        if split not in ("train", "test"):
            raise ConfigError(f"arithmetic split {split!r}: expected 'train' or 'test'")
        want_test = split == "test"
        rng = random.Random(f"selfimprove-arithmetic-{self.seed}-{split}")
        seen: set[str] = set()
        index = 0
        while True:
            level = self.levels[index % len(self.levels)]
            question, solution, answer, structure = _write_problem(rng, level)
            if in_test_split(question) != want_test or question in seen:
                continue
            seen.add(question)
            index += 1
            yield question, solution, answer, level, structure

    def exemplars(self, level: int) -> list[tuple[str, str]]:
        """The first `shots` train problems of this level (never a test problem, by construction)."""
        if level not in self._exemplars:
            single = ArithmeticTask(level=level, seed=self.seed, shots=0)
            self._exemplars[level] = [
                (p.question, p.metadata["solution"]) for p in single.problems("train", limit=self.shots)
            ]
        return self._exemplars[level]

    def format_prompt(self, problem: Problem) -> str:
        level = int(problem.metadata.get("level", self.levels[0]))
        return few_shot_prompt(self.exemplars(level), problem.question)
