"""The four LMSI training formats built from one kept reasoning path (Huang et al. 2022, Table 5).

- `fewshot-cot`: the task's own few-shot chain-of-thought prompt, the path as the completion.
- `fewshot-direct`: a few-shot prompt whose exemplars are other *kept* questions with their
  majority answers stated directly (label-free, like everything here), then " The answer is X.".
- `zeroshot-cot`: "Question: q / Answer: Let's think step by step." then the path.
- `zeroshot-direct`: "Question: q / Answer:" then " The answer is X.".

Mixing formats keeps the model able to answer with and without exemplars and with and without
reasoning, which the paper found to matter for keeping its prompting abilities.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Problem
from selfimprove.tasks.base import Task

FORMATS = ("fewshot-cot", "fewshot-direct", "zeroshot-cot", "zeroshot-direct")
STEP_BY_STEP = "Let's think step by step."


@dataclass(frozen=True)
class KeptPath:
    problem: Problem
    answer: str
    path: str
    """The sampled completion (the reasoning after "Answer:"), exactly as generated."""


def direct_answer(answer: str) -> str:
    return f" The answer is {answer}."


def zero_shot_prompt(question: str, reasoning: bool) -> str:
    return f"Question: {question}\nAnswer:" + (f" {STEP_BY_STEP}" if reasoning else "")


def training_rows(
    kept: Sequence[KeptPath], task: Task, formats: Sequence[str] = FORMATS, shots: int = 4, seed: int = 0
) -> list[dict]:
    """One row per kept path and format: {"prompt", "completion", "format", "problem_id"}."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown training format(s) {unknown}; choose from {', '.join(FORMATS)}")
    rng = random.Random(seed)
    by_problem: dict[str, KeptPath] = {}
    for item in kept:
        by_problem.setdefault(item.problem.id, item)  # one exemplar per kept question
    rows = []
    for item in kept:
        question, path = item.problem.question, item.path.rstrip()
        for fmt in formats:
            if fmt == "fewshot-cot":
                prompt, completion = task.format_prompt(item.problem), path
                if not isinstance(prompt, str):
                    continue  # a chat prompt has no plain-text few-shot form
            elif fmt == "fewshot-direct":
                others = [k for pid, k in by_problem.items() if pid != item.problem.id]
                shots_here = rng.sample(others, min(shots, len(others)))
                blocks = [
                    f"{zero_shot_prompt(o.problem.question, False)}{direct_answer(o.answer)}\n" for o in shots_here
                ]
                prompt, completion = "\n".join([*blocks, zero_shot_prompt(question, False)]), direct_answer(item.answer)
            elif fmt == "zeroshot-cot":
                prompt, completion = zero_shot_prompt(question, True), path
            else:
                prompt, completion = zero_shot_prompt(question, False), direct_answer(item.answer)
            rows.append({"prompt": prompt, "completion": completion, "format": fmt, "problem_id": item.problem.id})
    return rows
