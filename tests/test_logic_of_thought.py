"""Logic-of-Thought around other strategies: extraction with bounded retries, extension, augmented context."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from doubles import ScriptedEngine
from selfimprove.cli import app
from selfimprove.core.errors import ConfigError
from selfimprove.runs import runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies import base as strategies
from selfimprove.tasks import base as tasks

GOOD = "A: the bear is big\nB: the bear is strong\nC: the bear is fast\nRelations:\nA -> B\nB -> C\n"


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "dev.jsonl"
    row = {
        "id": "p1",
        "context": "If the bear is big then it is strong. If the bear is strong then it is fast.",
        "question": "Is the following statement true, false, or unknown? The bear is fast.",
        "options": ["A) True", "B) False", "C) Unknown"],
        "answer": "C",
    }
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "id": "p2"}) + "\n")
    return path


def reply_with(extraction_by_attempt):
    def reply(prompt, sample_id):
        if prompt.step.startswith("lot-extract-"):
            return extraction_by_attempt(prompt.problem_id, int(prompt.step.rsplit("-", 1)[1]))
        return " The answer is (C)."

    return reply


def test_lot_cot_retries_a_bad_extraction_and_augments_the_context(data, tmp_path):
    # p1 parses at once; p2 writes nonsense first and parses on the first retry.
    engine = ScriptedEngine(reply_with(lambda pid, attempt: GOOD if pid == "p1" or attempt == 1 else "garbage ->"))
    task = tasks.get("proofwriter")(data=str(data))
    strategy = strategies.get("lot+cot")(lot_retries=2)
    store = RunStore(tmp_path / "s.sqlite")
    outcome = runner.execute(task, strategy, engine, store, show_progress=False)
    steps = [(pid, step) for pid, step, _ in engine.calls]
    assert ("p2", "lot-extract-1") in steps and ("p1", "lot-extract-1") not in steps
    assert ("p2", "lot-extract-2") not in steps
    answer_prompts = [p.content for p in engine.prompts if p.step == "greedy"]
    assert all("Additional information: If the bear is big, then the bear is fast." in c for c in answer_prompts)
    assert all("If it is not the case that the bear is fast, then it is not the case that the bear is big." in c
               for c in answer_prompts)  # fmt: skip
    rows = {r["problem_id"]: r for r in store.solutions(outcome.run_id)}
    lot = rows["p2"]["extra"]["lot"]
    assert lot["status"] == "augmented" and lot["attempts"][0]["error"] and lot["attempts"][1]["error"] is None
    assert set(lot["derived"]) == {"A -> C", "not B -> not A", "not C -> not B", "not C -> not A"}
    assert rows["p1"]["correct"] is True

    shown = CliRunner().invoke(app, ["show", outcome.run_id, "--problem", "p2", "--store", str(tmp_path / "s.sqlite")])
    assert shown.exit_code == 0, shown.output
    for text in ("Logic-of-Thought: augmented", "A: the bear is big", "derived", "not C -> not A", "augmented context"):
        assert text in shown.output


def test_extraction_that_never_parses_goes_on_without_augmentation(data, tmp_path):
    engine = ScriptedEngine(reply_with(lambda pid, attempt: "Z -> Q"))
    task = tasks.get("proofwriter")(data=str(data))
    solutions = strategies.get("lot+self-consistency")(lot_retries=1, samples=2).solve(
        list(task.problems()), task, engine
    )
    assert len(engine.calls) == 2 * 2 + 2 * (1 + 2)  # two extraction attempts, greedy + 2 samples, per problem
    for solution in solutions:
        lot = solution.extra["lot"]
        assert lot["status"] == "parse-failed" and len(lot["attempts"]) == 2
        assert "line 2" in lot["attempts"][0]["error"]  # line 1 is the prompt's "Propositions:"
        assert solution.answer == "C"
    assert not any("Additional information" in str(p.content) for p in engine.prompts)


def test_composition_errors():
    with pytest.raises(ConfigError, match="wraps another strategy"):
        strategies.get("lot")
    with pytest.raises(ConfigError, match="does not wrap"):
        strategies.get("cot+self-consistency")
    with pytest.raises(TypeError):
        strategies.get("lot+cot")(samples=3)  # cot takes no samples; the CLI reports this as a ConfigError
