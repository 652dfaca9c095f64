"""The demo's sampling settings, chosen on the arithmetic task's *train* stream (never on the test problems).

Self-consistency (k samples) at several temperatures and top-k values, and the greedy answer, on the
first N train problems of the demo's task, with the embedded model loaded once; the test split is
not touched. Prints accuracy, greedy accuracy, maj@k − greedy and tokens per problem per setting.

    python benchmarks/demo_sweep.py                       # level 1, 30 train problems, k = 8
    python benchmarks/demo_sweep.py --limit 60 --grid 0.3:40,0.7:40,1.0:0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import selfimprove as si

GRID = "0.3:40,0.5:40,0.7:40,1.0:40,0.7:10"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", default="1")
    parser.add_argument("--limit", type=int, default=30, help="train problems")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--grid", default=GRID, help="temperature:top_k pairs, comma separated")
    parser.add_argument("--store", default=None, help="keep the runs here (default: a temporary store)")
    args = parser.parse_args()

    task = si.ArithmeticTask(level=args.level)
    engine = si.LlamaCppEngine()
    store = args.store or str(Path(tempfile.mkdtemp()) / "sweep.sqlite")
    print(f"arithmetic level {args.level}, first {args.limit} TRAIN problems, k = {args.samples}, embedded model")
    print(f"{'temperature':>11} {'top_k':>5} {'SC acc':>7} {'greedy':>7} {'SC-greedy':>9} {'tok/problem':>11} {'s':>5}")
    try:
        for pair in args.grid.split(","):
            temperature, top_k = float(pair.split(":")[0]), int(pair.split(":")[1])
            strategy = si.SelfConsistency(samples=args.samples, temperature=temperature, top_k=top_k)
            started = time.perf_counter()
            result = si.run(task, strategy, engine, store=store, limit=args.limit, split="train")
            m = result.metrics
            print(f"{temperature:>11g} {top_k:>5d} {100 * m.accuracy:>6.1f}% {100 * m.greedy_accuracy:>6.1f}% "
                  f"{100 * (m.accuracy - m.greedy_accuracy):>+8.1f} {m.completion_tokens_per_problem:>11.0f} "
                  f"{time.perf_counter() - started:>5.0f}")  # fmt: skip
    finally:
        engine.close()


if __name__ == "__main__":
    main()
