"""How long the run metrics take for many samples per problem: maj@k's subset votes dominate.

Side by side on the same synthetic run (problems × K samples, answers drawn from a few values): maj@k as
`runs/metrics.py` computes it (subsets drawn once per run and k, a lean integer vote), and as it was (subsets
drawn again for every problem, `strategies/voting.majority_vote` in the inner loop), checking the curves are
equal; then the whole `metrics.compute` (maj@k, pass@k, error correlation).

    python benchmarks/metrics_speed.py                      # 100 problems × 256 samples
    python benchmarks/metrics_speed.py --problems 20 --samples 64
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import time

from selfimprove.runs import metrics
from selfimprove.runs.metrics import MAX_EXACT_SUBSETS, ks_for, maj_at_k
from selfimprove.strategies.voting import majority_vote


def maj_at_k_with_majority_vote(answers, correct, k, seed=0):
    """maj@k as it was: the same subsets, majority_vote in the loop."""
    total = len(answers)
    if math.comb(total, k) <= MAX_EXACT_SUBSETS:
        subsets = itertools.combinations(range(total), k)
    else:
        rng = random.Random(seed)
        subsets = (sorted(rng.sample(range(total), k)) for _ in range(MAX_EXACT_SUBSETS))
    hits = count = 0
    for subset in subsets:
        winner = majority_vote([answers[i] for i in subset]).answer
        hits += winner is not None and winner in correct
        count += 1
    return hits / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--samples", type=int, default=256)
    args = parser.parse_args()
    rng = random.Random(0)
    rows = []
    for p in range(args.problems):
        answers = [rng.choice(["1", "2", "3", "4", "5", None]) for _ in range(args.samples)]
        samples = [{"step": "sample", "answer": a, "correct": a == "1", "completion_tokens": 10, "prompt_tokens": 50,
                    "seconds": 0.01} for a in answers]  # fmt: skip
        rows.append({"problem_id": str(p), "correct": True, "samples": samples, "extra": {}, "metadata": {}})
    timings = {}
    for name, function in (("lean vote", maj_at_k), ("majority_vote", maj_at_k_with_majority_vote)):
        started = time.perf_counter()
        curve = {
            k: sum(function([x["answer"] for x in r["samples"]], {"1"}, k) for r in rows) / len(rows)
            for k in ks_for(args.samples)
        }
        timings[name] = (time.perf_counter() - started, curve)
        print(f"maj@k with {name:14}: {timings[name][0]:6.2f} s   maj@{args.samples} {100 * curve[args.samples]:.2f}%")
    assert timings["lean vote"][1] == timings["majority_vote"][1], "the two votes disagree"
    print(f"same maj@k curve; speed-up {timings['majority_vote'][0] / timings['lean vote'][0]:.1f}x")
    started = time.perf_counter()
    metrics.compute(rows)
    print(
        f"metrics.compute on {args.problems} problems × {args.samples} samples: {time.perf_counter() - started:.2f} s"
    )


if __name__ == "__main__":
    main()
