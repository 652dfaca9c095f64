"""MATH answers: extraction from LaTeX, grading by equivalence, the dev slice against itself in other spellings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy
from math_verify import parse

from selfimprove.core.errors import DataError
from selfimprove.grading.math_answers import canonical_answer, extract_math_answer, last_boxed, math_equal
from selfimprove.tasks.mathematics import MathTask

MATH500 = Path(__file__).resolve().parents[2] / "shared" / "data" / "math500" / "math500_dev100.jsonl"
needs_data = pytest.mark.skipif(not MATH500.is_file(), reason="../shared/data/math500 not present")


def test_last_boxed_handles_nested_braces_and_bare_boxes():
    assert last_boxed(r"so $\boxed{\frac{1}{\sqrt{2}}}$ and later $\boxed{\left( 3, \frac{\pi}{2} \right)}$") == (
        r"\left( 3, \frac{\pi}{2} \right)"
    )
    assert last_boxed(r"the total is \boxed 12 apples") == "12"
    assert last_boxed(r"\fbox{x+1}") == "x+1"
    assert last_boxed(r"unfinished \boxed{\frac{1}{2}") is None


def test_extract_falls_back_to_the_answer_is():
    assert extract_math_answer("Adding them, the answer is $\\frac{3}{4}$.\nQuestion: next") == "\\frac{3}{4}"
    assert extract_math_answer("The answer is 12.") == "12"
    assert extract_math_answer("no final answer here") is None
    assert extract_math_answer("The height is $h = 3.4$ cm.") == "3.4"
    assert extract_math_answer("So $x$ is $\\frac{1}{2}$.") == "\\frac{1}{2}"


@pytest.mark.parametrize(
    ("reference", "answer"),
    [
        (r"\frac{1}{2}", "0.5"),
        (r"\frac{1}{2}", r"\dfrac12"),
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\pi/2)"),
        (r"90^\circ", "90"),
        (r"\text{Evelyn}", "Evelyn"),
        (r"2\sqrt{2}", r"\sqrt{8}"),
        (r"[0, 1)", r"\left[0,1\right)"),
        (r"\{1, 2\}", r"\{2, 1\}"),
        ("10000", "10,000"),
    ],
)
def test_equivalent_answers_grade_equal(reference, answer):
    assert math_equal(reference, answer)


@pytest.mark.parametrize(
    ("reference", "answer"),
    [(r"\frac{1}{2}", "0.52"), (r"(3, \frac{\pi}{2})", r"(\frac{\pi}{2}, 3)"), ("[0, 1)", "[0, 1]"), ("7", None)],
)
def test_different_answers_grade_unequal(reference, answer):
    assert not math_equal(reference, answer)


def test_canonical_answer_merges_spellings_of_one_value():
    assert canonical_answer("0.5") == canonical_answer(r"\frac{1}{2}") == canonical_answer(r"\dfrac{1}{2}")
    assert canonical_answer(r"\text{Evelyn}") == canonical_answer("Evelyn")


def _alternative_spellings(reference: str) -> list[str]:
    """Other ways to write the same answer, built from the reference by rules that keep its value."""
    spellings = [
        reference.replace(r"\frac", r"\dfrac"),
        reference.replace(" ", ""),
        reference.replace(r"\left", "").replace(r"\right", ""),
        canonical_answer(reference),
    ]
    parsed = parse(f"${reference}$")
    number = parsed[0] if parsed else None
    if isinstance(number, sympy.Rational) and not isinstance(number, sympy.Integer):
        denominator = int(number.q)
        while denominator % 2 == 0:
            denominator //= 2
        while denominator % 5 == 0:
            denominator //= 5
        if denominator == 1:  # a terminating decimal is the same value
            spellings.append(str(sympy.Float(number, 12)).rstrip("0"))
    return spellings


@needs_data
def test_every_dev_answer_grades_equal_to_itself_in_other_spellings():
    task = MathTask(data=str(MATH500))
    problems = list(task.problems())
    assert len(problems) == 100
    decimals = 0
    for problem in problems:
        assert task.grade(problem, task.extract(problem.metadata["solution"])), problem.id
        for spelling in _alternative_spellings(problem.reference):
            decimals += "." in spelling and "." not in problem.reference
            assert task.grade(problem, task.extract(f"The answer is $\\boxed{{{spelling}}}$.")), (problem.id, spelling)
    assert decimals >= 3  # the fraction-to-decimal rule did apply


@needs_data
def test_dev_answers_of_different_problems_do_not_grade_equal():
    task = MathTask(data=str(MATH500))
    problems = list(task.problems())
    false_matches = [
        (a.reference, b.reference)
        for a, b in zip(problems, problems[1:])
        if task.grade(a, task.extract(f"\\boxed{{{b.reference}}}"))
        and not math_equal(b.reference, a.reference)  # equal values are allowed to match
    ]
    assert false_matches == []


@needs_data
def test_levels_and_subjects_are_kept(tmp_path):
    task = MathTask(data=str(MATH500), level="1-2")
    problems = list(task.problems())
    assert problems and {p.metadata["level"] for p in problems} <= {"1", "2"}
    assert all(p.metadata["subject"] for p in problems)


def test_original_math_format_and_bad_rows(tmp_path):
    data = tmp_path / "math.jsonl"
    rows = [
        {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "level": "Level 1", "type": "Algebra"},
        {"problem": "What is $2+2$?", "solution": "Four."},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as error:
        list(MathTask(data=str(data)).problems())
    assert "math.jsonl:2" in str(error.value) and "solution" in str(error.value)
    data.write_text(json.dumps(rows[0]) + "\n")
    (problem,) = MathTask(data=str(data)).problems()
    assert problem.reference == "2" and problem.metadata == {
        "solution": "It is $\\boxed{2}$.",
        "line": 1,
        "level": "1",
        "subject": "Algebra",
    }
