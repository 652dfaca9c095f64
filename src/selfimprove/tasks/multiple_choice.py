"""Logical multiple-choice tasks: ProofWriter, PrOntoQA, FOLIO, LogicalDeduction, LogiQA, ReClor.

All become Problems whose `question` is the context and question, `metadata["options"]` the
[(letter, text), ...] choices and `reference` the right letter. Formats read:
- Logic-LM JSONL (`id, context, question, options ["A) True", ...], answer "A"`): the four open
  benchmarks as shipped in `../shared/data/`;
- the original FOLIO JSONL (`premises` list, `conclusion`, `label` True/False/Uncertain);
- LogiQA 1.0 text files (per example: a blank line, the right letter a-d, context, question,
  four options "A. ...");
- ReClor JSON (`context, question, answers [4], label 0-3, id_string`), a JSON array or JSONL.
LogiQA and ReClor cannot be shipped (their licences): pass the path of your own copy.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from selfimprove.core.errors import DataError
from selfimprove.core.types import Problem
from selfimprove.grading.choices import extract_choice, split_option
from selfimprove.tasks.base import FileBackedTask, registry
from selfimprove.tasks.jsonl import file_beside, identify_source, read_records, require_str
from selfimprove.tasks.prompting import FEW_SHOT_STOP

FOLIO_LABELS = {"true": "A", "false": "B", "uncertain": "C", "unknown": "C"}
FOLIO_OPTIONS = ["A) True", "B) False", "C) Uncertain"]


def _problem(ident: str, context: str, question: str, options: list[str], answer: str | None, **extra) -> Problem:
    choices = [split_option(o, i) for i, o in enumerate(options)]
    return Problem(
        id=ident,
        question=f"{context.strip()}\n\n{question.strip()}",
        reference=answer,
        metadata={"options": choices, "context": context.strip(), "query": question.strip(), **extra},
    )


def _letter(value: object, letters: list[str], path: str | Path, line: int, field: str) -> str:
    if isinstance(value, str) and value.strip().upper() in letters:
        return value.strip().upper()
    raise DataError(path, f"expected one of {', '.join(letters)}, got {value!r:.40}", line=line, field=field)


def load_logic_lm(path: str | Path, split: str = "test") -> list[Problem]:
    """Logic-LM JSONL rows; original FOLIO rows (`premises`, `conclusion`, `label`) are converted."""
    problems = []
    for line, record in read_records(path, split):
        ident = str(record.get("id") or record.get("example_id") or f"{Path(str(path)).stem}-{line}")
        if "premises" in record:
            premises = record["premises"]
            if not isinstance(premises, list) or not all(isinstance(p, str) for p in premises):
                raise DataError(path, "expected a list of strings", line=line, field="premises")
            conclusion = require_str(record, "conclusion", path, line)
            label = FOLIO_LABELS.get(str(record.get("label", "")).strip().lower())
            if label is None:
                raise DataError(path, f"expected True, False or Uncertain, got {record.get('label')!r:.40}",
                                line=line, field="label")  # fmt: skip
            question = (
                "Based on the above information, is the following statement true, false, or uncertain? "
                + conclusion.strip()
            )
            problems.append(_problem(f"folio-{ident}", " ".join(p.strip() for p in premises), question,
                                     FOLIO_OPTIONS, label, line=line))  # fmt: skip
            continue
        context = require_str(record, "context", path, line)
        question = require_str(record, "question", path, line)
        options = record.get("options")
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
            raise DataError(path, "expected a list of at least two option strings", line=line, field="options")
        letters = [split_option(o, i)[0] for i, o in enumerate(options)]
        answer = _letter(record.get("answer"), letters, path, line, "answer")
        explanation = record.get("explanation")
        extra = {"explanation": " ".join(explanation)} if isinstance(explanation, list) else {}
        problems.append(_problem(ident, context, question, options, answer, line=line, **extra))
    return problems


def load_logiqa(path: str | Path) -> list[Problem]:
    """LogiQA 1.0's text format: 8 lines per example (blank, letter, context, question, 4 options)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(path, "dataset file not found (LogiQA is not shipped: pass the path of your copy)")
    lines = path.read_text(encoding="utf-8").splitlines()
    problems = []
    start = 0
    while start < len(lines):
        while start < len(lines) and not lines[start].strip():
            start += 1
        if start >= len(lines):
            break
        block = lines[start : start + 7]
        if len(block) < 7:
            raise DataError(path, f"an example needs 7 lines after its blank line, found {len(block)}", line=start + 1)
        letter = block[0].strip().upper()
        if letter not in "ABCD" or len(letter) != 1:
            raise DataError(path, f"expected the answer letter a-d, got {block[0]!r:.40}", line=start + 1,
                            field="answer")  # fmt: skip
        options = []
        for offset, option in enumerate(block[3:7]):
            label, text = split_option(option.replace(". ", ") ", 1) if option[1:2] == "." else option, offset)
            if label != "ABCD"[offset]:
                raise DataError(path, f"expected option {'ABCD'[offset]}, got {option!r:.40}",
                                line=start + 4 + offset, field="option")  # fmt: skip
            options.append(f"{label}) {text}")
        problems.append(_problem(f"logiqa-{start + 1}", block[1], block[2], options, letter, line=start + 1))
        start += 7
    return problems


def load_reclor(path: str | Path) -> list[Problem]:
    """ReClor JSON: a JSON array (as released) or JSONL of {context, question, answers, label, id_string}."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(path, "dataset file not found (ReClor is not shipped: pass the path of your copy)")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            rows = list(enumerate(json.loads(text), start=1))
        except json.JSONDecodeError as exc:
            raise DataError(path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
        where = "item"
    else:
        rows, where = list(read_records(path)), "line"
    problems = []
    for index, record in rows:
        answers = record.get("answers") if isinstance(record, dict) else None
        if not isinstance(answers, list) or len(answers) != 4:
            raise DataError(path, f"{where} {index}: expected 4 answers", field="answers")
        label = record.get("label")
        if label is not None and label not in (0, 1, 2, 3):
            raise DataError(path, f"{where} {index}: expected 0-3, got {label!r:.20}", field="label")
        options = [f"{'ABCD'[i]}) {a}" for i, a in enumerate(answers)]
        ident = str(record.get("id_string") or f"reclor-{index}")
        reference = None if label is None else "ABCD"[label]
        problems.append(_problem(ident, str(record.get("context", "")), str(record.get("question", "")), options,
                                 reference))  # fmt: skip
    return problems


class MultipleChoiceTask(FileBackedTask):
    """A context, a question and lettered options; the answer is a letter. `data`: the evaluated file;
    `fewshot`: a file exemplars come from (default: a `train*.jsonl` beside `data`); `shots`: how many."""

    name = "multiple-choice"
    stop = (*FEW_SHOT_STOP, "\nContext:")
    train_names: tuple[str, ...] = ("train.jsonl",)

    def __init__(self, data: str | None = None, fewshot: str | None = None, shots: int = 2, seed: int = 0):
        super().__init__(data, "its dataset file")
        self.fewshot = fewshot if fewshot is not None else file_beside(data, *self.train_names)
        self.shots, self.seed = int(shots), int(seed)

    def load(self, source: str, split: str) -> list[Problem]:
        return load_logic_lm(source, split)

    def split_files(self) -> dict[str, str | None]:
        return {"test": self.data, "train": self.fewshot}

    def describe(self) -> dict:
        return {
            "task": self.name,
            "data": identify_source(self.data),
            "fewshot": identify_source(self.fewshot),
            "shots": self.shots,
            "seed": self.seed,
        }

    def exemplars(self) -> list[Problem]:
        if self.fewshot is None or self.shots == 0:
            return []
        pool = self.loaded("train")
        return random.Random(self.seed).sample(pool, min(len(pool), self.shots + 1))

    @staticmethod
    def block(problem: Problem) -> str:
        options = "\n".join(f"{letter}) {text}" for letter, text in problem.metadata["options"])
        return (
            f"Context: {problem.metadata['context']}\nQuestion: {problem.metadata['query']}\n"
            f"Options:\n{options}\nAnswer:"
        )

    def format_prompt(self, problem: Problem) -> str:
        shots = [ex for ex in self.exemplars() if ex.question != problem.question][: self.shots]
        parts = []
        for ex in shots:
            reasoning = f" {ex.metadata['explanation']}" if ex.metadata.get("explanation") else ""
            parts.append(f"{self.block(ex)}{reasoning} The answer is ({ex.reference}).\n\n")
        return "".join(parts) + self.block(problem)

    def extract(self, text: str) -> str | None:
        # The options themselves are only known per problem; letters A-E cover every format here.
        return extract_choice(text, [(letter, "") for letter in "ABCDE"])

    def extract_for(self, problem: Problem, text: str) -> str | None:
        return extract_choice(text, problem.metadata["options"])

    def grade(self, problem: Problem, answer: str | None) -> bool | None:
        if problem.reference is None:
            return None
        return answer == problem.reference


@registry.register("proofwriter")
class ProofWriterTask(MultipleChoiceTask):
    name = "proofwriter"


@registry.register("prontoqa")
class ProntoQATask(MultipleChoiceTask):
    name = "prontoqa"


@registry.register("folio")
class FolioTask(MultipleChoiceTask):
    name = "folio"
    train_names = ("folio_train_logiclm.jsonl", "train.jsonl")


@registry.register("logical-deduction")
class LogicalDeductionTask(MultipleChoiceTask):
    name = "logical-deduction"


@registry.register("logiqa")
class LogiQATask(MultipleChoiceTask):
    name = "logiqa"
    train_names = ("Train.txt", "train.txt")

    def load(self, source: str, split: str) -> list[Problem]:
        return load_logiqa(source)


@registry.register("reclor")
class ReClorTask(MultipleChoiceTask):
    name = "reclor"
    train_names = ("train.json",)

    def load(self, source: str, split: str) -> list[Problem]:
        return load_reclor(source)
