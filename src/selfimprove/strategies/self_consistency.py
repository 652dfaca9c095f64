"""Strategy `self-consistency`: sample k reasoning paths, answer by majority vote (Wang et al. 2022).

The greedy chain-of-thought answer is computed too (one extra completion per problem, step
"greedy") so that every self-consistency run reports its own baseline on the same problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from selfimprove.core.types import Problem, Sampling, Solution
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import registry, sample_step
from selfimprove.strategies.voting import majority_vote
from selfimprove.tasks.base import Task


@registry.register("self-consistency")
@dataclass
class SelfConsistency:
    samples: int = 8
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 40
    max_tokens: int = 256
    seed: int = 0
    greedy_baseline: bool = True

    name = "self-consistency"

    def describe(self) -> dict:
        return {"strategy": self.name, **asdict(self)}

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        stop = tuple(task.stop)
        greedy_rows = None
        if self.greedy_baseline:
            greedy = Sampling(temperature=0.0, max_tokens=self.max_tokens, stop=stop)
            greedy_rows = sample_step(problems, task, engine, "greedy", 1, greedy)
        sampling = Sampling(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=self.max_tokens,
            stop=stop,
            seed=self.seed,
        )
        rows = sample_step(problems, task, engine, "sample", self.samples, sampling)
        solutions = []
        for i, (problem, row) in enumerate(zip(problems, rows)):
            vote = majority_vote([r.answer for r in row])
            extra = {}
            samples = list(row)
            if greedy_rows is not None:
                extra = {"greedy_answer": greedy_rows[i][0].answer, "greedy_correct": greedy_rows[i][0].correct}
                samples = greedy_rows[i] + samples
            solutions.append(
                Solution(
                    problem_id=problem.id,
                    answer=vote.answer,
                    correct=task.grade(problem, vote.answer),
                    samples=samples,
                    votes=vote.counts,
                    confidence=vote.share,
                    extra=extra,
                )
            )
        return solutions
