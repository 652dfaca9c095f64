"""Resumable execution of a strategy over a task's problems, with a progress bar.

The run id is a hash of everything that changes outputs (task, strategy, engine descriptions) and
not of `limit`, so `--limit 30` then `--limit 60` extends the same run. Problems already solved
are skipped; completions already stored are reused by the RecordingEngine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from selfimprove.core.errors import ConfigError
from selfimprove.core.validation import require_range
from selfimprove.engines.base import Engine
from selfimprove.runs.recorder import RecordingEngine
from selfimprove.runs.store import RunStore
from selfimprove.strategies.base import Strategy
from selfimprove.tasks.base import Task


def run_config(
    task: Task, strategy: Strategy, engine: Engine, split: str = "test", unlabeled: bool = False
) -> dict[str, Any]:
    """What identifies a run. The split sits in the task's description, and only when it is not the test split,
    so runs stored before `split` existed (test runs, LMSI's unlabeled train runs) keep their ids."""
    described = task.describe()
    if split != "test":
        described = {**described, "split": split}
    if unlabeled:
        described = {**described, "unlabeled": True}
    return {"task": described, "strategy": strategy.describe(), "engine": engine.describe()}


def run_id_for(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class RunOutcome:
    run_id: str
    problems: int
    solved_now: int
    completions_reused: int
    completions_generated: int
    shards: Any = None
    """On an executor (Ray): its counts (chunks dispatched, problems re-dispatched, workers lost); else None."""


def execute(
    task: Task,
    strategy: Strategy,
    engine: Engine | Any,
    store: RunStore,
    limit: int | None = None,
    batch_size: int = 4,
    show_progress: bool = True,
    split: str = "test",
    unlabeled: bool = False,
    executor: Any = None,
) -> RunOutcome:
    """Solve the first `limit` problems of `split` (all when None), storing everything as it completes.
    The split is part of the run's identity (a train run never resumes a test run). `unlabeled` hides the
    references (what self-training samples from: nothing graded against a label is stored). With an `executor`
    (`RayExecutor`), `engine` is an `EngineSpec` each worker builds, and the problems are sharded across them;
    the run id and the samples are the local run's."""
    if limit is not None:
        require_range("limit", limit, 1)
    require_range("batch_size", batch_size, 1)
    problems = list(task.problems(split, limit=limit))
    if unlabeled:
        problems = [replace(p, reference=None) for p in problems]
    if not problems:
        raise ConfigError(f"task {task.name!r} has no {split} problems to run (its data holds none)")
    if executor is None:
        return _execute(task, strategy, engine, store, problems, split, unlabeled, batch_size, show_progress, None)
    with executor.start(task, strategy, engine) as pool:  # the pool stands in for the engine: its description
        return _execute(task, strategy, pool, store, problems, split, unlabeled, batch_size, show_progress, pool)


def _execute(task, strategy, engine, store, problems, split, unlabeled, batch_size, show_progress, pool):
    config = run_config(task, strategy, engine, split, unlabeled)
    run_id = run_id_for(config)
    label = f"{task.name} · {strategy.name} · {engine.describe().get('model', engine.name)}"
    label += "" if split == "test" else f" · {split}"
    store.claim_run(run_id)  # a second process on the same run stops here, before computing anything
    try:
        session = store.open_run(run_id, label, config)
        position = {p.id: i for i, p in enumerate(problems)}
        solved = store.solved(run_id)
        todo = [p for p in problems if p.id not in solved]
        with _progress_bar(show_progress) as progress:
            bar = progress.add_task(f"run {run_id}", total=len(problems), completed=len(problems) - len(todo),
                                    extra="")  # fmt: skip
            sink = _StoreSink(store, run_id, session, position, progress, bar)
            if pool is None:
                reused, generated, shards = *_solve_here(task, strategy, engine, todo, batch_size, sink), None
            else:
                shards = pool.solve(todo, batch_size, sink)
                reused, generated = shards.reused, shards.stored
    finally:
        store.release_run(run_id)
    return RunOutcome(run_id=run_id, problems=len(problems), solved_now=len(todo), completions_reused=reused,
                      completions_generated=generated, shards=shards)  # fmt: skip


def _solve_here(task, strategy, engine, todo, batch_size, sink) -> tuple[int, int]:
    """The run's unsolved problems in this process, a chunk at a time."""
    recorder = RecordingEngine(engine, sink.store, sink.run_id, sink.session, on_generated=sink.counted)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        sink.solved(list(zip(chunk, strategy.solve(chunk, task, recorder))))
    return recorder.reused, recorder.generated


def _progress_bar(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show,
        transient=False,
    )


class _StoreSink:
    """Where a run's completions and solutions go, in the process that holds the run's claim."""

    def __init__(self, store: RunStore, run_id: str, session: int, position: dict[str, int], progress, bar):
        self.store, self.run_id, self.session, self.position = store, run_id, session, position
        self.progress, self.bar = progress, bar
        self.completions = self.tokens = 0

    def counted(self, completion) -> None:
        """A completion stored (by the local RecordingEngine or by `completion`): the bar's count."""
        self.completions += 1
        self.tokens += completion.completion_tokens
        self.progress.update(self.bar, extra=f"{self.completions} completions, {self.tokens} tokens")

    def completion(self, problem_id: str, step: str, sample_id: int, completion) -> None:
        self.store.add_completion(self.run_id, problem_id, step, sample_id, completion, self.session)
        self.counted(completion)

    def solved(self, pairs) -> None:
        self.store.add_solutions(self.run_id, [(self.position[p.id], p, s) for p, s in pairs])
        self.heartbeat()
        self.progress.advance(self.bar, len(pairs))

    def stored_for(self, problem_id: str):
        return self.store.problem_completions(self.run_id, problem_id)

    def heartbeat(self) -> None:
        self.store.renew_claim(self.run_id)
