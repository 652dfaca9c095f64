"""Strategy `weighted-consistency`: self-consistency whose votes are weighted by how likely the model found each
reasoning path (Wang et al. 2022, "Self-Consistency Improves Chain of Thought Reasoning", sec. 2 and table 1).

Weights, from the per-token log-probabilities the engine returns with each sample:
- `mean` (default): exp(mean token log-probability), the length-normalised sequence probability (the paper's
  "normalized weighted sum", which it found about as good as the plain majority vote);
- `sum`: exp(total log-probability), the unnormalised sequence probability (favours short paths; the paper found it
  worse than the majority vote).
The plain majority vote over the same samples is kept beside it (`extra["majority_answer"]`, and the maj@k curve
of the run's metrics), as is the greedy answer, so every run reports the baselines it is meant to beat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from selfimprove.core.errors import ConfigError, EngineError
from selfimprove.core.types import Problem, SampleRecord, Solution
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import registry, sample_step
from selfimprove.strategies.decoding import RepetitionControls, settings_identity
from selfimprove.strategies.voting import majority_vote, weighted_vote
from selfimprove.tasks.base import Task

WEIGHTS = ("mean", "sum")


def path_weight(record: SampleRecord, weight: str) -> float:
    """A sample's vote weight (see the module docstring)."""
    if record.mean_logprob is None:
        raise EngineError("weighted-consistency needs log-probabilities: the engine returned none")
    if weight == "mean":
        return math.exp(record.mean_logprob)
    return math.exp(record.mean_logprob * record.completion_tokens)


@registry.register("weighted-consistency")
@dataclass
class WeightedConsistency(RepetitionControls):
    samples: int = 8
    """Reasoning paths sampled per problem."""
    weight: str = "mean"
    """How a path's log-probability becomes its vote: mean (length-normalised) or sum."""
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 40
    max_tokens: int = 256
    seed: int = 0
    greedy_baseline: bool = True
    """Also answer greedily (step "greedy"), the baseline every sampling strategy reports."""

    name = "weighted-consistency"

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        if self.weight not in WEIGHTS:
            raise ConfigError(f"weight {self.weight!r} (-S weight=...): expected one of {', '.join(WEIGHTS)}")

    def describe(self) -> dict:
        return {"strategy": self.name, **settings_identity(self)}

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        greedy_rows = self.greedy_rows(problems, task, engine)
        sampling = self.sampled(task, logprobs=True)
        rows = sample_step(problems, task, engine, "sample", self.samples, sampling)
        solutions = []
        for index, (problem, row) in enumerate(zip(problems, rows)):
            answers = [r.answer for r in row]
            vote = weighted_vote(answers, [path_weight(r, self.weight) for r in row])
            majority = majority_vote(answers)
            extra = {
                "vote": f"weighted by {self.weight} logprob",
                "weighted_votes": vote.counts,
                "majority_answer": majority.answer,
                "majority_correct": task.grade(problem, majority.answer),
            }
            trace: list[SampleRecord] = []
            if greedy_rows is not None:
                trace = greedy_rows[index]
                extra.update(greedy_answer=trace[0].answer, greedy_correct=trace[0].correct)
            solutions.append(
                Solution(
                    problem_id=problem.id,
                    answer=vote.answer,
                    correct=task.grade(problem, vote.answer),
                    samples=[*trace, *row],
                    votes=majority.counts,
                    confidence=vote.share,
                    extra=extra,
                )
            )
        return solutions
