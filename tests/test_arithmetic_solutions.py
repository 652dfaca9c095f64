"""The arithmetic task's solution formats: the same answer by different routes, every equation true."""

from __future__ import annotations

import re

import pytest

from selfimprove.core.errors import ConfigError
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.arithmetic_solutions import SOLUTION_FORMATS, closest_format, parse_formats, write_solution

EQUATION = re.compile(r"(\d+) ([-+x/]) (\d+) = (\d+)")
IN_WORDS = re.compile(r"(\d+) (plus|minus|times|divided by) (\d+) is (\d+)")
NETTED = re.compile(r"((?:[-+] ?\d+ ?)+)= ([-+]\d+)\.")
APPLY = {"+": int.__add__, "-": int.__sub__, "x": int.__mul__, "/": int.__floordiv__,
         "plus": int.__add__, "minus": int.__sub__, "times": int.__mul__, "divided by": int.__floordiv__}  # fmt: skip


def _problems(limit=400):
    return list(ArithmeticTask(level="1-6", shots=0).problems("train", limit=limit))


def test_chain_is_the_tasks_own_worked_solution():
    for problem in _problems():
        assert write_solution(problem.metadata["structure"], "chain") == problem.metadata["solution"]


@pytest.mark.parametrize("fmt", SOLUTION_FORMATS)
def test_every_format_reaches_the_answer_with_true_steps(fmt):
    for problem in _problems():
        text = write_solution(problem.metadata["structure"], fmt)
        assert text.endswith(f"The answer is {problem.reference}.")
        if fmt == "places":
            for operand, sums, product in re.findall(r"x (\d+): ((?:\d+ \+ )+\d+) = (\d+)", text):
                assert len(sums.split(" + ")) == int(operand) and sum(map(int, sums.split(" + "))) == int(product)
            text = re.sub(r"(x \d+): (?:\d+ \+ )+\d+ = \d+", r"\1:", text)  # repeated sums checked above, as a whole
        for a, op, b, c in EQUATION.findall(text) + IN_WORDS.findall(text):
            assert APPLY[op](int(a), int(b)) == int(c), text
        for terms, net in NETTED.findall(text):
            assert sum(int(t.replace(" ", "")) for t in re.findall(r"[-+] ?\d+", terms)) == int(net), text


def test_formats_differ_where_there_is_room_to():
    problem = next(p for p in _problems() if [op for op, _ in p.metadata["structure"]["steps"]] == ["+", "-", "+"])
    texts = {fmt: write_solution(problem.metadata["structure"], fmt) for fmt in SOLUTION_FORMATS}
    assert len(set(texts.values())) == len(SOLUTION_FORMATS)


def test_format_lists_are_checked():
    assert parse_formats("all") == SOLUTION_FORMATS and parse_formats("chain, words") == ("chain", "words")
    with pytest.raises(ConfigError, match="choose from chain"):
        parse_formats("chain,zigzag")
    with pytest.raises(ConfigError):
        parse_formats("")


def test_testbed_rows_draw_a_format_per_example_reproducibly():
    from selfimprove.training.testbed import testbed_rows

    plain = testbed_rows("2-3", 200)
    mixed = testbed_rows("2-3", 200, formats="all")
    assert mixed == testbed_rows("2-3", 200, formats="all")
    assert [r["prompt"] for r in plain] == [r["prompt"] for r in mixed]
    assert sum(a["completion"] != b["completion"] for a, b in zip(plain, mixed)) > 80
    assert sum(" plus " in r["completion"] or " minus " in r["completion"] for r in mixed) > 20


def test_closest_format_names_the_route_a_sample_took_even_after_a_slip():
    def distinct(p):
        return len({write_solution(p.metadata["structure"], f) for f in SOLUTION_FORMATS})

    problem = next(p for p in _problems() if distinct(p) == 5)
    structure = problem.metadata["structure"]
    for fmt in SOLUTION_FORMATS:
        text = write_solution(structure, fmt)
        assert closest_format(structure, text) == fmt
        slipped = text[: len(text) - 8] + "9999."  # the end of the text wrong
        assert closest_format(structure, slipped) == fmt


def test_closest_format_gives_ties_to_chain():
    problem = next(
        p for p in _problems() if write_solution(p.metadata["structure"], "grouped") == p.metadata["solution"]
    )
    assert closest_format(problem.metadata["structure"], problem.metadata["solution"]) == "chain"
