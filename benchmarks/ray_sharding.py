"""One run locally and the same run sharded across Ray workers, side by side, on the embedded model.

Arithmetic (4-shot), self-consistency k = `--samples`, the first `--limit` test problems, each configuration in a
fresh store: seconds per problem, the ratio, whether the two runs stored the same answers, and the driver's counts.
Locally one llama.cpp engine uses all `--threads`; on Ray, `--workers` engines share them (threads / workers each),
so on one machine this measures the price of sharding (process start, model loads, streaming every completion to
the driver), not a speed-up: the speed-up is on machines you add. `--kill` SIGKILLs one worker after its first
completion, to time a recovery.

    python benchmarks/ray_sharding.py                       # 16 problems, k = 4, 2 workers (a few minutes, 2 cores)
    python benchmarks/ray_sharding.py --limit 8 --kill
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from pathlib import Path

import selfimprove as si
from selfimprove.runs.ray_executor import RayExecutor, RaySettings
from selfimprove.runs.shard import Generated


def timed(task, strategy, engine, limit: int, batch_size: int, executor=None):
    store = Path(tempfile.mkdtemp()) / "runs.sqlite"
    started = time.perf_counter()
    result = si.run(task, strategy, engine, store=store, limit=limit, batch_size=batch_size, executor=executor)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--kill", action="store_true", help="SIGKILL one worker after its first completion")
    args = parser.parse_args()

    task = si.ArithmeticTask(level=1, shots=4)
    strategy = si.strategies.get("self-consistency")(samples=args.samples, max_tokens=args.max_tokens,
                                                     temperature=0.8, greedy_baseline=False)  # fmt: skip
    local, local_seconds = timed(task, strategy, si.EngineSpec("llama-cpp", {"n_threads": args.threads}),
                                 args.limit, args.batch_size)  # fmt: skip

    killed: list[int] = []

    def maybe_kill(event) -> None:
        if args.kill and isinstance(event, Generated) and not killed:
            killed.append(event.worker_pid)
            os.kill(event.worker_pid, signal.SIGKILL)

    per_worker = max(1, args.threads // args.workers)
    settings = RaySettings(workers=args.workers, cpus_per_worker=per_worker)
    sharded, ray_seconds = timed(task, strategy, si.EngineSpec("llama-cpp", {"n_threads": per_worker}), args.limit,
                                 args.batch_size, RayExecutor(settings, on_event=maybe_kill))  # fmt: skip

    same = [r["answer"] for r in local.solutions] == [r["answer"] for r in sharded.solutions]
    print(f"problems {args.limit}, k = {args.samples}, batch {args.batch_size}, {args.threads} threads")
    print(f"local (1 engine x {args.threads} threads): {local_seconds / args.limit:.2f} s/problem, "
          f"accuracy {local.metrics.accuracy:.3f}, {local.completions_generated} completions")  # fmt: skip
    print(f"ray ({args.workers} workers x {per_worker} threads): {ray_seconds / args.limit:.2f} s/problem "
          f"(x{ray_seconds / local_seconds:.2f} of local, start-up included), accuracy "
          f"{sharded.metrics.accuracy:.3f}")  # fmt: skip
    print(f"ray counts: {sharded.shards}; same answers as local: {same}; run ids equal: "
          f"{local.run_id == sharded.run_id}")  # fmt: skip


if __name__ == "__main__":
    main()
