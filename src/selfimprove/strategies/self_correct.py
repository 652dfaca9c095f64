"""Strategy `self-correct`: multi-turn intrinsic self-correction (the inference side of SCoRe,
Kumar et al. 2024, "Training Language Models to Self-Correct via Reinforcement Learning").

Turn 1 is the task's normal prompt. Turn t+1 is the conversation so far plus a correction
instruction. Chat prompts get it as messages (assistant: the attempt, user: the instruction);
text prompts as a transcript:

    <turn-1 prompt><attempt 1>

    <instruction>
    Revised answer:<attempt 2>

    <instruction>
    Revised answer:<attempt 3> ...

Each turn's answer is extracted and graded and kept in `Solution.extra["turns"]` (the contract the
turn metrics and reports read). With `turn_samples` k > 1 each turn is a self-consistency vote over
k samples, and the conversation continues from the first sample that gave the winning answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Problem, Prompt, PromptContent, Sampling, Solution
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import records_for, registry
from selfimprove.strategies.decoding import RepetitionControls, settings_identity
from selfimprove.strategies.voting import majority_vote
from selfimprove.tasks.base import Task

DEFAULT_INSTRUCTION = (
    "There might be an error in the solution above because of lack of understanding of the question. "
    "Please correct the error, if any, and rewrite the solution."
)
REVISION_CUE = "Revised answer:"


def attempt_stops(task: Task, instruction: str) -> tuple[str, ...]:
    """What ends one attempt: the task's stops, and the instruction's first words (a base model may write it)."""
    return (*task.stop, "\n" + instruction[:24])


def continue_conversation(prompt: PromptContent, attempt: str, instruction: str) -> PromptContent:
    """The next turn's prompt: the previous prompt, its attempt, then the correction instruction."""
    if isinstance(prompt, str):
        return f"{prompt}{attempt.rstrip()}\n\n{instruction}\n{REVISION_CUE}"
    return [*prompt, {"role": "assistant", "content": attempt}, {"role": "user", "content": instruction}]


@registry.register("self-correct")
@dataclass
class SelfCorrect(RepetitionControls):
    turns: int = 2
    instruction: str = DEFAULT_INSTRUCTION
    turn_samples: int = 1
    temperature: float = 0.0  # with turn_samples > 1, sampling needs a temperature: 0.7 is used if left at 0
    top_p: float = 1.0
    top_k: int = 40
    max_tokens: int = 256
    seed: int = 0

    name = "self-correct"

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        if self.turns < 1 or self.turn_samples < 1:
            raise ConfigError(f"turns and turn_samples must be >= 1, got {self.turns} and {self.turn_samples}")

    def describe(self) -> dict:
        return {"strategy": self.name, **settings_identity(self)}

    def _sampling(self, task: Task) -> Sampling:
        temperature = self.temperature or (0.7 if self.turn_samples > 1 else 0.0)
        stop = attempt_stops(task, self.instruction)
        return Sampling(
            **self.penalties(),
            temperature=temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=self.max_tokens,
            stop=stop,
            seed=self.seed,
        )

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        sampling = self._sampling(task)
        prompts = {p.id: task.format_prompt(p) for p in problems}
        samples = {p.id: [] for p in problems}
        turns = {p.id: [] for p in problems}
        for turn in range(1, self.turns + 1):
            step = f"turn{turn}"
            requests = [Prompt(prompts[p.id], problem_id=p.id, step=step) for p in problems]
            outputs = engine.generate(requests, self.turn_samples, sampling)
            for p, completions in zip(problems, outputs):
                records = records_for(task, p, step, range(self.turn_samples), completions)
                samples[p.id].extend(records)
                vote = majority_vote([r.answer for r in records])
                chosen = next((r for r in records if r.answer == vote.answer), records[0])
                turns[p.id].append(
                    {
                        "answer": vote.answer,
                        "correct": task.grade(p, vote.answer),
                        "text": chosen.text,
                        "votes": vote.counts,
                    }
                )
                prompts[p.id] = continue_conversation(prompts[p.id], chosen.text, self.instruction)
        return [
            Solution(
                problem_id=p.id,
                answer=turns[p.id][-1]["answer"],
                correct=turns[p.id][-1]["correct"],
                samples=samples[p.id],
                votes=turns[p.id][-1]["votes"],
                extra={"turns": turns[p.id]},
            )
            for p in problems
        ]
