"""Fixed-k self-consistency vs adaptive-consistency, same seeds, side by side.

For each task: accuracy, voted samples per problem, generated tokens per problem, and the ratios.
Target (issue 4): >= 3x fewer samples at <= 1 point accuracy loss.

    python benchmarks/adaptive_consistency.py                       # arithmetic level 1 (30) + GSM8K dev (20)
    python benchmarks/adaptive_consistency.py --gsm8k-limit 0       # arithmetic only
    python benchmarks/adaptive_consistency.py --model work/testbed/merged --shots 0 --level 2 --gsm8k-limit 0
        # a Hugging Face checkpoint through the `hf` engine (the testbed: a model confident enough to stop early)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from selfimprove.runs import metrics, runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.adaptive_consistency import AdaptiveConsistency
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.gsm8k import GSM8KTask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test_dev200.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--arithmetic-limit", type=int, default=30)
    parser.add_argument("--gsm8k-limit", type=int, default=20)
    parser.add_argument("--gsm8k-data", default=str(SHARED))
    parser.add_argument("--store", default=None, help="keep the runs in this store (default: a temporary one)")
    parser.add_argument("--batch", type=int, default=4, help="adaptive: samples per round (and the ESC window)")
    parser.add_argument("--model", default=None, help="a Hugging Face checkpoint (hf engine); default: embedded GGUF")
    parser.add_argument("--level", default="1", help="arithmetic level(s)")
    parser.add_argument("--shots", type=int, default=None, help="arithmetic exemplars (the testbed takes 0)")
    args = parser.parse_args()

    tasks = []
    if args.arithmetic_limit:
        shots = {} if args.shots is None else {"shots": args.shots}
        tasks.append(
            (f"arithmetic L{args.level}", ArithmeticTask(level=args.level, **shots), args.arithmetic_limit, 128)
        )
    if args.gsm8k_limit:
        tasks.append(("gsm8k dev", GSM8KTask(data=args.gsm8k_data), args.gsm8k_limit, 256))
    store = RunStore(args.store or Path(tempfile.mkdtemp()) / "runs.sqlite")
    engine = make_engine(args.model)
    header = f"{'task':14} {'strategy':26} {'accuracy':>9} {'samples/pb':>10} {'tokens/pb':>10}"
    print(header)
    for label, task, limit, max_tokens in tasks:
        strategies = [
            (f"fixed k={args.k}", SelfConsistency(samples=args.k, max_tokens=max_tokens, greedy_baseline=False)),
            (
                f"adaptive beta 0.95 b{args.batch}",
                AdaptiveConsistency(samples=args.k, batch=args.batch, max_tokens=max_tokens, stop_rule="beta"),
            ),
            (
                f"adaptive window {args.batch}",
                AdaptiveConsistency(samples=args.k, batch=args.batch, max_tokens=max_tokens, stop_rule="window"),
            ),
        ]
        base = None
        for name, strategy in strategies:
            outcome = runner.execute(task, strategy, engine, store, limit=limit, show_progress=False)
            m = metrics.compute(store.solutions(outcome.run_id))
            line = (
                f"{label:14} {name:26} {100 * m.accuracy:8.1f}% {m.voted_samples_per_problem:10.2f} "
                f"{m.completion_tokens_per_problem:10.1f}"
            )
            if base is None:
                base = m
            else:
                line += (
                    f"   {base.voted_samples_per_problem / m.voted_samples_per_problem:.2f}x fewer samples, "
                    f"{100 * (m.accuracy - base.accuracy):+.1f} points"
                )
            print(line, flush=True)
    engine.close()


def make_engine(model: str | None):
    if model is None:
        from selfimprove.engines.llama_cpp import LlamaCppEngine

        return LlamaCppEngine()
    from selfimprove.engines.hf import HFEngine

    return HFEngine(model=model, batch_size=32)


if __name__ == "__main__":
    main()
