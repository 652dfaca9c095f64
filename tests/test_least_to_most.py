import pytest

from doubles import ScriptedEngine
from selfimprove.core.errors import ConfigError
from selfimprove.runs import runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.least_to_most import (
    LeastToMost,
    decomposition_prompt,
    parse_subquestions,
    question_sentence,
    solving_prompt,
)
from selfimprove.tasks.arithmetic import ArithmeticTask

Q = "Ann has 3 apples. She buys 2 more. How many apples does Ann have now?"


def test_parse_numbered_list_and_end_with_the_question():
    text = " How many apples does Ann buy?\n2. How many apples does Ann have now?\nQuestion: next"
    assert parse_subquestions(text, Q, 5) == ["How many apples does Ann buy?", "How many apples does Ann have now?"]
    # The original ask is appended when the list does not end with it.
    assert parse_subquestions(" How many apples does Ann buy?", Q, 5)[-1] == "How many apples does Ann have now?"


def test_parse_is_strict_and_bounded():
    assert parse_subquestions(" not a question\n2. What?", Q, 5) == [question_sentence(Q)]  # nothing usable
    assert parse_subquestions(" A?\n3. B?\n4. C?", Q, 5) == ["A?", question_sentence(Q)]  # numbering broke
    assert parse_subquestions(" A?\n2. A?", Q, 5) == ["A?", question_sentence(Q)]  # repetition
    many = " " + "\n".join(f"{i}. S{i}?" for i in range(1, 30))[3:]
    subs = parse_subquestions(many, Q, 4)
    assert len(subs) == 4 and subs[-1] == question_sentence(Q)


def test_prompts():
    assert decomposition_prompt(Q).endswith(f"Question: {Q}\nTo answer it, answer in order:\n1.")
    prompt = solving_prompt(Q, [("How many apples does Ann buy?", " She buys 2. The answer is 2.")], "How many now?")
    assert prompt.endswith(
        f"Question: {Q}\nQ: How many apples does Ann buy?\nA: She buys 2. The answer is 2.\nQ: How many now?\nA:"
    )


def plan_reply(prompt, sample_id):
    """Decomposes into two sub-questions and answers each sub-question with its position."""
    if prompt.step == "decompose":
        return " What is the first part?\n2. What is the second part?\n"
    return f" Step {prompt.step}. The answer is {prompt.content.count('Q: ') - 2}."


def test_run_stores_the_whole_trace(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    engine = ScriptedEngine(plan_reply)
    outcome = runner.execute(ArithmeticTask(), LeastToMost(), engine, store, limit=2, show_progress=False)
    rows = store.solutions(outcome.run_id)
    first = rows[0]
    assert first["extra"]["decomposed"] is True
    assert len(first["extra"]["subquestions"]) == 3  # two parsed + the problem's own question
    assert first["extra"]["subquestions"][-1].startswith("How many")
    assert len(first["extra"]["subanswers"]) == 3
    assert [s["step"] for s in first["samples"]] == ["decompose", "sub1", "sub2", "sub3"]
    # The solving prompt of sub3 holds sub1 and sub2 solved (3 'Q: ' of its own + 2 from the exemplar).
    assert first["answer"] == "3"
    assert len(store.completion_rows(outcome.run_id)) == 2 * 4
    store.close()


def test_bad_settings():
    with pytest.raises(ConfigError):
        LeastToMost(max_subquestions=0)
