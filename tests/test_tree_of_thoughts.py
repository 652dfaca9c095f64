"""Tree-of-thoughts: sentence steps, ratings, beam pruning, the best leaf, the stored tree and `show`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from doubles import ScriptedEngine
from selfimprove.cli import app
from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Completion
from selfimprove.runs import runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies import base as strategies
from selfimprove.strategies.tree_of_thoughts import first_step, rating_of, value_prompt
from selfimprove.tasks import base as tasks

QUESTION = "Mia has 13 coins. Mia is given 13 more. How many coins does Mia have now?"


@pytest.fixture
def task(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"question": QUESTION, "answer": "13 + 13 = 26\n#### 26"}) + "\n")
    return tasks.get("gsm8k")(data=str(path))


def test_a_step_is_the_first_sentence_and_final_when_it_answers_or_the_answer_ends():
    assert first_step(Completion(" Mia has 13 coins. 13 + 13 = 26.", finish_reason="length")) == (
        " Mia has 13 coins.",
        False,
    )
    assert first_step(Completion(" She pays 3.5 dollars. Then", finish_reason="length")) == (
        " She pays 3.5 dollars.",
        False,
    )
    assert first_step(Completion(" 13 + 13\n= 26", finish_reason="stop")) == (" 13 + 13", False)
    assert first_step(Completion(" The answer is 26. Next", finish_reason="length")) == (" The answer is 26.", True)
    assert first_step(Completion(" So she has 26 coins.\n", finish_reason="stop")) == (" So she has 26 coins.", True)
    assert first_step(Completion(" So she has 26", finish_reason="length")) == (" So she has 26", False)
    assert first_step(Completion("  ", finish_reason="stop")) == ("", True)


def test_ratings_and_the_value_prompt():
    assert rating_of(" Sure.") == "sure" and rating_of(" impossible") == "impossible" and rating_of(" maybe") is None
    prompt = value_prompt("Q?", " Mia has 13 coins.")
    assert prompt.endswith("Question: Q?\nPartial answer: Mia has 13 coins.\nJudgement:")


def scripted(prompt, sample_id):
    """Proposals by where the partial answer stands; ratings: anything mentioning 30 is impossible."""
    text = prompt.content
    if prompt.step.startswith("tot-value-"):
        partial = text.rsplit("Partial answer:", 1)[1]
        return " impossible" if "30" in partial else " sure"
    if prompt.step.startswith("tot-finish-"):
        return " 13 + 13 = 26. The answer is 26."
    if text.endswith("Answer:"):
        return [" Mia starts with 13 coins. 13 + 13 = 26.", " 13 + 13 = 30. The answer is 30.", " The answer is 30."][
            sample_id
        ]
    if text.endswith("13 coins."):
        return [" 13 + 13 = 26. The", " The answer is 26.", " 13 + 13 = 26."][sample_id]
    if text.endswith("= 26."):
        return " The answer is 26."
    return " The answer is 30."


def test_the_beam_keeps_rated_steps_and_the_best_leaf_answers(task, tmp_path):
    engine = ScriptedEngine(scripted)
    strategy = strategies.get("tree-of-thoughts")(breadth=3, beam=2, depth=3)
    store = RunStore(tmp_path / "s.sqlite")
    outcome = runner.execute(task, strategy, engine, store, show_progress=False)
    # Depth 1: 3 proposals from the root, 3 ratings. Depth 2: two kept states x 3 proposals, 3 distinct
    # children rated. Depth 3: one open state x 3 proposals, 1 distinct child rated. No finishing needed.
    steps = [step for _, step, _ in engine.calls]
    assert sum(s.startswith("tot-expand-") for s in steps) == 3 + 6 + 3
    assert sum(s.startswith("tot-value-") for s in steps) == 3 + 3 + 1
    assert not any(s.startswith("tot-finish-") for s in steps)

    (row,) = store.solutions(outcome.run_id)
    assert row["answer"] == "26" and row["correct"] is True
    tree = row["extra"]["tree"]
    nodes = {n["id"]: n for n in tree["nodes"]}
    assert [nodes[i]["step"] for i in (1, 2, 3)] == ["Mia starts with 13 coins.", "13 + 13 = 30.", "The answer is 30."]
    assert nodes[1]["value"] == 20 and nodes[2]["value"] == pytest.approx(0.001)
    assert nodes[1]["kept"] and nodes[2]["kept"] and nodes[3]["final"] and nodes[3]["answer"] == "30"
    assert tree["duplicates"] == 1 + 2 + 2
    assert tree["best"] == 5 and nodes[5]["parent"] == 1 and nodes[5]["answer"] == "26"  # ties with #7: earliest
    assert row["votes"] == {"30": 2, "26": 2}
    assert {s["step"] for s in row["samples"]} >= {"tot-expand-0", "tot-value-1", "tot-expand-4"}

    shown = CliRunner().invoke(
        app, ["show", outcome.run_id, "--problem", row["problem_id"], "--store", str(tmp_path / "s.sqlite")]
    )
    assert shown.exit_code == 0, shown.output
    assert "best leaf #5 answers 26" in shown.output
    assert "* #1 v=20 (sure) kept: Mia starts with 13 coins." in shown.output
    assert "#3 v=0.001 (impossible) leaf → 30 (wrong): The answer is 30." in shown.output


def test_states_open_at_the_depth_limit_are_finished_greedily(task):
    engine = ScriptedEngine(scripted)
    (solution,) = strategies.get("tot")(breadth=3, beam=1, depth=1).solve(list(task.problems()), task, engine)
    finishes = [p for p in engine.prompts if p.step.startswith("tot-finish-")]
    assert [p.step for p in finishes] == ["tot-finish-1"]  # only the kept state, greedily
    nodes = solution.extra["tree"]["nodes"]
    assert nodes[-1]["parent"] == 1 and nodes[-1]["final"] and nodes[-1]["answer"] == "26"
    assert solution.answer == "26" and solution.correct is True


def test_lot_wraps_tree_of_thoughts_and_bad_settings_are_refused(task):
    composed = strategies.get("lot+tot")(breadth=2, lot_retries=0)
    assert composed.name == "lot+tree-of-thoughts" and composed.inner.breadth == 2
    with pytest.raises(ConfigError, match="beam must be >= 1"):
        strategies.get("tot")(beam=0)
