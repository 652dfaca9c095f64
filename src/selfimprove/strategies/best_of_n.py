"""Strategy `best-of-n`: sample n reasoning paths and answer with the one a reward model scores highest.

The scorer is a reward model, an ensemble of them with an aggregator (mean, min, uncertainty = mean − λ·std,
median), a process reward model whose step scores are reduced (min, product, last), or any object with
`score(prompt, responses)` (`rewards/model.py: RewardScorer`). The choice is made from the rewards and the
extracted answers alone: the samples are graded only after it, for the record, so the task's grader can never
steer it. The highest-reward sample that states an answer wins (one that states none cannot answer); every
sample's reward (and each member's) is stored, and the plain majority vote over the same samples is kept
beside it (`extra["majority_correct"]`, and maj@k in the run's metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Problem, Prompt, SampleRecord, Solution
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.rewards.aggregate import require_aggregator
from selfimprove.rewards.model import RewardScore, RewardScorer, load_reward
from selfimprove.strategies.base import extract_answer, records_for, registry
from selfimprove.strategies.decoding import RepetitionControls, settings_identity
from selfimprove.strategies.voting import majority_vote
from selfimprove.tasks.base import Task


@registry.register("best-of-n")
@dataclass
class BestOfN(RepetitionControls):
    samples: int = 8
    """n: reasoning paths sampled per problem (in one engine call, sharing the prompt)."""
    reward_model: str = ""
    """The reward model: a folder written by `selfimprove reward train` (an ensemble when it holds several
    members) or any one-output sequence-classification checkpoint."""
    aggregator: str = "mean"
    """How an ensemble's members become one reward: mean, min (worst case), uncertainty (mean − λ·std), median."""
    uncertainty_weight: float = 1.0
    """λ of the uncertainty aggregator."""
    step_reduce: str = "min"
    """For a process reward model: how its steps' scores become the path's (min, product, last)."""
    score_batch_size: int = 32
    """Responses scored per forward pass."""
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 40
    max_tokens: int = 256
    seed: int = 0
    greedy_baseline: bool = True
    """Also answer greedily (step "greedy"), the baseline every sampling strategy reports."""
    scorer: RewardScorer | None = field(default=None, repr=False, compare=False)
    """A scorer object instead of `reward_model` (Python callers)."""

    name = "best-of-n"

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        require_aggregator(self.aggregator, self.uncertainty_weight)
        if self.scorer is None and not self.reward_model:
            raise ConfigError("best-of-n needs a reward model: -S reward_model=FOLDER (see `selfimprove reward train`)")
        if self.scorer is None:
            self.scorer = load_reward(
                self.reward_model, self.aggregator, self.uncertainty_weight, self.score_batch_size, self.step_reduce
            )

    def describe(self) -> dict:
        # The scorer describes itself (its weights' fingerprint, members and aggregator); the batch size does
        # not change a score.
        settings = settings_identity(
            self,
            leave_out=("scorer", "reward_model", "aggregator", "uncertainty_weight", "score_batch_size", "step_reduce"),
        )
        return {"strategy": self.name, **settings, "reward": self.scorer.describe()}

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        greedy_rows = self.greedy_rows(problems, task, engine)
        sampling = self.sampled(task)
        texts = [task.format_prompt(p) for p in problems]  # text or chat messages: the scorer renders them
        prompts = [Prompt(content=text, problem_id=p.id, step="sample") for p, text in zip(problems, texts)]
        outputs = engine.generate(prompts, self.samples, sampling)
        solutions = []
        for index, (problem, text, completions) in enumerate(zip(problems, texts, outputs)):
            answers = [extract_answer(task, problem, c.text) for c in completions]
            scores = self.scorer.score(text, [c.text for c in completions])
            chosen = choose(scores, answers)
            # Graded only now, after the choice: the grader cannot have steered it.
            records = [
                _scored(record, score)
                for record, score in zip(
                    records_for(task, problem, "sample", range(self.samples), completions, answers), scores
                )
            ]
            majority = majority_vote(answers)
            extra = {
                "vote": "best reward",
                "chosen_sample": chosen,
                "majority_answer": majority.answer,
                "majority_correct": task.grade(problem, majority.answer),
            }
            trace: list[SampleRecord] = []
            if greedy_rows is not None:
                trace = greedy_rows[index]
                extra.update(greedy_answer=trace[0].answer, greedy_correct=trace[0].correct)
            best = records[chosen] if chosen is not None else None
            solutions.append(
                Solution(
                    problem_id=problem.id,
                    answer=best.answer if best else None,
                    correct=best.correct if best else task.grade(problem, None),
                    samples=[*trace, *records],
                    votes=majority.counts,
                    confidence=best.reward if best else None,
                    extra=extra,
                )
            )
        return solutions


def choose(scores: Sequence[RewardScore], answers: Sequence[str | None]) -> int | None:
    """The index of the highest-reward sample that states an answer (the earliest on a tie); None if none does."""
    candidates = [i for i, answer in enumerate(answers) if answer is not None]
    return max(candidates, key=lambda i: (scores[i].value, -i)) if candidates else None


def _scored(record: SampleRecord, score: RewardScore) -> SampleRecord:
    return replace(record, reward=score.value, reward_members=score.members or None)
