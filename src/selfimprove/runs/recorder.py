"""RecordingEngine: wraps any Engine so that completions come from the run store when stored
and are written to it the moment they are generated otherwise.

This is what makes runs resumable without strategies knowing: a strategy asks for n samples of a
prompt; the recorder asks the real engine only for the sample ids the store lacks (the engine
seeds by sample id, so they are the samples an uninterrupted run would have drawn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from selfimprove.core.types import Completion, Prompt, PromptContent, Sampling, normalize_prompts
from selfimprove.engines.base import Engine, OnComplete
from selfimprove.runs.store import RunStore


class RecordingEngine:
    def __init__(
        self,
        engine: Engine,
        store: RunStore,
        run_id: str,
        session: int,
        on_generated: Callable[[Completion], None] | None = None,
    ):
        self.engine, self.store, self.run_id, self.session = engine, store, run_id, session
        self.on_generated = on_generated
        self.name = engine.name
        self.reused = 0
        self.generated = 0

    def describe(self) -> dict:
        return self.engine.describe()

    def close(self) -> None:
        self.engine.close()

    def generate(
        self,
        prompts: Sequence[Prompt | PromptContent],
        n: int,
        sampling: Sampling,
        on_complete: OnComplete | None = None,
    ) -> list[list[Completion]]:
        prompts = normalize_prompts(prompts)
        have: list[dict[int, Completion]] = []
        ask: list[Prompt] = []
        ask_index: list[int] = []
        for index, prompt in enumerate(prompts):
            if not prompt.problem_id:
                raise ValueError("RecordingEngine needs prompts tagged with a problem_id")
            stored = self.store.completions(self.run_id, prompt.problem_id, prompt.step)
            wanted = prompt.ids(n)
            have.append({i: stored[i] for i in wanted if i in stored})
            self.reused += len(have[-1])
            missing = tuple(i for i in wanted if i not in stored)
            if missing:
                ask.append(replace(prompt, sample_ids=missing))
                ask_index.append(index)

        def record(sub_index: int, sample_id: int, completion: Completion) -> None:
            index = ask_index[sub_index]
            prompt = prompts[index]
            self.store.add_completion(self.run_id, prompt.problem_id, prompt.step, sample_id, completion, self.session)
            have[index][sample_id] = completion
            self.generated += 1
            if self.on_generated is not None:
                self.on_generated(completion)
            if on_complete is not None:
                on_complete(index, sample_id, completion)

        if ask:
            results = self.engine.generate(ask, n, sampling, on_complete=record)
            # An engine that returns completions without announcing them still gets them stored.
            for sub_index, (prompt, completions) in enumerate(zip(ask, results)):
                for sample_id, completion in zip(prompt.sample_ids or (), completions):
                    if sample_id not in have[ask_index[sub_index]]:
                        record(sub_index, sample_id, completion)
        return [[have[i][s] for s in prompt.ids(n)] for i, prompt in enumerate(prompts)]
