"""Strategy `least-to-most` (Zhou et al. 2023, "Least-to-Most Prompting Enables Complex Reasoning").

Stage 1 (step `decompose`): a few-shot prompt turns the problem into a numbered list of
sub-questions. Parsing is strict and bounded: numbered lines only, at most `max_subquestions`;
the original question is always the last sub-question (added when the model did not end with
it). A problem that yields no sub-question is answered directly: its only sub-question is itself.

Stage 2 (steps `sub1`, `sub2`, ...): sub-questions are solved in order, greedily, each answer
appended to the context of the next; the last answer is the problem's answer. The trace keeps
every sub-question and answer in `Solution.extra`.

The exemplars below were written for this module (plain grade-school arithmetic) and are used for
every numeric task; a task may offer its own later.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Problem, Prompt, SampleRecord, Sampling, Solution
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import records_for, registry
from selfimprove.tasks.base import Task

DECOMPOSE_EXEMPLARS = (
    (
        "A baker makes 4 trays of 12 rolls. He sells 30 rolls. How many rolls are left?",
        ["How many rolls does the baker make?", "How many rolls are left?"],
    ),
    (
        "Lena reads 15 pages a day for 4 days, then 10 pages a day for 2 days. How many pages does she read?",
        [
            "How many pages does Lena read in the first 4 days?",
            "How many pages does Lena read in the next 2 days?",
            "How many pages does she read?",
        ],
    ),
)
SOLVE_EXEMPLAR = (
    "A baker makes 4 trays of 12 rolls. He sells 30 rolls. How many rolls are left?",
    [
        ("How many rolls does the baker make?", "He makes 4 x 12 = 48 rolls. The answer is 48."),
        ("How many rolls are left?", "48 - 30 = 18 rolls are left. The answer is 18."),
    ],
)
DECOMPOSE_STOP = ("\nQuestion:", "\n\n")
SOLVE_STOP = ("\nQ:", "\nQuestion:", "\n\n")
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s*(.+?)\s*$")


def decomposition_prompt(question: str) -> str:
    blocks = []
    for q, subs in DECOMPOSE_EXEMPLARS:
        lines = "\n".join(f"{i}. {s}" for i, s in enumerate(subs, start=1))
        blocks.append(f"Question: {q}\nTo answer it, answer in order:\n{lines}\n")
    blocks.append(f"Question: {question}\nTo answer it, answer in order:\n1.")
    return "\n".join(blocks)


def parse_subquestions(completion: str, question: str, limit: int) -> list[str]:
    """Numbered sub-questions from the model's continuation of "1.", at most `limit`, the question last."""
    subs: list[str] = []
    for line in ("1." + completion).splitlines():
        match = _NUMBERED.match(line)
        if match is None:
            break  # the list ended
        text = match.group(2)
        if int(match.group(1)) != len(subs) + 1 or not text.endswith("?") or text in subs:
            break  # out of order, not a question, or repeating: stop trusting the list
        subs.append(text)
    subs = subs[: max(0, limit - 1)]
    if not subs or _norm(subs[-1]) != _norm(question_sentence(question)):
        subs.append(question_sentence(question))
    return subs


def question_sentence(question: str) -> str:
    """The question's last sentence (the actual ask), or the whole text if it has none."""
    parts = re.split(r"(?<=[.!?])\s+", question.strip())
    asks = [p for p in parts if p.endswith("?")]
    return asks[-1] if asks else question.strip()


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def solving_prompt(question: str, solved: Sequence[tuple[str, str]], next_question: str) -> str:
    exemplar_q, exemplar_steps = SOLVE_EXEMPLAR
    exemplar = f"Question: {exemplar_q}\n" + "".join(f"Q: {q}\nA: {a}\n" for q, a in exemplar_steps)
    context = f"Question: {question}\n" + "".join(f"Q: {q}\nA: {a.strip()}\n" for q, a in solved)
    return f"{exemplar}\n{context}Q: {next_question}\nA:"


@registry.register("least-to-most")
@dataclass
class LeastToMost:
    max_subquestions: int = 5
    max_tokens: int = 128

    name = "least-to-most"

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        if self.max_subquestions < 1:
            raise ConfigError(f"max_subquestions must be >= 1, got {self.max_subquestions}")

    def describe(self) -> dict:
        return {"strategy": self.name, **asdict(self), "prompts": 1}

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        decompose = Sampling(max_tokens=24 * self.max_subquestions, stop=DECOMPOSE_STOP)
        prompts = [Prompt(decomposition_prompt(p.question), problem_id=p.id, step="decompose") for p in problems]
        outputs = engine.generate(prompts, 1, decompose)
        records: dict[str, list[SampleRecord]] = {}
        plans: dict[str, list[str]] = {}
        for p, completions in zip(problems, outputs):
            records[p.id] = records_for(task, p, "decompose", [0], completions, auxiliary=True)
            plans[p.id] = parse_subquestions(completions[0].text, p.question, self.max_subquestions)

        solve = Sampling(max_tokens=self.max_tokens, stop=SOLVE_STOP)
        solved: dict[str, list[tuple[str, str]]] = {p.id: [] for p in problems}
        for index in range(self.max_subquestions):
            pending = [p for p in problems if index < len(plans[p.id])]
            if not pending:
                break
            step = f"sub{index + 1}"
            requests = [
                Prompt(solving_prompt(p.question, solved[p.id], plans[p.id][index]), problem_id=p.id, step=step)
                for p in pending
            ]
            for p, completions in zip(pending, engine.generate(requests, 1, solve)):
                records[p.id].extend(records_for(task, p, step, [0], completions))
                solved[p.id].append((plans[p.id][index], completions[0].text))

        solutions = []
        for p in problems:
            final = records[p.id][-1]
            solutions.append(
                Solution(
                    problem_id=p.id,
                    answer=final.answer,
                    correct=final.correct,
                    samples=records[p.id],
                    extra={
                        "subquestions": plans[p.id],
                        "subanswers": [a.strip() for _, a in solved[p.id]],
                        "decomposed": len(plans[p.id]) > 1,
                    },
                )
            )
        return solutions
