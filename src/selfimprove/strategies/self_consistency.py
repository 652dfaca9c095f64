"""Strategy `self-consistency`: sample k reasoning paths, answer by majority vote (Wang et al. 2022).

The greedy chain-of-thought answer is computed too (one extra completion per problem, step
"greedy") so that every self-consistency run reports its own baseline on the same problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selfimprove.core.types import Problem, Solution
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import registry, sample_step
from selfimprove.strategies.decoding import RepetitionControls, settings_identity
from selfimprove.strategies.voting import voted_solution
from selfimprove.tasks.base import Task


@registry.register("self-consistency")
@dataclass
class SelfConsistency(RepetitionControls):
    samples: int = 8
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 40
    max_tokens: int = 256
    seed: int = 0
    greedy_baseline: bool = True

    name = "self-consistency"

    def __post_init__(self) -> None:
        require_sampling_ranges(self)

    def describe(self) -> dict:
        return {"strategy": self.name, **settings_identity(self)}

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        greedy_rows = self.greedy_rows(problems, task, engine)
        sampling = self.sampled(task)
        rows = sample_step(problems, task, engine, "sample", self.samples, sampling)
        if greedy_rows is None:
            return [voted_solution(p, task, row, {}) for p, row in zip(problems, rows)]
        return [
            voted_solution(p, task, row, {"greedy_answer": g[0].answer, "greedy_correct": g[0].correct}, trace=g)
            for p, row, g in zip(problems, rows, greedy_rows)
        ]
