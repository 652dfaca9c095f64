"""Reward overoptimization under best-of-n: proxy reward vs gold reward as n grows (issue 18).

Gao et al. 2022 ("Scaling laws for reward model overoptimization") measure, for best-of-n sampling, the
gold reward of the chosen sample against d = sqrt(KL_bon), KL_bon = log n − (n−1)/n, and fit
R_gold(d) = d(α − βd). Coste et al. 2023 find that conservative ensembles (worst case, uncertainty-weighted)
shrink the gap between proxy and gold, most of all under 25% label noise. Here the gold reward is the task's
grader (an arithmetic answer is right or wrong), the proxy a reward model trained on the policy's own graded
samples of *train* problems; everything is measured on *test* problems the reward models never saw.

1. The policy samples `--train-samples` answers to each of `--train-problems` train problems; preferences
   (right ≻ wrong, `--per-problem` pairs per problem) train K reward members, once with clean labels and once
   per `--noise` share of flipped labels (members differ by seed; nothing is tuned on the test problems).
2. The policy samples a pool of `--pool` answers to each of `--problems` test problems; every member scores
   every sample once (batched; samples/s reported).
3. For n = 1, 2, 4, ... pool, the exact best-of-n estimator over the pool (every n-subset, no re-sampling)
   gives the chosen sample's expected gold (accuracy) and proxy reward, for one member alone and for the
   ensemble under mean, min, uncertainty (mean − 1·std) and median; α, β of Gao's form are fitted by least
   squares to the gold gain over n = 1. The choice here is the highest reward over all samples (Gao's
   setting); a sample without an answer counts as wrong.
4. With --process: a process reward model trained on the train samples' steps (each labelled by checking
   its arithmetic, the last by the grade), its step scores reduced by min, product and last.

    python benchmarks/reward_overoptimization.py --model /tmp/x/testbed/merged          # ~15 min on 2 cores
    python benchmarks/reward_overoptimization.py --model M --problems 20 --pool 32 --train-problems 60  # quick
    python benchmarks/reward_overoptimization.py --problems 30 --pool 32 --level 1 --shots 4 --lora-r 8 \
        --train-problems 60 --train-samples 8 --members 2      # the embedded model (llama.cpp samples, hf trains)

Work (runs, reward models, scores) is kept in --work and reused: a re-run with the same flags resumes.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from pathlib import Path

import selfimprove as si
from selfimprove.core.stats import best_of_n_expectation
from selfimprove.rewards.aggregate import AGGREGATORS, aggregate
from selfimprove.rewards.model import RewardModel
from selfimprove.rewards.process import REDUCTIONS, ProcessRewardModel, reduce_steps
from selfimprove.runs.store import RunStore
from selfimprove.training.process_rewards import ProcessTrainSettings, process_reward_train, step_examples_from_run
from selfimprove.training.reward_models import RewardTrainSettings, preferences_from_run, reward_train


def kl_bon(n: int) -> float:
    """KL divergence of best-of-n from the policy (Stiennon et al. 2020; Gao et al. 2022): log n − (n−1)/n."""
    return math.log(n) - (n - 1) / n


def fit_gao(ds: list[float], gains: list[float]) -> tuple[float, float]:
    """Least-squares α, β of gain(d) = αd − βd² (no intercept: no gain at d = 0)."""
    s11 = sum(d * d for d in ds)
    s12 = sum(-(d**3) for d in ds)
    s22 = sum(d**4 for d in ds)
    t1 = sum(d * g for d, g in zip(ds, gains))
    t2 = sum(-(d * d) * g for d, g in zip(ds, gains))
    det = s11 * s22 - s12 * s12
    if det == 0:
        return float("nan"), float("nan")
    return (t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det


def pool_of(store: RunStore, run_id: str, task, split: str) -> list[dict]:
    """Each problem's prompt, sample texts and gold (right = 1.0) from a stored run."""
    rows = store.solutions(run_id)
    problems = {p.id: p for p in task.problems(split, limit=len(rows))}
    pool = []
    for row in rows:
        texts = store.completions(run_id, row["problem_id"], "sample")
        samples = sorted((x for x in row["samples"] if x["step"] == "sample"), key=lambda x: x["index"])
        pool.append(
            {
                "problem": row["problem_id"],
                "level": row["metadata"].get("level"),
                "prompt": task.format_prompt(problems[row["problem_id"]]),
                "texts": [texts[x["index"]].text for x in samples],
                "gold": [float(bool(x["correct"]) and x["answer"] is not None) for x in samples],
            }
        )
    return pool


def member_scores(folder: Path, pool: list[dict], cache: Path) -> tuple[list[list[list[float]]], str]:
    """scores[problem][sample][member], cached in `cache`; and the scoring speed ("" when cached)."""
    if cache.is_file():
        return json.loads(cache.read_text()), ""
    names = json.loads((folder / "ensemble.json").read_text())["members"]
    started, scored = time.perf_counter(), 0
    per_member = []
    for name in names:
        model = RewardModel(str(folder / name), batch_size=64)
        per_member.append([model.score_texts([p["prompt"]] * len(p["texts"]), p["texts"]) for p in pool])
        scored += sum(len(p["texts"]) for p in pool)
    seconds = time.perf_counter() - started
    distinct = len(names) * sum(len(set(p["texts"])) for p in pool)  # a repeated text is scored once
    rate = f"{scored / seconds:.0f} samples/s per member ({distinct / seconds:.0f} distinct texts/s, batches of 64)"
    scores = [[[m[i][j] for m in per_member] for j in range(len(pool[i]["texts"]))] for i in range(len(pool))]
    cache.write_text(json.dumps(scores))
    return scores, rate


def process_scores(folder: Path, pool: list[dict], cache: Path) -> list[list[list[float]]]:
    """steps[problem][sample] = the process reward model's per-step probabilities, cached in `cache`."""
    if cache.is_file():
        return json.loads(cache.read_text())
    model = ProcessRewardModel(str(folder), batch_size=64)
    started = time.perf_counter()
    steps = [model.step_probabilities(p["prompt"], p["texts"]) for p in pool]
    print(f"process scoring: {sum(len(p['texts']) for p in pool) / (time.perf_counter() - started):.0f} samples/s")
    cache.write_text(json.dumps(steps))
    return steps


def curves(pool: list[dict], scores: list[list[list[float]]], ns: list[int]) -> dict[str, dict[str, list[float]]]:
    """For each scorer: the chosen sample's expected gold and proxy reward at each n."""
    scorers = {"one member": lambda members: members[0]}
    scorers.update({f"ensemble {rule}": functools.partial(_aggregated, rule=rule) for rule in AGGREGATORS})
    out = {}
    for name, rule in scorers.items():
        rewards = [[rule(members) for members in problem] for problem in scores]
        gold = [sum(best_of_n_expectation(r, p["gold"], n) for r, p in zip(rewards, pool)) / len(pool) for n in ns]
        proxy = [sum(best_of_n_expectation(r, r, n) for r in rewards) / len(pool) for n in ns]
        out[name] = {"gold": gold, "proxy": proxy}
    return out


def chosen_at_largest_n(pool: list[dict], scores: list[list[list[float]]], rule) -> dict:
    """Per level, at n = pool: how often the highest-reward sample is right, how many of the samples wrote its
    text, and how many samples are right at all (is the maximum a rare path?)."""
    by_level: dict = {}
    for problem, members in zip(pool, scores):
        rewards = [rule(m) for m in members]
        best = max(range(len(rewards)), key=lambda i: rewards[i])
        written = sum(t == problem["texts"][best] for t in problem["texts"]) / len(problem["texts"])
        right = sum(problem["gold"]) / len(problem["gold"])
        by_level.setdefault(problem["level"], []).append((problem["gold"][best], written, right))
    return {level: [sum(column) / len(rows) for column in zip(*rows)] for level, rows in sorted(by_level.items())}


def _aggregated(members: list[float], rule: str) -> float:
    return aggregate(members, rule)


def plot(results: dict[float, dict], ns: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = [math.sqrt(kl_bon(n)) for n in ns]
    fig, axes = plt.subplots(len(results), 2, figsize=(11, 4 * len(results)), squeeze=False)
    for row, (noise, by_scorer) in enumerate(results.items()):
        for name, curve in by_scorer.items():
            axes[row][0].plot(ds, [100 * g for g in curve["gold"]], marker="o", label=name)
            axes[row][1].plot(ds, curve["proxy"], marker="o", label=name)
        axes[row][0].set_title(f"gold: chosen sample's accuracy (label noise {noise:.0%})")
        axes[row][1].set_title(f"proxy: chosen sample's reward (label noise {noise:.0%})")
        for ax in axes[row]:
            ax.set_xlabel("sqrt(KL_bon)   (n = " + ", ".join(str(n) for n in ns) + ")")
            ax.grid(alpha=0.3)
        axes[row][0].set_ylabel("accuracy (%)")
        axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="policy: hf checkpoint (hf engine); default: embedded GGUF")
    parser.add_argument("--level", default="2-3")
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--train-problems", type=int, default=1000)
    parser.add_argument("--train-samples", type=int, default=16)
    parser.add_argument("--per-problem", type=int, default=8)
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--pool", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--noise", default="0,0.25", help="label-noise shares, comma-separated")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lora-r", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("work/overoptimization"))
    parser.add_argument("--process", action="store_true", help="also a process reward model (arithmetic step labels)")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of gold and proxy vs sqrt(KL) (needs matplotlib)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    task = si.ArithmeticTask(level=args.level, shots=args.shots)
    if args.model is None:
        engine = si.LlamaCppEngine()
    else:
        from selfimprove.engines.hf import HFEngine

        engine = HFEngine(model=args.model, batch_size=64)
    store_path = args.work / "runs.sqlite"
    sampler = si.SelfConsistency(samples=args.train_samples, temperature=args.temperature, max_tokens=args.max_tokens,
                                 greedy_baseline=False)  # fmt: skip
    pool_sampler = si.SelfConsistency(samples=args.pool, temperature=args.temperature, max_tokens=args.max_tokens)
    started = time.perf_counter()
    train_run = si.run(task, sampler, engine, store=store_path, limit=args.train_problems, split="train")
    test_run = si.run(task, pool_sampler, engine, store=store_path, limit=args.problems)
    engine.close()
    print(f"sampling: {time.perf_counter() - started:.0f} s (train run {train_run.run_id}, pool run {test_run.run_id})")
    m = test_run.metrics
    k = args.pool
    print(f"test pool: greedy {100 * (m.greedy_accuracy or 0):.1f}%, per sample {100 * m.maj_at_k[1]:.1f}%,"
          f" maj@{k} {100 * m.maj_at_k[k]:.1f}%, pass@{k} {100 * m.pass_at_k[k]:.1f}%")  # fmt: skip

    store = RunStore(store_path)
    preferences = preferences_from_run(store, train_run.run_id, task, per_problem=args.per_problem)
    step_examples = step_examples_from_run(store, train_run.run_id, task) if args.process else []
    pool = pool_of(store, test_run.run_id, task, "test")
    store.close()
    print(f"{len(preferences)} preferences from {args.train_problems} train problems")
    ns = [n for n in (2**i for i in range(20)) if n <= args.pool]
    base = args.model
    results: dict[float, dict] = {}
    for noise in (float(x) for x in args.noise.split(",")):
        settings = RewardTrainSettings(
            members=args.members, epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
            label_noise=noise, lora_r=args.lora_r, dev_share=0.1, max_length=1024,
        )  # fmt: skip
        folder = args.work / f"rm-noise{noise:g}"
        started = time.perf_counter()
        report = reward_train(base, preferences, folder, settings, progress=lambda line: None)
        accuracies = ", ".join(f"{100 * (r.dev_accuracy or 0):.1f}%" for r in report.members)
        ensemble = ", ".join(f"{k} {100 * v:.1f}%" for k, v in report.ensemble_dev_accuracy.items())
        print(f"\nlabel noise {noise:.0%}: {report.flipped} of {report.train_preferences} training labels flipped; "
              f"trained in {time.perf_counter() - started:.0f} s; held-out (clean) pair accuracy: "
              f"members {accuracies}; {ensemble}")  # fmt: skip
        scores, rate = member_scores(folder, pool, args.work / f"scores-noise{noise:g}.json")
        if rate:
            print(f"scoring: {rate}")
        results[noise] = curves(pool, scores, ns)
        for name, rule in (
            ("one member", lambda m: m[0]),
            ("ensemble mean", functools.partial(_aggregated, rule="mean")),
        ):
            for level, (chosen, written, right) in chosen_at_largest_n(pool, scores, rule).items():
                print(f"{name}, level {level}, n = {args.pool}: the choice is right on {100 * chosen:.0f}% of "
                      f"problems; its text was written by {100 * written:.1f}% of the samples "
                      f"(right: {100 * right:.1f}%)")  # fmt: skip
        print(f"{'scorer':20} " + " ".join(f"{'n=' + str(n):>7}" for n in ns) + f" {'alpha':>7} {'beta':>7}  peak n")
        ds = [math.sqrt(kl_bon(n)) for n in ns]
        for name, curve in results[noise].items():
            gains = [g - curve["gold"][0] for g in curve["gold"]]
            alpha, beta = fit_gao(ds, [100 * g for g in gains])
            peak = ns[max(range(len(ns)), key=lambda i: curve["gold"][i])]
            print(f"{name:20} gold " + " ".join(f"{100 * g:6.1f}%" for g in curve["gold"])
                  + f" {alpha:7.2f} {beta:7.2f}  {peak}")  # fmt: skip
            print(f"{'':20} prox " + " ".join(f"{p:7.2f}" for p in curve["proxy"]))
    if args.process:
        settings = ProcessTrainSettings(epochs=args.epochs, learning_rate=args.learning_rate,
                                        batch_size=args.batch_size, max_length=1024)  # fmt: skip
        report = process_reward_train(base, step_examples, args.work / "prm", settings, progress=lambda line: None)
        print(f"\nprocess reward model (steps labelled by their arithmetic, the last by the grade): "
              f"{report.train_paths} paths, held-out step accuracy {100 * (report.dev_step_accuracy or 0):.1f}%, "
              f"{report.seconds:.0f} s")  # fmt: skip
        steps = process_scores(args.work / "prm", pool, args.work / "scores-process.json")
        print(f"{'scorer':20} " + " ".join(f"{'n=' + str(n):>7}" for n in ns))
        for how in REDUCTIONS:
            rewards = [[reduce_steps(p, how) for p in problem] for problem in steps]
            gold = [sum(best_of_n_expectation(r, p["gold"], n) for r, p in zip(rewards, pool)) / len(pool) for n in ns]
            print(f"{'process ' + how:20} gold " + " ".join(f"{100 * g:6.1f}%" for g in gold))
    print("\nsqrt(KL_bon): " + " ".join(f"n={n}: {math.sqrt(kl_bon(n)):.2f}" for n in ns))
    print("alpha, beta: Gao et al.'s R(d) = d(alpha - beta d) fitted to the gold gain over n = 1, in accuracy points")
    if args.plot:
        plot(results, ns, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
