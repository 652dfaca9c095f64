"""Test doubles for store, runner and strategy logic. Not engines anyone runs: they exist so that
bookkeeping can be checked exactly, without a model. The real engines are tested in slow tests."""

from __future__ import annotations

from dataclasses import replace

from selfimprove.core.types import Completion, Prompt, Sampling, normalize_prompts


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


class ConfidenceEngine(ScriptedEngine):
    """Answers sample s with "The answer is <answer_of(s)>." in `tokens` pseudo-tokens whose top-2 log-probabilities
    make each token's confidence `confidence_of(s)` (DeepConf's measure) and the sequence's mean log-probability
    `-1 / confidence_of(s)`. Honours `Sampling.stop_below_confidence` as an engine must: a trace whose first window
    is below the threshold ends there, its text cut short (no answer), finish_reason "low_confidence"."""

    name = "confidence-double"

    def __init__(self, answer_of, confidence_of, tokens: int = 8):
        super().__init__(lambda prompt, s: f" The answer is {answer_of(s)}.")
        self.confidence_of, self.tokens = confidence_of, tokens
        self.samplings: list[Sampling] = []

    def generate(self, prompts, n, sampling, on_complete=None):
        self.samplings.append(sampling)
        rows = super().generate(prompts, n, sampling)
        out = []
        for index, (prompt, row) in enumerate(zip(normalize_prompts(prompts), rows)):
            finished = []
            for sample_id, completion in zip(prompt.ids(n), row):
                c = self.confidence_of(sample_id)
                top = [[("a", -0.5 * c), ("b", -1.5 * c)]] * self.tokens  # -(mean of top-2) = c
                done = replace(
                    completion, completion_tokens=self.tokens, logprobs=[-1 / c] * self.tokens, top_logprobs=top
                )
                threshold = sampling.stop_below_confidence
                if threshold and c < threshold and self.tokens >= sampling.confidence_window:
                    cut = sampling.confidence_window
                    done = replace(
                        done, text=done.text[:3], completion_tokens=cut, finish_reason="low_confidence",
                        logprobs=done.logprobs[:cut], top_logprobs=top[:cut],
                    )  # fmt: skip
                if on_complete:
                    on_complete(index, sample_id, done)
                finished.append(done)
            out.append(finished)
        return out


class StreamingEngine(CountingEngine):
    """CountingEngine that tells each sample's text word by word to `on_text` (through `TextStream`, as a real
    engine does) before its completion, with a pause between words so a client can see them arrive."""

    name = "streaming-double"
    streams_text = True

    def __init__(self, pause: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.pause = pause
        self.told: list[tuple[int, int, str]] = []

    def generate(self, prompts, n, sampling, on_complete=None, on_text=None):
        import time

        from selfimprove.engines.base import TextStream

        def finish(index, sample_id, completion):
            if on_text is not None:
                stream, words = TextStream(sampling.stop), completion.text.split(" ")
                for count in range(1, len(words) + 1):
                    delta = stream.delta(" ".join(words[:count]), final=count == len(words))
                    if delta:
                        self.told.append((index, sample_id, delta))
                        on_text(index, sample_id, delta)
                    time.sleep(self.pause)
            if on_complete:
                on_complete(index, sample_id, completion)

        return super().generate(prompts, n, sampling, on_complete=finish)
