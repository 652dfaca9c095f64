"""Runs sharded across Ray actors (`selfimprove run --ray ADDRESS`, `si.run(..., executor=RayExecutor(...))`).

Each actor is a `ShardWorker` holding its own engine, built from an `EngineSpec` (llama.cpp, hf, vllm, or an
OpenAI endpoint). Chunks of `batch_size` problems go to whichever worker is free; the worker streams each
completion back through a Ray generator, and the driver, the run store's one writer, stores it on arrival.
So resume, metrics and the run id are what a local run has: the run id hashes the engine description the
workers report (they must agree), and samples are seeded by sample id.

A worker that dies mid-chunk (killed, out of memory, its node gone) loses only what it had not yet delivered:
its chunk's unsolved problems are dispatched again, with every completion stored for them, to whichever worker
is free (Ray restarts the dead one, up to `max_restarts`). Nothing stored is recomputed. An error inside the
strategy or engine (bad settings, a grader failure) is not retried: it stops the run, with what it stored kept.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from selfimprove.core.errors import ConfigError, EngineError
from selfimprove.core.types import Completion, Problem, Solution
from selfimprove.engines.spec import EngineSpec
from selfimprove.runs.shard import Dispatch, Generated, ShardWorker, Solved
from selfimprove.strategies.base import Strategy
from selfimprove.tasks.base import Task

INSTALL_HINT = "Ray runs need Ray: pip install 'selfimprove[ray]'"


def require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(INSTALL_HINT)


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None
    """The Ray cluster to join ("auto", "HOST:PORT", "ray://HOST:10001"); None starts a local cluster for this run
    (on loopback) and stops it afterwards. A cluster already initialised in this process (`ray.init`) is used as
    it is."""
    workers: int = 2
    """Ray actors, each holding its own engine (one model copy each)."""
    cpus_per_worker: float = 1.0
    """CPUs Ray reserves per worker (set the engine's own thread count to match, e.g. -E n_threads=1)."""
    gpus_per_worker: float = 0.0
    """GPUs Ray reserves per worker (1 for a vLLM or CUDA hf engine per GPU; fractions share one)."""
    max_restarts: int = 3
    """How often Ray restarts a worker that died; its unfinished problems are re-dispatched either way."""
    ready_timeout: float = 900.0
    """Seconds to wait for a worker's engine to load (or reload after a restart) before counting it lost."""
    object_store_mb: int = 512
    """Object store size of a local cluster started here (the default, 30% of memory, is far more than runs need)."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.cpus_per_worker < 0 or self.gpus_per_worker < 0:
            raise ConfigError("--cpus-per-worker and --gpus-per-worker must be 0 or more")
        if self.max_restarts < 0:
            raise ConfigError(f"--max-restarts must be 0 or more, got {self.max_restarts}")


@dataclass
class ShardCounts:
    """What the driver saw: the fault test's figures."""

    dispatched: int = 0
    """Chunks sent to workers (re-sent ones included)."""
    redispatched_problems: int = 0
    """Problems sent again because their worker died before solving them."""
    workers_lost: int = 0
    """Worker deaths seen (each one restarted by Ray while restarts last)."""
    stored: int = 0
    """Completions the workers delivered and the driver stored."""
    reused: int = 0
    """Completions workers took from the dispatch's stored ones instead of drawing them."""


@dataclass
class WorkerFailed:
    """A worker died while holding `chunk` (its delivered completions are already stored)."""

    chunk: int
    worker: int
    error: str
    alive_again: bool


@dataclass
class StrategyFailed:
    """The strategy or engine raised inside a worker: not a worker fault, so not retried."""

    chunk: int
    error: BaseException


PoolEvent = Generated | Solved | WorkerFailed | StrategyFailed


class RunSink(Protocol):
    """The driver's side of a run (the store's one writer); `runner` passes one to the executor."""

    def completion(self, problem_id: str, step: str, sample_id: int, completion: Completion) -> None: ...

    def solved(self, pairs: list[tuple[Problem, Solution]]) -> None: ...

    def stored_for(self, problem_id: str) -> dict[str, dict[int, Completion]]: ...

    def heartbeat(self) -> None: ...


class RayExecutor:
    """Starts (or joins) a Ray cluster and a pool of workers for one run. `on_event` sees every event the driver
    handles, in order (progress displays; the fault test kills a worker from it)."""

    def __init__(self, settings: RaySettings | None = None, on_event: Callable[[PoolEvent], None] | None = None):
        require_ray()
        self.settings = settings or RaySettings()
        self.on_event = on_event

    def start(self, task: Task, strategy: Strategy, engine: EngineSpec) -> RayPool:
        if not isinstance(engine, EngineSpec):
            raise ConfigError(
                "a run on Ray takes its engine as an EngineSpec (name and settings), which each worker builds: "
                "e.g. EngineSpec('llama-cpp', {'model': 'm.gguf'}), not a loaded engine"
            )
        return RayPool(self.settings, task, strategy, engine, self.on_event)


class RayPool:
    """The workers of one run. `describe()` is their engine's description (so the pool stands in for the engine in
    the run's config); `solve` runs the problems; `close` stops the workers (and a cluster started here)."""

    def __init__(
        self,
        settings: RaySettings,
        task: Task,
        strategy: Strategy,
        engine: EngineSpec,
        on_event: Callable[[PoolEvent], None] | None,
    ):
        import ray

        self.settings, self.name, self.on_event = settings, engine.name, on_event
        self.counts = ShardCounts()
        self._started_ray = False
        if not ray.is_initialized():
            local = settings.address is None
            ray.init(
                address=settings.address,
                num_cpus=max(1, int(round(settings.workers * settings.cpus_per_worker))) if local else None,
                num_gpus=None if not local or settings.gpus_per_worker == 0 else
                int(settings.workers * settings.gpus_per_worker + 0.999),
                object_store_memory=settings.object_store_mb * 2**20 if local else None,
                _node_ip_address="127.0.0.1" if local else None,  # a cluster of this machine listens on loopback
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )  # fmt: skip
            self._started_ray = True
        actor = ray.remote(ShardWorker).options(
            num_cpus=settings.cpus_per_worker,
            num_gpus=settings.gpus_per_worker,
            max_restarts=settings.max_restarts,
            max_task_retries=0,  # a dead worker's chunk is re-dispatched here, from what was stored
        )
        self.workers = [actor.remote(task, strategy, engine, os.getcwd()) for _ in range(settings.workers)]
        try:
            ray.get([w.ready.remote() for w in self.workers], timeout=settings.ready_timeout)
            descriptions = ray.get([w.describe.remote() for w in self.workers])
        except Exception:
            self.close()
            raise
        if any(d != descriptions[0] for d in descriptions):
            self.close()
            raise EngineError(f"the Ray workers' engines differ, so the run would mix models: {descriptions}")
        self._description = descriptions[0]

    def describe(self) -> dict[str, Any]:
        return self._description

    def close(self) -> None:
        import ray

        for worker in getattr(self, "workers", []):
            ray.kill(worker, no_restart=True)
        self.workers = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------------------------------

    def solve(self, problems: Sequence[Problem], batch_size: int, sink: RunSink) -> ShardCounts:
        """Solve `problems` in chunks of `batch_size` across the workers; returns once every one is stored."""
        work: queue.Queue[Dispatch | None] = queue.Queue()
        events: queue.Queue[tuple[int, PoolEvent | str]] = queue.Queue()
        pending: dict[int, dict[str, Problem]] = {}
        for start in range(0, len(problems), batch_size):
            self._dispatch(work, pending, list(problems[start : start + batch_size]), sink)
        threads = [
            threading.Thread(target=self._feed, args=(index, worker, work, events), daemon=True)
            for index, worker in enumerate(self.workers)
        ]
        for thread in threads:
            thread.start()
        live = len(threads)
        try:
            while pending:
                try:
                    index, event = events.get(timeout=30)
                except queue.Empty:
                    sink.heartbeat()
                    continue
                if event == "gone":
                    live -= 1
                    if live == 0:
                        raise EngineError(
                            f"all {len(threads)} Ray workers died (restarts exhausted); the run keeps the "
                            f"{self.counts.stored} completions they delivered: run again to resume"
                        )
                    continue
                assert not isinstance(event, str)
                self._handle(event, work, pending, sink)
        finally:
            for _ in threads:
                work.put(None)
        return self.counts

    def _handle(self, event: PoolEvent, work: queue.Queue, pending: dict[int, dict[str, Problem]], sink: RunSink):
        if isinstance(event, Generated):
            sink.completion(event.problem_id, event.step, event.sample_id, event.completion)
            self.counts.stored += 1
        elif isinstance(event, Solved):
            chunk = pending.pop(event.chunk)
            sink.solved([(chunk[problem_id], solution) for problem_id, solution in event.solutions])
            self.counts.reused += event.reused
            sink.heartbeat()
        elif isinstance(event, WorkerFailed):
            self.counts.workers_lost += 1
            unsolved = list(pending.pop(event.chunk).values())
            self.counts.redispatched_problems += len(unsolved)
            self._dispatch(work, pending, unsolved, sink)
        elif isinstance(event, StrategyFailed):
            raise event.error
        if self.on_event is not None:
            self.on_event(event)

    def _dispatch(self, work: queue.Queue, pending: dict[int, dict[str, Problem]], chunk: list[Problem], sink):
        """Queue a chunk with what the store holds for its problems (read here, on the store's thread)."""
        number = self.counts.dispatched
        self.counts.dispatched += 1
        pending[number] = {p.id: p for p in chunk}
        stored = {p.id: found for p in chunk if (found := sink.stored_for(p.id))}
        work.put(Dispatch(number, chunk, stored))

    def _feed(self, index: int, worker: Any, work: queue.Queue, events: queue.Queue) -> None:
        """One worker's thread: takes chunks, relays their events; after a death, waits for Ray's restart."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        while (dispatch := work.get()) is not None:
            try:
                for ref in worker.solve.remote(dispatch):
                    events.put((index, ray.get(ref)))
            except RayTaskError as exc:
                events.put((index, StrategyFailed(dispatch.chunk, getattr(exc, "cause", None) or exc)))
                return
            except (RayActorError, ray.exceptions.ObjectLostError) as exc:
                alive = self._restarted(worker)
                events.put((index, WorkerFailed(dispatch.chunk, index, str(exc).splitlines()[0], alive)))
                if not alive:
                    events.put((index, "gone"))
                    return

    def _restarted(self, worker: Any) -> bool:
        """Whether Ray brought the worker back (its engine loaded again) within the ready timeout."""
        import ray

        deadline = time.monotonic() + self.settings.ready_timeout
        while time.monotonic() < deadline:
            try:
                ray.get(worker.ready.remote(), timeout=max(1.0, deadline - time.monotonic()))
                return True
            except ray.exceptions.ActorUnavailableError:
                time.sleep(0.5)  # restarting: try again
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                return False
        return False
