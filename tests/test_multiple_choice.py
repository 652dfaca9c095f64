"""Logical multiple choice: choice extraction, the shipped Logic-LM slices, FOLIO, LogiQA and ReClor formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfimprove.core.errors import DataError
from selfimprove.grading.choices import extract_choice, split_option
from selfimprove.strategies.base import extract_answer
from selfimprove.tasks import base as tasks

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
TFU = [("A", "True"), ("B", "False"), ("C", "Unknown")]


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("Therefore (B)", "B"),
        ("so B) is right", "B"),
        ("Answer: B", "B"),
        ("the answer is b", "B"),
        ("The answer is (c).", "C"),
        ("The statement is unknown.", "C"),
        ("It looks true. On reflection it is false", "B"),
        ("The answer is a bit unclear, so: False", "B"),
        ("The answer is (A). Question: next one (C)", "A"),
        ("B", "B"),
        ("nothing to see", None),
        ("The answer is (D).", None),  # not an option
    ],
)
def test_extract_choice(text, choice):
    assert extract_choice(text, TFU) == choice


def test_split_option():
    assert split_option("B) False", 1) == ("B", "False")
    assert split_option("(C) Uncertain", 2) == ("C", "Uncertain")
    assert split_option("D. four", 3) == ("D", "four")
    assert split_option("just text", 1) == ("B", "just text")


@needs_data
@pytest.mark.parametrize(
    ("name", "path", "count"),
    [
        ("proofwriter", "proofwriter/dev.jsonl", 600),
        ("prontoqa", "prontoqa/prontoqa_dev100.jsonl", 100),
        ("folio", "folio/folio_train_logiclm.jsonl", 1004),
        ("logical-deduction", "logical_deduction/train_disjoint.jsonl", 492),
    ],
)
def test_shipped_slices_load_and_their_references_extract_back(name, path, count):
    task = tasks.get(name)(data=str(SHARED / path))
    problems = list(task.problems())
    assert len(problems) == count
    for problem in problems:
        letters = [letter for letter, _ in problem.metadata["options"]]
        assert problem.reference in letters
        option_text = dict(problem.metadata["options"])[problem.reference]
        assert extract_answer(task, problem, f"So the answer is ({problem.reference}).") == problem.reference
        assert task.grade(problem, extract_answer(task, problem, f"Therefore: {option_text}")), problem.id
    prompt = task.format_prompt(problems[0])
    assert prompt.endswith("Answer:") and problems[0].metadata["query"] in prompt


@needs_data
def test_original_folio_format_matches_the_logic_lm_conversion():
    original = list(tasks.get("folio")(data=str(SHARED / "folio" / "folio-train.jsonl")).problems())
    converted = list(tasks.get("folio")(data=str(SHARED / "folio" / "folio_train_logiclm.jsonl")).problems())
    assert [p.reference for p in original] == [p.reference for p in converted]
    assert original[0].metadata["query"] == converted[0].metadata["query"]


@needs_data
def test_proofwriter_fewshot_comes_from_train_beside_dev():
    task = tasks.get("proofwriter")(data=str(SHARED / "proofwriter" / "dev.jsonl"), shots=2)
    assert task.fewshot.endswith("train.jsonl")
    problem = next(task.problems())
    assert task.format_prompt(problem).count("The answer is (") == 2


def test_logiqa_text_format(tmp_path):
    data = tmp_path / "Test.txt"
    data.write_text(
        "\nc\nSome context about cats.\nWhich follows?\nA. Dogs bark.\nB. Cats fly.\nC. Cats are cats.\nD. None.\n"
        "\na\nOther context.\nWhat is true?\nA.First\nB.Second\nC.Third\nD.Fourth\n"
    )
    task = tasks.get("logiqa")(data=str(data))
    first, second = task.problems()
    assert first.reference == "C" and first.metadata["options"][2] == ("C", "Cats are cats.")
    assert second.reference == "A" and second.metadata["options"][3] == ("D", "Fourth")
    assert extract_answer(task, first, "Clearly Cats are cats.") == "C"
    data.write_text("\ne\nctx\nq\nA. a\nB. b\nC. c\nD. d\n")
    with pytest.raises(DataError) as error:
        list(tasks.get("logiqa")(data=str(data)).problems())
    assert "Test.txt:2" in str(error.value) and "answer" in str(error.value)


def test_reclor_json_format(tmp_path):
    rows = [
        {
            "context": "All A are B.",
            "question": "Which must be true?",
            "answers": ["w", "x", "y", "z"],
            "label": 2,
            "id_string": "train_0",
        },  # fmt: skip
        {"context": "c", "question": "q", "answers": ["1", "2", "3", "4"], "id_string": "test_0"},
    ]
    data = tmp_path / "val.json"
    data.write_text(json.dumps(rows))
    task = tasks.get("reclor")(data=str(data))
    labelled, unlabelled = task.problems()
    assert labelled.id == "train_0" and labelled.reference == "C"
    assert unlabelled.reference is None and task.grade(unlabelled, "A") is None
    data.write_text(json.dumps([{**rows[0], "answers": ["only one"]}]))
    with pytest.raises(DataError) as error:
        list(tasks.get("reclor")(data=str(data)).problems())
    assert "val.json" in str(error.value) and "answers" in str(error.value)


def test_logic_lm_bad_rows_name_the_field(tmp_path):
    data = tmp_path / "dev.jsonl"
    row = {"id": "x", "context": "c", "question": "q", "options": ["A) True", "B) False"], "answer": "C"}
    data.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError) as error:
        list(tasks.get("proofwriter")(data=str(data)).problems())
    assert "dev.jsonl:1" in str(error.value) and "'answer'" in str(error.value)
