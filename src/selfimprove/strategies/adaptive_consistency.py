"""Strategy `adaptive-consistency`: self-consistency that stops sampling once the vote is settled.

Samples are drawn in rounds of `batch` per problem; after each round a stop rule looks at the
answers so far (`beta`: posterior confidence in the leader; `window`: the last `batch` answers are
unanimous, ESC) and problems that are settled, or reached `max_samples`, leave the pool. Sample ids
continue across rounds, so the samples drawn are the first ones a fixed-k run with the same seed
would draw. The final answer is the majority vote, as in `self-consistency`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Problem, Prompt, SampleRecord, Solution
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import records_for, registry
from selfimprove.strategies.decoding import RepetitionControls, settings_identity
from selfimprove.strategies.stopping import beta_stop, leader_confidence, window_stop
from selfimprove.strategies.voting import voted_solution
from selfimprove.tasks.base import Task

STOP_RULES = ("beta", "window")


@registry.register("adaptive-consistency")
@dataclass
class AdaptiveConsistency(RepetitionControls):
    samples: int = 16  # the most samples per problem
    batch: int = 4  # samples per round (and the ESC window)
    stop_rule: str = "beta"
    threshold: float = 0.95
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 40
    max_tokens: int = 256
    seed: int = 0

    name = "adaptive-consistency"

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        if self.stop_rule not in STOP_RULES:
            raise ConfigError(f"stop_rule {self.stop_rule!r}: expected one of {', '.join(STOP_RULES)}")
        if not 1 <= self.batch <= self.samples:
            raise ConfigError(f"batch must be within 1..samples ({self.samples}), got {self.batch}")

    def describe(self) -> dict:
        return {"strategy": self.name, **settings_identity(self)}

    def settled(self, answers: Sequence[str | None]) -> bool:
        if self.stop_rule == "beta":
            return beta_stop(answers, self.threshold)
        return window_stop(answers, self.batch)

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        sampling = self.sampled(task)
        drawn: dict[str, list[SampleRecord]] = {p.id: [] for p in problems}
        active = list(problems)
        while active:
            prompts = []
            for p in active:
                start = len(drawn[p.id])
                ids = tuple(range(start, min(start + self.batch, self.samples)))
                prompts.append(Prompt(task.format_prompt(p), problem_id=p.id, step="sample", sample_ids=ids))
            outputs = engine.generate(prompts, self.samples, sampling)
            for p, prompt, completions in zip(active, prompts, outputs):
                drawn[p.id].extend(records_for(task, p, "sample", prompt.sample_ids, completions))
            active = [
                p
                for p in active
                if len(drawn[p.id]) < self.samples and not self.settled([r.answer for r in drawn[p.id]])
            ]
        solutions = []
        for p in problems:
            answers = [r.answer for r in drawn[p.id]]
            extra = {"samples_used": len(answers), "leader_confidence": leader_confidence(answers)}
            solutions.append(voted_solution(p, task, drawn[p.id], extra))
        return solutions
