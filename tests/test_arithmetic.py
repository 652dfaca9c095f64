import re

import pytest

from selfimprove.core.errors import ConfigError
from selfimprove.tasks.arithmetic import ArithmeticTask, in_test_split, parse_levels


def solve_question(question: str) -> int:
    """An independent reading of the generated text, to check answers are right by construction."""
    sentences = [s.strip() for s in question.split(".") if s.strip()]
    value = int(re.search(r"has (\d+)", sentences[0]).group(1))
    for sentence in sentences[1:]:
        if sentence.startswith("How many"):
            break
        number = re.search(r"(\d+)", sentence)
        x = int(number.group(1)) if number else None
        if re.search(r"(buys|finds|is given|picks up) \d+ more", sentence):
            value += x
        elif re.search(r"(gives away|loses|sells|gives) \d+", sentence) and "among" not in sentence:
            value -= x
        elif "doubles" in sentence:
            value *= 2
        elif "triples" in sentence:
            value *= 3
        elif "four times" in sentence:
            value *= 4
        elif "five times" in sentence:
            value *= 5
        elif "among" in sentence:
            assert value % x == 0, question
            value //= x
        else:
            raise AssertionError(f"unreadable step {sentence!r}")
    return value


@pytest.mark.parametrize("level", range(1, 7))
def test_answers_are_correct_by_construction(level):
    task = ArithmeticTask(level=level, seed=3)
    for problem in task.problems("test", limit=150):
        assert problem.metadata["level"] == level
        answer = int(problem.reference)
        assert answer >= 0
        assert solve_question(problem.question) == answer
        # The worked solution has `level` equations, each right, ending in the reference.
        equations = re.findall(r"(\d+) ([-+x/]) (\d+) = (\d+)", problem.metadata["solution"])
        assert len(equations) == level
        for a, op, b, c in equations:
            a, b, c = int(a), int(b), int(c)
            assert {"+": a + b, "-": a - b, "x": a * b, "/": a // b}[op] == c
        assert problem.metadata["solution"].endswith(f"The answer is {answer}.")


def test_level_one_is_small_addition_or_subtraction():
    for problem in ArithmeticTask(level=1).problems(limit=100):
        numbers = [int(n) for n in re.findall(r"\d+", problem.question)]
        assert len(numbers) == 2 and max(numbers) <= 20


def test_deterministic_and_limit_is_a_prefix():
    a = [p.question for p in ArithmeticTask(level="1-6", seed=7).problems(limit=40)]
    b = [p.question for p in ArithmeticTask(level="1-6", seed=7).problems(limit=20)]
    c = [p.question for p in ArithmeticTask(level="1-6", seed=8).problems(limit=40)]
    assert a[:20] == b
    assert a != c
    assert len(set(a)) == len(a)


def test_train_and_test_streams_are_disjoint():
    task = ArithmeticTask(level="1-6", seed=0)
    test = {p.question for p in task.problems("test", limit=600)}
    train = {p.question for p in task.problems("train", limit=2400)}
    assert not test & train
    assert all(in_test_split(q) for q in test)
    assert not any(in_test_split(q) for q in train)


def test_prompt_uses_train_exemplars_of_the_same_level():
    task = ArithmeticTask(level="1,3", shots=3)
    problems = list(task.problems(limit=2))
    for problem in problems:
        prompt = task.format_prompt(problem)
        questions = re.findall(r"Question: (.*)\n", prompt)[:-1]
        assert len(questions) == 3
        assert not any(in_test_split(q) for q in questions)
        assert problem.question not in questions
        level = problem.metadata["level"]
        answers = re.findall(r"Answer: (.*)\n", prompt)
        assert len(answers) == 3
        assert all(a.count(" = ") == level for a in answers)
        assert prompt.endswith(f"Question: {problem.question}\nAnswer:")


def test_grade_and_extract():
    task = ArithmeticTask()
    problem = next(task.problems(limit=1))
    assert task.grade(problem, task.extract(f"so... The answer is {problem.reference}."))
    assert not task.grade(problem, None)


@pytest.mark.parametrize("spec, levels", [("1", [1]), ("1-3", [1, 2, 3]), ("2,5", [2, 5]), (4, [4])])
def test_parse_levels(spec, levels):
    assert parse_levels(spec) == levels


@pytest.mark.parametrize("spec", ["0", "7", "a", "1-9", ""])
def test_bad_levels_are_clear_errors(spec):
    with pytest.raises(ConfigError, match="level"):
        parse_levels(spec)
