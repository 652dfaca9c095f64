"""Several equally valid ways to work an arithmetic problem, so that a model trained on all of them samples
reasoning paths that differ in structure (issue 24: LMSI and voting need paths whose errors do not agree).

Every format reaches the same answer by a different route and ends with "The answer is N.":
- `chain`: the task's own worked solution, one equation per step (`32 / 4 = 8. 8 - 1 = 7.`).
- `words`: the same steps in words (`32 divided by 4 is 8. 8 minus 1 is 7.`).
- `grouped`: each run of consecutive additions and subtractions netted first, then applied once
  (`+4 - 1 = +3. 20 + 3 = 23.`): a different order of operations (addition is associative).
- `places`: each addition or subtraction split by place value (`24 + 35: 24 + 30 = 54, 54 + 5 = 59.`), each
  multiplication as repeated addition, each division checked by its product (`24 / 4: 4 x 6 = 24, so 6.`).
- `reordered`: within each run of additions and subtractions, the additions first, then the subtractions (the
  running value never goes below what it would have been), each as an equation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from selfimprove.core.errors import ConfigError

SOLUTION_FORMATS = ("chain", "words", "grouped", "places", "reordered")
_WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
_SYMBOLS = {"+": "+", "-": "-", "*": "x", "/": "/"}


def parse_formats(spec: str | Sequence[str]) -> tuple[str, ...]:
    """ "chain,words" -> ("chain", "words"); "all" -> every format; unknown names are a one-line error."""
    names = SOLUTION_FORMATS if spec == "all" else tuple(
        part.strip() for part in (spec.split(",") if isinstance(spec, str) else spec) if part.strip()
    )  # fmt: skip
    unknown = [name for name in names if name not in SOLUTION_FORMATS]
    if not names or unknown:
        raise ConfigError(f"solution formats {spec!r}: choose from {', '.join(SOLUTION_FORMATS)} (or all)")
    return names


def _apply(value: int, op: str, operand: int) -> int:
    return {"+": value + operand, "-": value - operand, "*": value * operand, "/": value // operand}[op]


def _runs(steps: Sequence[Sequence]) -> list[list[tuple[str, int]]]:
    """Steps cut into runs: consecutive additions/subtractions together, each multiplication/division alone."""
    runs: list[list[tuple[str, int]]] = []
    for op, operand in steps:
        additive = op in "+-"
        if additive and runs and runs[-1][0][0] in "+-":
            runs[-1].append((op, operand))
        else:
            runs.append([(op, operand)])
    return runs


def _chain(start: int, steps: Sequence[Sequence], words: bool = False) -> list[str]:
    lines, value = [], start
    for op, operand in steps:
        after = _apply(value, op, operand)
        lines.append(f"{value} {_WORDS[op]} {operand} is {after}." if words else
                     f"{value} {_SYMBOLS[op]} {operand} = {after}.")  # fmt: skip
        value = after
    return lines


def _grouped(start: int, steps: Sequence[Sequence]) -> list[str]:
    lines, value = [], start
    for run in _runs(steps):
        if len(run) == 1:
            lines += _chain(value, run)
            value = _apply(value, *run[0])
            continue
        net = sum(operand if op == "+" else -operand for op, operand in run)
        terms = " ".join(f"{op}{operand}" if i == 0 else f"{op} {operand}" for i, (op, operand) in enumerate(run))
        sign = "+" if net >= 0 else "-"
        lines.append(f"{terms} = {sign}{abs(net)}.")
        after = value + net
        lines.append(f"{value} {sign} {abs(net)} = {after}.")
        value = after
    return lines


def _places(start: int, steps: Sequence[Sequence]) -> list[str]:
    lines, value = [], start
    for op, operand in steps:
        after = _apply(value, op, operand)
        tens, ones = operand - operand % 10, operand % 10
        if op in "+-" and tens and ones:
            middle = _apply(value, op, tens)
            lines.append(f"{value} {op} {operand}: {value} {op} {tens} = {middle}, {middle} {op} {ones} = {after}.")
        elif op == "*":
            lines.append(f"{value} x {operand}: {' + '.join([str(value)] * operand)} = {after}.")
        elif op == "/":
            lines.append(f"{value} / {operand}: {operand} x {after} = {value}, so {after}.")
        else:
            lines.append(f"{value} {op} {operand} = {after}.")
        value = after
    return lines


def _reordered(start: int, steps: Sequence[Sequence]) -> list[str]:
    ordered: list[tuple[str, int]] = []
    for run in _runs(steps):
        ordered += [s for s in run if s[0] != "-"] + [s for s in run if s[0] == "-"]
    return _chain(start, ordered)


def write_solution(structure: dict, fmt: str) -> str:
    """The worked solution of a problem (its `metadata["structure"]`) in format `fmt`."""
    name, items, start, steps = structure["name"], structure["items"], structure["start"], structure["steps"]
    body = {
        "chain": lambda: _chain(start, steps),
        "words": lambda: _chain(start, steps, words=True),
        "grouped": lambda: _grouped(start, steps),
        "places": lambda: _places(start, steps),
        "reordered": lambda: _reordered(start, steps),
    }[fmt]()
    value = start
    for op, operand in steps:
        value = _apply(value, op, operand)
    return " ".join([f"{name} starts with {start} {items}.", *body, f"The answer is {value}."])


def random_solution(structure: dict, formats: Sequence[str], rng: random.Random) -> str:
    """One of `formats`, drawn uniformly (a testbed example's worked solution)."""
    return write_solution(structure, rng.choice(list(formats)))


def closest_format(structure: dict, text: str) -> str:
    """Which format a sampled solution of this problem follows: the one whose correct rendering agrees with `text`
    over the longest prefix (a slip later in the text does not change the route taken before it). Formats that
    render identically for this problem (no run of additions to group or reorder, no two-digit operand) tie, and
    the tie goes to the earlier name in SOLUTION_FORMATS, so "chain" means "not told apart from chain"."""
    text = text.strip()

    def agreement(fmt: str) -> int:
        rendered = write_solution(structure, fmt)
        length = 0
        for a, b in zip(rendered, text):
            if a != b:
                break
            length += 1
        return length

    return max(SOLUTION_FORMATS, key=lambda fmt: (agreement(fmt), -SOLUTION_FORMATS.index(fmt)))
