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


def execute(
    task: Task,
    strategy: Strategy,
    engine: Engine,
    store: RunStore,
    limit: int | None = None,
    batch_size: int = 4,
    show_progress: bool = True,
    split: str = "test",
    unlabeled: bool = False,
) -> RunOutcome:
    """Solve the first `limit` problems of `split` (all when None), storing everything as it completes.
    The split is part of the run's identity (a train run never resumes a test run). `unlabeled` hides the
    references (what self-training samples from: nothing graded against a label is stored)."""
    if limit is not None:
        require_range("limit", limit, 1)
    require_range("batch_size", batch_size, 1)
    problems = list(task.problems(split, limit=limit))
    if unlabeled:
        problems = [replace(p, reference=None) for p in problems]
    if not problems:
        raise ConfigError(f"task {task.name!r} has no {split} problems to run (its data holds none)")
    config = run_config(task, strategy, engine, split, unlabeled)
    run_id = run_id_for(config)
    label = f"{task.name} · {strategy.name} · {engine.describe().get('model', engine.name)}"
    label += "" if split == "test" else f" · {split}"
    store.claim_run(run_id)  # a second process on the same run stops here, before computing anything
    try:
        return _execute_claimed(task, strategy, engine, store, problems, run_id, label, config, batch_size,
                                show_progress)  # fmt: skip
    finally:
        store.release_run(run_id)


def _execute_claimed(task, strategy, engine, store, problems, run_id, label, config, batch_size, show_progress):
    """The run's unsolved problems, once this process holds the run's claim."""
    session = store.open_run(run_id, label, config)
    position = {p.id: i for i, p in enumerate(problems)}
    solved = store.solved(run_id)
    todo = [p for p in problems if p.id not in solved]

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show_progress,
        transient=False,
    )
    with progress:
        bar = progress.add_task(f"run {run_id}", total=len(problems), completed=len(problems) - len(todo), extra="")
        tokens = [0]

        def on_generated(completion) -> None:
            tokens[0] += completion.completion_tokens
            progress.update(bar, extra=f"{recorder.generated} completions, {tokens[0]} tokens")

        recorder = RecordingEngine(engine, store, run_id, session, on_generated=on_generated)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            solutions = strategy.solve(chunk, task, recorder)
            store.add_solutions(run_id, [(position[p.id], p, s) for p, s in zip(chunk, solutions)])
            store.renew_claim(run_id)
            progress.advance(bar, len(chunk))
    return RunOutcome(
        run_id=run_id,
        problems=len(problems),
        solved_now=len(todo),
        completions_reused=recorder.reused,
        completions_generated=recorder.generated,
    )
