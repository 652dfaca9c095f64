"""One in-process engine, many concurrent requests: their engine calls are merged, so their sequences are decoded
together instead of one request after another.

Each request's thread calls `SharedEngine.generate` as it would the engine; the call waits in a queue. A single
worker owns the engine: it takes every waiting call, merges those with the same `n` and `Sampling` into one
`generate` over all their prompts (the engine's continuous batching then fills its slots from all of them), runs
calls whose settings differ one after another (the seed is not a setting that keeps calls apart: it goes with
each prompt, `Prompt.seed`), and hands each caller its own completions, and its `on_complete`
events, as they arrive. Calls that arrive while the engine is busy are merged into the next engine call (merging
is per engine call: a running call does not take in new sequences). A caller's `on_text` (text as it is generated)
is routed to it the same way, where the engine streams text.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

from selfimprove.core.types import Completion, Prompt, PromptContent, Sampling, normalize_prompts
from selfimprove.engines.base import Engine, OnComplete, OnText, streams_text


@dataclass
class _Call:
    prompts: list[Prompt]
    n: int
    sampling: Sampling
    on_complete: OnComplete | None
    on_text: OnText | None = None
    done: Future = field(default_factory=Future)
    failed: Exception | None = None  # its on_complete raised: it gets that error, the others their results


class SharedEngine:
    """Wraps an engine that must not be called from two threads at once (llama-cpp, hf)."""

    def __init__(self, engine: Engine, merge: bool = True):
        """`merge=False` runs every call alone, in arrival order: a lock, kept as the benchmark's baseline."""
        self.engine, self.merge = engine, merge
        self.name = engine.name
        self.streams_text = streams_text(engine)
        self._queue: queue.Queue[_Call | None] = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name="shared-engine", daemon=True)
        self._worker.start()
        self.engine_calls = 0
        self.merged_calls = 0

    def describe(self) -> dict:
        return self.engine.describe()

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)  # tokenising only: llama.cpp's tokenizer does not touch the context

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=60)
        self.engine.close()

    def generate(
        self,
        prompts: Sequence[Prompt | PromptContent],
        n: int,
        sampling: Sampling,
        on_complete: OnComplete | None = None,
        on_text: OnText | None = None,
    ) -> list[list[Completion]]:
        # The seed travels with each prompt, so calls that differ only in their seed can be merged.
        seeded = [p if p.seed is not None else replace(p, seed=sampling.seed) for p in normalize_prompts(prompts)]
        call = _Call(seeded, n, replace(sampling, seed=0), on_complete, on_text if self.streams_text else None)
        self._queue.put(call)
        return call.done.result()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            waiting = [first]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # close after this round
                    break
                waiting.append(more)
            if not self.merge:
                for call in waiting:
                    self._run([call], call.n, call.sampling)
                continue
            groups: dict[tuple[int, Sampling], list[_Call]] = {}
            for call in waiting:
                groups.setdefault((call.n, call.sampling), []).append(call)
            for (n, sampling), calls in groups.items():
                self._run(calls, n, sampling)

    def _run(self, calls: list[_Call], n: int, sampling: Sampling) -> None:
        """One engine call for `calls`; each gets its slice of the results (or the error)."""
        owners: list[tuple[_Call, int]] = [(call, i) for call in calls for i in range(len(call.prompts))]
        prompts = [call.prompts[i] for call, i in owners]

        def route(index: int, sample_id: int, completion: Completion) -> None:
            call, local = owners[index]
            if call.on_complete is not None and call.failed is None:
                try:
                    call.on_complete(local, sample_id, completion)
                except Exception as exc:  # noqa: BLE001 - one caller's failing callback must not stop the others
                    call.failed = exc

        def tell(index: int, sample_id: int, delta: str) -> None:
            call, local = owners[index]
            if call.on_text is not None and call.failed is None:
                try:
                    call.on_text(local, sample_id, delta)
                except Exception as exc:  # noqa: BLE001 - as above
                    call.failed = exc

        streaming = {"on_text": tell} if any(call.on_text is not None for call in calls) else {}
        self.engine_calls += 1
        self.merged_calls += len(calls)
        try:
            results = self.engine.generate(prompts, n, sampling, on_complete=route, **streaming)
        except BaseException as exc:  # noqa: BLE001 - every caller must hear of it, then the worker goes on
            for call in calls:
                if not call.done.done():
                    call.done.set_exception(exc)
            return
        start = 0
        for call in calls:
            if call.failed is not None:
                call.done.set_exception(call.failed)
            else:
                call.done.set_result(results[start : start + len(call.prompts)])
            start += len(call.prompts)
