"""The Python API: `si.run`, your own questions, metrics from Solutions, and settings refused where they are wrong."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

import selfimprove as si
from doubles import ScriptedEngine
from selfimprove.core.errors import ConfigError, DataError, SelfImproveError

README = Path(__file__).resolve().parents[1] / "README.md"


def python_snippet() -> str:
    section = README.read_text().split("## Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_is_five_lines_and_uses_only_the_public_api():
    lines = [line for line in python_snippet().splitlines() if line.strip()]
    assert len(lines) == 5 and lines[0] == "import selfimprove as si"
    for name in re.findall(r"\bsi\.(\w+)", python_snippet()):
        assert name in si.__all__, name


def test_every_public_name_resolves():
    for name in si.__all__:
        assert getattr(si, name) is not None
    with pytest.raises(AttributeError):
        si.no_such_thing  # noqa: B018


def answer_with(replies: dict[str, str]):
    """An engine whose completion for a question is `replies[question]` (the same for every sample)."""

    def reply(prompt, sample_id):
        question = prompt.content.rsplit("Question: ", 1)[1].split("\n", 1)[0]
        return replies[question]

    return ScriptedEngine(reply)


def test_run_your_own_questions_and_resume(tmp_path):
    items = [("What is 7 * 6?", 42), ("What is 15 + 27?", "42"), {"question": "Half of 9?", "answer": 4.5}]
    engine = answer_with({"What is 7 * 6?": " 6 * 7 = 42. The answer is 42.", "What is 15 + 27?": " The answer is 41.",
                          "Half of 9?": " It is 4.50"})  # fmt: skip
    task = si.QuestionsTask(items=items)
    result = si.run(task, si.SelfConsistency(samples=4), engine, store=tmp_path / "runs.sqlite")
    assert result.metrics.problems == 3 and result.metrics.accuracy == pytest.approx(2 / 3)
    assert result.metrics.maj_at_k == pytest.approx({1: 2 / 3, 2: 2 / 3, 4: 2 / 3})
    assert [r["correct"] for r in result.solutions] == [True, False, True]
    again = si.run(task, si.SelfConsistency(samples=4), engine, store=tmp_path / "runs.sqlite")
    assert again.run_id == result.run_id and again.completions_generated == 0 and again.metrics == result.metrics


def test_questions_exact_answers_your_grader_and_a_jsonl_file(tmp_path):
    exact = si.QuestionsTask(items=[("Capital of France?", "Paris")], answers="exact")
    (problem,) = exact.problems()
    assert exact.grade(problem, exact.extract("I think the answer is paris.")) is True
    assert exact.grade(problem, exact.extract("The answer is Lyon.")) is False
    graded = si.QuestionsTask(items=[("Name a prime above 10", "prime")], grader=lambda a, ref: int(a) in (11, 13))
    (prime,) = graded.problems()
    assert graded.grade(prime, graded.extract("The answer is 13.")) and not graded.grade(prime, "12")
    assert graded.describe()["grader"].startswith("test_api.")
    data = tmp_path / "q.jsonl.gz"
    with gzip.open(data, "wt") as out:
        out.write(json.dumps({"id": "a", "question": "1+1?", "answer": 2}) + "\n\n")
    from_file = si.tasks.get("questions")(data=str(data))
    assert [(p.id, p.reference) for p in from_file.problems()] == [("a", "2")]
    assert from_file.describe()["test"].startswith("q.jsonl.gz@")


def test_questions_refuse_bad_items_with_file_line_and_field(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "x?", "answer": 1}) + "\n" + json.dumps({"question": "y?"}) + "\n")
    with pytest.raises(DataError, match=r"q\.jsonl:2.*answer"):
        list(si.QuestionsTask(data=str(data)).problems())
    with pytest.raises(DataError, match="not a number"):
        list(si.QuestionsTask(items=[("q?", "Paris")]).problems())
    with pytest.raises(ConfigError, match="exactly one"):
        si.QuestionsTask()


def test_metrics_from_what_solve_returns_equal_the_stored_metrics(tmp_path):
    task = si.ArithmeticTask(level=1, shots=0)
    problems = list(task.problems(limit=3))
    reference = {p.question: f" The answer is {p.reference}." for p in problems}
    engine = answer_with(reference)
    solutions = si.SelfConsistency(samples=2).solve(problems, task, engine)
    live = si.metrics.compute(solutions, problems=problems)
    stored = si.run(task, si.SelfConsistency(samples=2), engine, store=tmp_path / "r.sqlite", limit=3).metrics
    assert live == stored and live.accuracy == 1.0


def test_run_takes_the_split(tmp_path):
    task = si.ArithmeticTask(level=1, shots=0)
    engine = answer_with({p.question: " The answer is 0." for s in ("train", "test") for p in task.problems(s, 2)})
    store = tmp_path / "r.sqlite"
    test = si.run(task, "cot", engine, store=store, limit=2)
    train = si.run(task, "cot", engine, store=store, limit=2, split="train")
    assert train.run_id != test.run_id
    assert {r["question"] for r in train.solutions} == {p.question for p in task.problems("train", 2)}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: si.SelfConsistency(samples=0), r"samples = 0 \(--samples\): must be >= 1"),
        (lambda: si.SelfConsistency(samples=-3), "must be >= 1"),
        (lambda: si.SelfConsistency(temperature=-1), r"temperature = -1 \(--temperature\): must be >= 0"),
        (lambda: si.AdaptiveConsistency(top_p=1.5), "must be > 0 and <= 1"),
        (lambda: si.SelfCorrect(turns=0), "turns = 0"),
        (lambda: si.ChainOfThought(max_tokens=0), "max_tokens = 0"),
        (lambda: si.TreeOfThoughts(temperature=-0.5), "temperature"),
        (lambda: si.Sampling(temperature=-1), "temperature"),
        (lambda: si.SelfConsistency(samples="many"), "expected a number"),
    ],
)
def test_wrong_settings_are_refused_where_they_are_declared(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_limits_and_empty_or_binary_data_are_refused(tmp_path):
    task = si.ArithmeticTask(level=1)
    with pytest.raises(ConfigError, match=r"limit = -1 \(--limit\): must be >= 1"):
        si.run(task, "cot", ScriptedEngine(lambda p, i: ""), store=tmp_path / "r.sqlite", limit=-1)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty.jsonl: holds no records"):
        list(si.GSM8KTask(data=str(empty)).problems())
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\n\xff\xfe\x00garbage\n")
    with pytest.raises(DataError, match=r"model\.bin:2: not UTF-8"):
        list(si.GSM8KTask(data=str(binary)).problems())
    not_gzip = tmp_path / "plain.jsonl.gz"
    not_gzip.write_text("{}\n")
    with pytest.raises(DataError, match="not a readable gzip file"):
        list(si.QuestionsTask(data=str(not_gzip)).problems())


def test_unknown_names_are_spelled_right():
    with pytest.raises(SelfImproveError, match="valid strategies: "):
        si.strategies.get("nope")
    with pytest.raises(SelfImproveError, match="valid tasks: "):
        si.tasks.get("nope")


def test_the_share_of_samples_that_ran_to_max_tokens_is_reported(tmp_path):
    from dataclasses import replace

    from rich.console import Console

    from selfimprove.reports.console import metrics_table

    class LoopsOnSampleZero(ScriptedEngine):
        def generate(self, prompts, n, sampling, on_complete=None):
            rows = super().generate(prompts, n, sampling)  # unannounced: the recorder stores what comes back
            return [[replace(c, finish_reason="length") if i == 0 else c for i, c in enumerate(row)] for row in rows]

    engine = LoopsOnSampleZero(lambda prompt, i: " 2 + 2 = 2 + 2 = 2 + 2 =")
    result = si.run(si.ArithmeticTask(level=1), si.SelfConsistency(samples=4), engine, store=tmp_path / "r", limit=2)
    assert result.metrics.length_stop_rate == pytest.approx(2 / 5)  # the greedy answer and sample 0 of 4, each
    console = Console(width=100, record=True)
    console.print(metrics_table(result.run_id, result.label, "self-consistency", result.metrics))
    text = console.export_text()
    assert "ran to max_tokens" in text and "40.0%" in text
