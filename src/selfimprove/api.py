"""The Python entry points the CLI's `run` is built on: run a strategy over a task with an engine, resumably.

    import selfimprove as si
    result = si.run(si.QuestionsTask(items=[("What is 7 * 6?", 42)]), si.SelfConsistency(samples=8), engine)
    result.metrics.accuracy, result.metrics.maj_at_k, result.metrics.completion_tokens_per_problem

Every completion goes to a run store as it is generated (by default `$SELFIMPROVE_HOME/runs.sqlite`,
the CLI's), so calling `run` again with the same settings resumes instead of recomputing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfimprove import engines, strategies, tasks
from selfimprove.core.config import default_store_path
from selfimprove.engines.base import Engine
from selfimprove.engines.spec import EngineSpec
from selfimprove.runs import metrics, runner
from selfimprove.runs.metrics import RunMetrics, TurnMetrics
from selfimprove.runs.store import RunStore
from selfimprove.strategies.base import Strategy
from selfimprove.tasks.base import Task


@dataclass
class RunResult:
    """What one `run` call gives back: the run's id in its store, its metrics, and every solution's row."""

    run_id: str
    label: str
    """task · strategy · model, as `selfimprove runs` lists it."""
    metrics: RunMetrics
    turns: TurnMetrics | None
    """Acc@t and the flips between attempts, for multi-turn strategies (self-correct); else None."""
    solutions: list[dict[str, Any]]
    """The store's rows: answer, correct, votes, samples (tokens, seconds, answers), extra (traces)."""
    store: Path
    completions_reused: int
    completions_generated: int
    shards: Any = None
    """On Ray: the driver's counts (chunks dispatched, problems re-dispatched, workers lost, completions stored)."""


def _named(registry: Any, value: Any) -> Any:
    """A registered name builds that part with its defaults; anything else is used as given."""
    return registry.get(value)() if isinstance(value, str) else value


@contextmanager
def _opened(store: RunStore | str | Path | None) -> Iterator[RunStore]:
    """The store given, or the one at that path (default: the CLI's), closed afterwards only if opened here."""
    if isinstance(store, RunStore):
        yield store
        return
    opened = RunStore(store or default_store_path())
    try:
        yield opened
    finally:
        opened.close()


def run(
    task: Task | str,
    strategy: Strategy | str,
    engine: Engine | str,
    *,
    store: RunStore | str | Path | None = None,
    limit: int | None = None,
    split: str = "test",
    unlabeled: bool = False,
    batch_size: int = 4,
    progress: bool = False,
    executor: Any = None,
) -> RunResult:
    """Solve the first `limit` problems of `split` (all when None) and compute the run's metrics.

    `task`, `strategy` and `engine` are objects (`si.QuestionsTask(...)`, `si.SelfConsistency(samples=8)`,
    `si.LlamaCppEngine(model="m.gguf")`) or registered names built with their defaults ("arithmetic",
    "cot", "llama-cpp": the embedded model). An engine built here from a name is closed here; one you
    pass stays yours to close. `store`: a RunStore or a path (default: the CLI's store). `unlabeled` hides the
    references (self-training's view of a train split: nothing is graded against a label).

    `executor`: `si.RayExecutor(si.RaySettings(workers=4))` shards the problems across Ray workers; the engine is
    then a name or an `si.EngineSpec` (each worker builds its own), and the run (id, samples, metrics) is the one
    a local run gives."""
    the_task = _named(tasks, task)
    the_strategy = _named(strategies, strategy)
    if executor is not None:
        the_engine = EngineSpec(engine) if isinstance(engine, str) else engine
    elif isinstance(engine, EngineSpec):
        the_engine = engine.build()
    else:
        the_engine = _named(engines, engine)
    try:
        with _opened(store) as run_store:
            outcome = runner.execute(
                the_task, the_strategy, the_engine, run_store,
                limit=limit, batch_size=batch_size, show_progress=progress, split=split, unlabeled=unlabeled,
                executor=executor,
            )  # fmt: skip
            rows = [r for r in run_store.solutions(outcome.run_id) if limit is None or r["position"] < limit]
            return RunResult(
                run_id=outcome.run_id,
                label=run_store.label(outcome.run_id),
                metrics=metrics.compute(rows),
                turns=metrics.turn_metrics(rows),
                solutions=rows,
                store=run_store.path,
                completions_reused=outcome.completions_reused,
                completions_generated=outcome.completions_generated,
                shards=outcome.shards,
            )
    finally:
        if executor is None and isinstance(engine, (str, EngineSpec)):
            the_engine.close()


def report(run_ids: list[str], out: str | Path, store: RunStore | str | Path | None = None) -> Path:
    """One self-contained HTML page (plots, tables, a trace browser) of these runs of the store."""
    from selfimprove.reports.html import build_report

    with _opened(store) as run_store:
        html = build_report(run_store, list(run_ids))
    path = Path(out)
    path.write_text(html, encoding="utf-8")
    return path
