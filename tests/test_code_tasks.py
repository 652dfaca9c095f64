"""Code tasks: program extraction, pass@k, MBPP and HumanEval graded in the sandbox, runs with pass@k stored."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from doubles import ScriptedEngine
from selfimprove.core.errors import DataError
from selfimprove.grading.code import extract_program, pass_at_k
from selfimprove.runs import metrics, runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.cot import ChainOfThought
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.tasks.humaneval import HumanEvalTask
from selfimprove.tasks.mbpp import MBPPTask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MBPP = SHARED / "mbpp"
HUMANEVAL = SHARED / "humaneval" / "example_problem.jsonl"
needs_data = pytest.mark.skipif(not MBPP.is_dir(), reason="../shared/data not present")


def test_extract_program_from_fences_and_plain_continuations():
    chat = "Here you go:\n```python\ndef f(x):\n    return x\n```\nIt returns x."
    assert extract_program(chat) == "def f(x):\n    return x"
    two = "```\nimport os\n```\nand\n```py\ndef g():\n    pass\n```"
    assert extract_program(two, entry_point="g") == "def g():\n    pass"
    assert extract_program("    return 1\n\ndef other():\n    pass", stops=("\ndef",)) == "    return 1"
    assert extract_program("   \n[DONE]", stops=("[DONE]",)) is None
    assert extract_program("```python\ndef f():\n    return 2\n") == "def f():\n    return 2"  # unclosed fence


def test_pass_at_k_matches_the_combinatorial_definition():
    for n, c, k in itertools.product(range(1, 8), range(0, 8), range(1, 8)):
        if c > n or k > n:
            continue
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(exact)
    assert pass_at_k(200, 0, 100) == 0.0 and pass_at_k(200, 200, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


@needs_data
@pytest.mark.parametrize("split", ["mbpp_prompt", "mbpp_validation"])
def test_every_mbpp_reference_solution_passes_its_own_tests(split):
    task = MBPPTask(data=str(MBPP / f"{split}.jsonl"))
    problems = list(task.problems())
    task.grade_many([(p, p.reference) for p in problems])
    failing = {p.id: task.grade_detail(p, p.reference) for p in problems if not task.grade(p, p.reference)}
    assert failing == {}


@needs_data
@pytest.mark.slow  # 374 programs: about a minute on two cores
def test_every_mbpp_train_reference_solution_passes_its_own_tests():
    task = MBPPTask(data=str(MBPP / "mbpp_train.jsonl"))
    problems = list(task.problems())
    task.grade_many([(p, p.reference) for p in problems])
    failing = {p.id: task.grade_detail(p, p.reference) for p in problems if not task.grade(p, p.reference)}
    assert failing == {}


@needs_data
def test_mbpp_prompt_and_grading():
    task = MBPPTask(data=str(MBPP / "mbpp_validation.jsonl"))
    problem = next(task.problems())
    prompt = task.format_prompt(problem)
    assert prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3 and prompt.endswith("[BEGIN]\n")
    assert problem.question in prompt and problem.metadata["tests"][0] in prompt
    answer = task.extract(problem.reference + "\n[DONE]\nYou are an expert Python programmer, and here")
    assert task.grade(problem, answer)
    wrong = task.extract("def find_Min_Sum(num):\n    return 0\n[DONE]")
    assert task.grade(problem, wrong) is False
    assert task.grade_detail(problem, wrong).startswith("failed: AssertionError")
    assert task.grade(problem, None) is False and task.grade_detail(problem, None).startswith("no-code")


def test_mbpp_bad_rows_name_file_line_and_field(tmp_path):
    data = tmp_path / "mbpp.jsonl"
    data.write_text(json.dumps({"task_id": 1, "text": "t", "code": "x = 1", "test_list": "assert x"}) + "\n")
    with pytest.raises(DataError) as error:
        list(MBPPTask(data=str(data)).problems())
    assert "mbpp.jsonl:1" in str(error.value) and "test_list" in str(error.value)


@needs_data
def test_humaneval_continuations_and_fenced_redefinitions():
    task = HumanEvalTask(data=str(HUMANEVAL))
    (problem,) = task.problems()
    assert task.format_prompt(problem) == problem.question
    assert task.grade(problem, task.extract(problem.reference + "\n\ndef unrelated():\n    pass\n"))
    fenced = "```python\ndef return1():\n    return 1\n```"
    assert task.grade(problem, task.extract(fenced))
    assert task.grade(problem, task.extract("    return 2\n")) is False


@needs_data
def test_runs_store_pass_at_k_and_sandbox_statuses(tmp_path):
    task = MBPPTask(data=str(MBPP / "mbpp_validation.jsonl"))
    problems = {p.id: p for p in task.problems(limit=3)}

    def reply(prompt, sample_id):
        # Sample 0 and 2 right, 1 wrong and 3 an infinite loop, on every problem.
        problem = problems[prompt.problem_id]
        if sample_id in (0, 2):
            return problem.reference + "\n[DONE]"
        if sample_id == 1:
            return "def nothing():\n    pass\n[DONE]"
        return "while True:\n    pass\n[DONE]"

    task = MBPPTask(data=str(MBPP / "mbpp_validation.jsonl"), timeout=2)
    store = RunStore(tmp_path / "runs.sqlite")
    outcome = runner.execute(
        task, SelfConsistency(samples=4, temperature=0.7), ScriptedEngine(reply), store, limit=3, show_progress=False
    )
    m = metrics.compute(store.solutions(outcome.run_id))
    assert m.pass_at_k == pytest.approx({1: 0.5, 2: 1 - 1 / 6, 4: 1.0})
    assert m.grade_statuses["passed"] == 3 * 2 + 3  # two right samples per problem, and the greedy one
    assert m.grade_statuses["timeout"] == 3 and m.grade_statuses["error"] == 3
    assert m.accuracy == 1.0

    greedy = runner.execute(task, ChainOfThought(), ScriptedEngine(reply), store, limit=3, show_progress=False)
    assert metrics.compute(store.solutions(greedy.run_id)).accuracy == 1.0


@needs_data
def test_grade_command_reports_pass_at_k_statuses_and_writes_results(tmp_path):
    from typer.testing import CliRunner

    from selfimprove.cli import app

    rows = [json.loads(line) for line in (MBPP / "mbpp_validation.jsonl").read_text().splitlines()[:2]]
    completions = tmp_path / "samples.jsonl"
    with completions.open("w") as out:
        for row in rows:
            out.write(json.dumps({"task_id": row["task_id"], "completion": row["code"]}) + "\n")
            out.write(json.dumps({"task_id": row["task_id"], "completion": "```python\nraise ValueError\n```"}) + "\n")
    results = tmp_path / "results.jsonl"
    args = ["grade", "--task", "mbpp", "--data", str(MBPP / "mbpp_validation.jsonl"), "--completions"]
    outcome = CliRunner().invoke(app, [*args, str(completions), "-o", str(results), "--no-progress"])
    assert outcome.exit_code == 0, outcome.output
    text = " ".join(outcome.output.replace("│", " ").split())
    assert "problems graded 2 of 90" in text and "pass@1 50.0%" in text and "pass@2 100.0%" in text
    assert "passed 2" in text and "error 2" in text
    written = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["passed"] for r in written] == [True, False, True, False]
    assert written[1]["result"].startswith("error: ValueError")

    completions.write_text(json.dumps({"task_id": 1, "completion": "x"}) + "\n")
    outcome = CliRunner().invoke(app, [*args, str(completions), "--no-progress"])
    assert outcome.exit_code == 2 and "samples.jsonl:1" in outcome.output and "task_id" in outcome.output
