"""Strategy `cot`: one greedy chain-of-thought completion per problem (Wei et al. 2022)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selfimprove.core.types import Problem, Sampling, Solution
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import registry, sample_step
from selfimprove.strategies.decoding import RepetitionControls, settings_identity
from selfimprove.tasks.base import Task


@registry.register("cot")
@dataclass
class ChainOfThought(RepetitionControls):
    max_tokens: int = 256

    name = "cot"

    def __post_init__(self) -> None:
        require_sampling_ranges(self)

    def describe(self) -> dict:
        return {"strategy": self.name, **settings_identity(self)}

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        sampling = Sampling(**self.penalties(), temperature=0.0, max_tokens=self.max_tokens, stop=tuple(task.stop))
        rows = sample_step(problems, task, engine, "greedy", 1, sampling)
        return [
            Solution(
                problem_id=p.id,
                answer=row[0].answer,
                correct=row[0].correct,
                samples=row,
                extra={"greedy_answer": row[0].answer, "greedy_correct": row[0].correct},
            )
            for p, row in zip(problems, rows)
        ]
