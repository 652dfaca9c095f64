"""Test doubles for store and runner logic. Not an engine anyone runs: it exists so that resume
bookkeeping can be checked exactly, without a model. The real engines are tested in slow tests."""

from __future__ import annotations

from selfimprove.core.types import Completion, normalize_prompts


class CountingEngine:
    """Answers sample s of a prompt with "The answer is <answer_of(s)>." (default s % 3) and counts
    every completion it makes."""

    name = "counting-double"

    def __init__(self, fail_after: int | None = None, answer_of=lambda s: s % 3):
        self.calls: list[tuple[str, str, int]] = []
        self.fail_after = fail_after
        self.answer_of = answer_of

    def describe(self) -> dict:
        return {"engine": self.name}

    def close(self) -> None:
        pass

    def generate(self, prompts, n, sampling, on_complete=None):
        out = []
        for index, prompt in enumerate(normalize_prompts(prompts)):
            row = []
            for sample_id in prompt.ids(n):
                if self.fail_after is not None and len(self.calls) >= self.fail_after:
                    raise KeyboardInterrupt  # stands for a process stopped part way
                self.calls.append((prompt.problem_id, prompt.step, sample_id))
                completion = Completion(
                    text=f" The answer is {self.answer_of(sample_id)}.",
                    prompt_tokens=10,
                    completion_tokens=5,
                    seconds=0.01,
                )
                if on_complete:
                    on_complete(index, sample_id, completion)
                row.append(completion)
            out.append(row)
        return out
