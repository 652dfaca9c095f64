"""Task `gsm8k`: grade-school math word problems (Cobbe et al. 2021) in the official JSONL format.

Each line holds `question` and `answer`; the answer's last line is `#### N`. Few-shot
chain-of-thought exemplars come from the train split (the file given as `fewshot`, else a
`train.jsonl` beside the evaluated file), never from the evaluated problem itself.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from selfimprove.core.errors import DataError
from selfimprove.core.types import Problem
from selfimprove.grading.numeric import canonical_number
from selfimprove.tasks.base import FileBackedTask, NumericAnswers, registry
from selfimprove.tasks.jsonl import file_beside, identify_source, read_records, require_str
from selfimprove.tasks.prompting import FEW_SHOT_STOP, few_shot_prompt

_CALCULATOR = re.compile(r"<<[^>]*>>")


def parse_gsm8k_answer(answer: str, path: str | Path, line: int) -> tuple[str, str]:
    """(worked solution without calculator annotations, canonical final number) of one `answer` field."""
    if "####" not in answer:
        raise DataError(path, "has no final '#### N' line", line=line, field="answer")
    work, final = answer.rsplit("####", 1)
    number = canonical_number(final)
    if number is None:
        raise DataError(path, f"final answer {final.strip()!r} is not a number", line=line, field="answer")
    return _CALCULATOR.sub("", work).strip(), number


def load_gsm8k(path: str | Path, split: str = "test") -> list[Problem]:
    """Every problem of a GSM8K JSONL file (or hub dataset, config `main`); ids are `<file stem>-<line>`."""
    problems = []
    for line, record in read_records(path, split, config="main"):
        question = require_str(record, "question", path, line)
        solution, number = parse_gsm8k_answer(require_str(record, "answer", path, line), path, line)
        problems.append(
            Problem(
                id=f"{Path(str(path)).stem}-{line}",
                question=question.strip(),
                reference=number,
                metadata={"solution": solution, "line": line},
            )
        )
    return problems


@registry.register("gsm8k")
class GSM8KTask(NumericAnswers, FileBackedTask):
    """`data`: a local JSONL file (or a hub dataset name); `fewshot`: the train file exemplars come from."""

    name = "gsm8k"
    stop = FEW_SHOT_STOP

    def __init__(self, data: str | None = None, fewshot: str | None = None, shots: int = 4, seed: int = 0):
        FileBackedTask.__init__(self, data, "a GSM8K JSONL file (question, answer '... #### N')")
        self.shots, self.seed = int(shots), int(seed)
        self.fewshot = fewshot or file_beside(data, "train.jsonl")
        self._exemplars: list[Problem] | None = None

    def describe(self) -> dict:
        """Files are identified by content too, so an edited dataset starts a new run."""
        return {
            "task": self.name,
            "data": identify_source(self.data),
            "fewshot": identify_source(self.fewshot),
            "shots": self.shots,
            "seed": self.seed,
        }

    def load(self, source: str, split: str) -> list[Problem]:
        return load_gsm8k(source, split)

    def split_files(self) -> dict[str, str | None]:
        return {"test": self.data, "train": self.fewshot}

    def exemplars(self) -> list[Problem]:
        """`shots` train problems drawn once with the task seed; zero-shot when no train file is known."""
        if self._exemplars is None:
            if self.fewshot is None or self.shots == 0:
                self._exemplars = []
            else:
                pool = self.loaded("train")
                # One extra, so that dropping the evaluated problem (train-split runs) still leaves `shots`.
                self._exemplars = random.Random(self.seed).sample(pool, min(len(pool), self.shots + 1))
        return self._exemplars

    def format_prompt(self, problem: Problem) -> str:
        shots = [ex for ex in self.exemplars() if ex.question != problem.question][: self.shots]
        pairs = [(ex.question, f"{ex.metadata['solution']} The answer is {ex.reference}.") for ex in shots]
        return few_shot_prompt(pairs, problem.question)
