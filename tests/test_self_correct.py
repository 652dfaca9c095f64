import pytest

from doubles import ScriptedEngine
from selfimprove.core.errors import ConfigError
from selfimprove.runs import metrics, runner
from selfimprove.runs.metrics import edit_distance, normalised_edit_distance, turn_metrics
from selfimprove.runs.store import RunStore
from selfimprove.strategies.self_correct import DEFAULT_INSTRUCTION, REVISION_CUE, SelfCorrect, continue_conversation
from selfimprove.tasks.arithmetic import ArithmeticTask


def flip_engine(references):
    """On even problems wrong first and right after a correction request; on odd problems the reverse."""

    def reply(prompt, sample_id):
        revised = REVISION_CUE in prompt.content
        even = int(prompt.problem_id.split("-")[-1]) % 2 == 0
        right = revised if even else not revised
        return f" Working it out. The answer is {references[prompt.problem_id] if right else '-1'}."

    return ScriptedEngine(reply)


def test_edit_distance_by_hand():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("same", "same") == 0
    assert normalised_edit_distance("abc", "abd") == pytest.approx(1 / 3)
    assert normalised_edit_distance("", "") == 0.0


def test_turn_metrics_by_hand():
    def row(*turns):
        return {"extra": {"turns": [{"answer": "x", "correct": c, "text": t} for c, t in turns]}}

    rows = [
        row((False, "ab"), (True, "ac")),
        row((True, "x"), (False, "y")),
        row((True, "s"), (True, "s")),
        row((False, "q"), (False, "q")),
    ]
    m = turn_metrics(rows)
    assert m.accuracy == [0.5, 0.5] and m.delta == [0.0]
    assert m.incorrect_to_correct == [0.25] and m.correct_to_incorrect == [0.25]
    assert m.edit_distance == [pytest.approx((0.5 + 1.0 + 0 + 0) / 4)]
    assert turn_metrics([{"extra": {}}]) is None


def test_transcript_and_chat_continuation():
    text = continue_conversation("Question: q\nAnswer:", " 5. The answer is 5.\n", "Check it.")
    assert text == "Question: q\nAnswer: 5. The answer is 5.\n\nCheck it.\nRevised answer:"
    chat = continue_conversation([{"role": "user", "content": "q"}], "5", "Check it.")
    assert chat[-2:] == [{"role": "assistant", "content": "5"}, {"role": "user", "content": "Check it."}]


def test_self_correct_run_stores_turns_and_metrics(tmp_path):
    task = ArithmeticTask()
    problems = list(task.problems(limit=4))
    engine = flip_engine({p.id: p.reference for p in problems})
    store = RunStore(tmp_path / "s.sqlite")
    outcome = runner.execute(task, SelfCorrect(turns=3), engine, store, limit=4, show_progress=False)
    rows = store.solutions(outcome.run_id)
    assert [len(r["extra"]["turns"]) for r in rows] == [3] * 4
    # Even problems: wrong, right, right; odd: right, wrong, wrong.
    assert [t["correct"] for t in rows[0]["extra"]["turns"]] == [False, True, True]
    assert [t["correct"] for t in rows[1]["extra"]["turns"]] == [True, False, False]
    m = metrics.turn_metrics(rows)
    assert m.accuracy == [0.5, 0.5, 0.5]
    assert m.incorrect_to_correct == [0.5, 0.0] and m.correct_to_incorrect == [0.5, 0.0]
    third = [p for p in engine.prompts if p.step == "turn3" and p.problem_id == problems[0].id][0]
    assert third.content.count(DEFAULT_INSTRUCTION) == 2 and third.content.endswith(REVISION_CUE)
    assert len(store.completion_rows(outcome.run_id)) == 4 * 3
    store.close()


def test_turn_samples_vote_in_each_turn(tmp_path):
    task = ArithmeticTask()
    problems = list(task.problems(limit=2))
    store = RunStore(tmp_path / "s.sqlite")
    engine = flip_engine({p.id: p.reference for p in problems})
    outcome = runner.execute(task, SelfCorrect(turn_samples=3), engine, store, limit=2, show_progress=False)
    rows = store.solutions(outcome.run_id)
    assert all(sum(t["votes"].values()) == 3 for r in rows for t in r["extra"]["turns"])
    assert len(store.completion_rows(outcome.run_id)) == 2 * 2 * 3
    store.close()


def test_bad_settings():
    with pytest.raises(ConfigError):
        SelfCorrect(turns=0)
