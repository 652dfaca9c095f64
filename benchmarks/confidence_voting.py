"""Confidence-aware voting against plain self-consistency, on the embedded model, in one run (issue 25).

On the first 20 GSM8K dev problems (8-shot CoT) and 20 a ± b problems (arithmetic level 1):
1. one `deepconf` offline run of k traces per problem with top-5 log-probabilities; from those same traces,
   side by side: the majority vote (self-consistency), the weighted vote (weighted-consistency's `mean`), and
   DeepConf's confidence-filtered, confidence-weighted votes keeping 90% and 10% of the traces;
2. one `deepconf` online run with the same budget k (warm-up k/2, rounds of 2, keep 90%, consensus 0.95: the
   paper's settings, scaled to the budget; nothing tuned here): accuracy, traces and generated tokens per
   problem, and seconds, against the offline run's k traces.
Settings are fixed before the run; the slices are dev slices, and nothing here is chosen on them.

    python benchmarks/confidence_voting.py              # about 10 minutes on 2 cores
    python benchmarks/confidence_voting.py --limit 5 --samples 4
    python benchmarks/confidence_voting.py --model work/testbed/merged --shots 0 --level 2 --gsm8k-limit 0 \
        --limit 100 --max-tokens 96     # the testbed through the hf engine (a model that is usually sure)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import selfimprove as si
from selfimprove.core.types import SampleRecord
from selfimprove.engines.hf import HFEngine
from selfimprove.strategies.deepconf import DeepConf, most_confident
from selfimprove.strategies.voting import majority_vote, weighted_vote

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"


def timed_run(task, strategy, engine, limit: int):
    store = Path(tempfile.mkdtemp()) / "runs.sqlite"
    started = time.perf_counter()
    result = si.run(task, strategy, engine, store=store, limit=limit)
    return result, (time.perf_counter() - started) / limit


def offline_votes(task, problems, solutions) -> dict[str, float]:
    """Accuracy of each vote rule over the same traces."""
    rules = {
        "majority (self-consistency)": lambda rs: majority_vote([r.answer for r in rs]).answer,
        "weighted by mean logprob": lambda rs: weighted_vote([r.answer for r in rs],
                                                             [2.718281828 ** r.mean_logprob for r in rs]).answer,
        "DeepConf keep 90%": lambda rs: _deepconf(rs, 90),
        "DeepConf keep 10%": lambda rs: _deepconf(rs, 10),
    }  # fmt: skip
    by_id = {p.id: p for p in problems}
    traces = {s["problem_id"]: [SampleRecord(text="", **x) for x in s["samples"] if x["step"] == "sample"]
              for s in solutions}  # fmt: skip
    return {
        name: sum(bool(task.grade(by_id[pid], rule(records))) for pid, records in traces.items()) / len(traces)
        for name, rule in rules.items()
    }


def _deepconf(records, keep: float):
    voters = most_confident(records, keep)
    return weighted_vote([r.answer for r in voters], [r.confidence or 0.0 for r in voters]).answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--model", default=None, help="a Hugging Face checkpoint (hf engine); default: embedded GGUF")
    parser.add_argument("--level", default="1", help="arithmetic level")
    parser.add_argument("--shots", type=int, default=4, help="arithmetic exemplars (the testbed takes 0)")
    parser.add_argument("--gsm8k-limit", type=int, default=None, help="0: no GSM8K (otherwise --limit problems)")
    args = parser.parse_args()
    tasks = {}
    if args.gsm8k_limit != 0:
        tasks["gsm8k 8-shot"] = si.GSM8KTask(
            data=str(GSM8K / "test_dev200.jsonl"), fewshot=str(GSM8K / "train.jsonl"), shots=8
        )
    tasks[f"arithmetic L{args.level} {args.shots}-shot"] = si.ArithmeticTask(level=args.level, shots=args.shots)
    k = args.samples
    offline = DeepConf(mode="offline", samples=k, keep_percent=100, max_tokens=args.max_tokens)
    online = DeepConf(mode="online", samples=k, warmup=max(1, k // 2), batch=2, max_tokens=args.max_tokens)
    engine = si.LlamaCppEngine() if args.model is None else HFEngine(model=args.model, batch_size=32)
    try:
        for name, task in tasks.items():
            problems = list(task.problems(limit=args.limit))
            full, full_seconds = timed_run(task, offline, engine, args.limit)
            print(f"{name}: {k} traces per problem, {full.metrics.completion_tokens_per_problem:.0f} generated "
                  f"tokens/problem, {full_seconds:.2f} s/problem")  # fmt: skip
            for rule, accuracy in offline_votes(task, problems, full.solutions).items():
                print(f"  {rule:<30} {100 * accuracy:5.1f}%")
            early, early_seconds = timed_run(task, online, engine, args.limit)
            traces = sum(s["extra"]["samples_used"] for s in early.solutions) / args.limit
            stopped = sum(s["extra"]["stopped_early"] for s in early.solutions) / args.limit
            tokens = early.metrics.completion_tokens_per_problem
            print(f"  DeepConf online (budget {k})   {100 * early.metrics.accuracy:5.1f}%  {traces:.2f} traces "
                  f"({stopped:.2f} stopped early), {tokens:.0f} tokens, {early_seconds:.2f} s/problem: "
                  f"{100 * (1 - traces / k):.0f}% fewer traces, "
                  f"{100 * (1 - tokens / full.metrics.completion_tokens_per_problem):.0f}% fewer tokens, "
                  f"{full_seconds / early_seconds:.2f}x faster than {k} traces")  # fmt: skip
    finally:
        engine.close()


if __name__ == "__main__":
    main()
