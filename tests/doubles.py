"""Test doubles for store, runner and strategy logic. Not engines anyone runs: they exist so that
bookkeeping can be checked exactly, without a model. The real engines are tested in slow tests."""

from __future__ import annotations

from selfimprove.core.types import Completion, Prompt, normalize_prompts


class ScriptedEngine:
    """Answers each (prompt, sample id) with `reply(prompt, sample_id)`; records every prompt and call."""

    name = "scripted-double"

    def __init__(self, reply, fail_after: int | None = None):
        self.reply = reply
        self.fail_after = fail_after
        self.prompts: list[Prompt] = []
        self.calls: list[tuple[str, str, int]] = []

    def describe(self) -> dict:
        return {"engine": self.name}

    def close(self) -> None:
        pass

    def generate(self, prompts, n, sampling, on_complete=None):
        out = []
        for index, prompt in enumerate(normalize_prompts(prompts)):
            self.prompts.append(prompt)
            row = []
            for sample_id in prompt.ids(n):
                if self.fail_after is not None and len(self.calls) >= self.fail_after:
                    raise KeyboardInterrupt  # stands for a process stopped part way
                self.calls.append((prompt.problem_id, prompt.step, sample_id))
                completion = Completion(
                    text=self.reply(prompt, sample_id), prompt_tokens=10, completion_tokens=5, seconds=0.01
                )
                if on_complete:
                    on_complete(index, sample_id, completion)
                row.append(completion)
            out.append(row)
        return out


class CountingEngine(ScriptedEngine):
    """Answers sample s with "The answer is <answer_of(s)>." (default s % 3)."""

    name = "counting-double"

    def __init__(self, fail_after: int | None = None, answer_of=lambda s: s % 3):
        super().__init__(lambda prompt, s: f" The answer is {answer_of(s)}.", fail_after=fail_after)
