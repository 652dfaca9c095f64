import json

import pytest

from selfimprove.core.errors import ConfigError, DataError
from selfimprove.tasks.gsm8k import GSM8KTask, load_gsm8k


def test_loads_the_official_format(shared_data):
    path = shared_data / "gsm8k" / "test_dev200.jsonl"
    problems = load_gsm8k(path)
    assert len(problems) == 200
    assert problems[0].id == "test_dev200-1"
    assert problems[0].reference == "18"
    assert "<<" not in problems[0].metadata["solution"]


def test_references_drop_commas_and_keep_signs(shared_data):
    problems = load_gsm8k(shared_data / "gsm8k" / "train.jsonl")
    raw = [
        json.loads(line)["answer"].split("####")[-1].strip()
        for line in (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines()
    ]
    assert len(problems) == len(raw) == 7473
    with_commas = [(p, r) for p, r in zip(problems, raw) if "," in r]
    assert with_commas and all(p.reference == r.replace(",", "") for p, r in with_commas)
    negatives = [p for p in problems if p.reference.startswith("-")]
    assert negatives


def test_fewshot_exemplars_come_from_train_never_the_problem(shared_data, tmp_path):
    task = GSM8KTask(data=str(shared_data / "gsm8k" / "test_dev200.jsonl"), shots=4)
    assert task.fewshot.endswith("train.jsonl")
    train_questions = {p.question for p in load_gsm8k(shared_data / "gsm8k" / "train.jsonl")}
    problem = next(task.problems(limit=1))
    prompt = task.format_prompt(problem)
    assert prompt.count("Question: ") == 5
    assert prompt.endswith(f"Question: {problem.question}\nAnswer:")
    # Evaluating train problems: the evaluated one is dropped from its own prompt.
    train_task = GSM8KTask(data=str(shared_data / "gsm8k" / "train.jsonl"), shots=4)
    exemplar = train_task.exemplars()[0]
    prompt = train_task.format_prompt(exemplar)
    assert prompt.count(exemplar.question) == 1 and prompt.count("Question: ") == 5
    assert all(ex.question in train_questions for ex in task.exemplars())


def write(tmp_path, lines):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_malformed_files_name_file_line_and_field(tmp_path):
    good = json.dumps({"question": "q?", "answer": "x\n#### 3"})
    cases = [
        ([good, "{not json"], r"bad.jsonl:2: invalid JSON"),
        ([good, json.dumps({"answer": "#### 3"})], r"bad.jsonl:2: field 'question': missing"),
        ([json.dumps({"question": "q", "answer": "no final line"})], r"bad.jsonl:1: field 'answer': has no final"),
        ([json.dumps({"question": "q", "answer": "#### many"})], r"bad.jsonl:1: field 'answer': final answer 'many'"),
        ([json.dumps({"question": 5, "answer": "#### 1"})], r"bad.jsonl:1: field 'question': expected a non-empty"),
        ([good, "[1, 2]"], r"bad.jsonl:2: expected a JSON object"),
    ]
    for lines, message in cases:
        with pytest.raises(DataError, match=message):
            load_gsm8k(write(tmp_path, lines))


def test_missing_file_and_missing_data_flag(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: dataset file not found"):
        list(GSM8KTask(data=str(tmp_path / "nope.jsonl")).problems())
    with pytest.raises(ConfigError, match="--data"):
        GSM8KTask()


def test_run_identity_follows_file_content(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"question": "q?", "answer": "#### 3"}) + "\n")
    first = GSM8KTask(data=str(path)).describe()
    path.write_text(json.dumps({"question": "q?", "answer": "#### 4"}) + "\n")
    assert GSM8KTask(data=str(path)).describe() != first
