"""One worker's share of a run: a strategy solving chunks of problems with its own engine, reporting every
completion the moment it exists (used by the Ray executor; plain Python, testable without Ray).

The driver stays the run store's one writer. A chunk arrives with the completions the store already holds for
its problems (`Dispatch.stored`), so a chunk re-sent after its worker died, or after the driver restarted,
draws only the samples nobody delivered: the worker's `RecordingEngine` reads the prefill the way it reads the
store locally, and announces each new completion (`Generated`) instead of writing it. Engines seed samples by
sample id, so the samples are the ones a local run draws.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from selfimprove.core.types import Completion, Problem, Solution
from selfimprove.engines.spec import EngineSpec
from selfimprove.runs.recorder import RecordingEngine
from selfimprove.strategies.base import Strategy
from selfimprove.tasks.base import Task

StoredCompletions = dict[str, dict[str, dict[int, Completion]]]
"""problem id -> step -> sample id -> completion."""


@dataclass
class Dispatch:
    """A chunk of problems sent to one worker."""

    chunk: int
    problems: list[Problem]
    stored: StoredCompletions = field(default_factory=dict)


@dataclass
class Generated:
    """A completion a worker drew (the driver stores it before anything else of that chunk)."""

    chunk: int
    problem_id: str
    step: str
    sample_id: int
    completion: Completion
    worker_pid: int


@dataclass
class Solved:
    """A chunk's solutions, the last thing a worker reports of it."""

    chunk: int
    solutions: list[tuple[str, Solution]]
    reused: int
    generated: int
    worker_pid: int


class PrefilledBook:
    """What a worker's RecordingEngine reads and writes instead of the run store: the dispatch's stored
    completions, and a callback for each new one."""

    def __init__(self, stored: StoredCompletions, on_new: Callable[[str, str, int, Completion], None]):
        self.stored = stored
        self.on_new = on_new

    def completions(self, run_id: str, problem_id: str, step: str) -> dict[int, Completion]:
        return dict(self.stored.get(problem_id, {}).get(step, {}))

    def add_completion(
        self, run_id: str, problem_id: str, step: str, sample: int, completion: Completion, session: int
    ) -> None:
        self.stored.setdefault(problem_id, {}).setdefault(step, {})[sample] = completion
        self.on_new(problem_id, step, sample, completion)


_FINISHED = object()


class ShardWorker:
    """Holds a task, a strategy and an engine built from `engine` in this process; `solve` yields a chunk's
    completions as they are drawn, then its solutions. As a Ray actor, each worker is one of these."""

    def __init__(self, task: Task, strategy: Strategy, engine: EngineSpec, cwd: str | None = None):
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)  # relative data paths mean what they meant to the driver (same machine or shared disk)
        self.task, self.strategy = task, strategy
        self.engine = engine.build()

    def ready(self) -> int:
        """The worker's process id, once its engine is loaded."""
        return os.getpid()

    def describe(self) -> dict[str, Any]:
        return self.engine.describe()

    def close(self) -> None:
        self.engine.close()

    def solve(self, dispatch: Dispatch) -> Iterator[Generated | Solved]:
        """The strategy runs in a thread; its completions are yielded from this generator as they arrive."""
        events: queue.Queue[Any] = queue.Queue()
        pid = os.getpid()

        def announce(problem_id: str, step: str, sample_id: int, completion: Completion) -> None:
            events.put(Generated(dispatch.chunk, problem_id, step, sample_id, completion, pid))

        def work() -> None:
            try:
                recorder = RecordingEngine(self.engine, PrefilledBook(dispatch.stored, announce), "", 0)  # type: ignore[arg-type]
                solutions = self.strategy.solve(dispatch.problems, self.task, recorder)
                pairs = [(p.id, s) for p, s in zip(dispatch.problems, solutions)]
                events.put(Solved(dispatch.chunk, pairs, recorder.reused, recorder.generated, pid))
            except BaseException as exc:  # reaches the driver as this task's error
                events.put(exc)
            finally:
                events.put(_FINISHED)

        threading.Thread(target=work, name=f"chunk-{dispatch.chunk}", daemon=True).start()
        while (event := events.get()) is not _FINISHED:
            if isinstance(event, BaseException):
                raise event
            yield event
