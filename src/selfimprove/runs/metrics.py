"""Metrics computed from what the run store holds (never from live objects).

maj@k: the expected accuracy of a majority vote over k samples, estimated over subsets of the K
stored samples of each problem (all C(K, k) subsets when there are at most MAX_EXACT_SUBSETS,
otherwise that many random subsets drawn with a fixed seed). Subsets keep sample order, so the
tie-break is the one the strategy uses (earliest answer wins). maj@1 is mean per-sample accuracy.

Extraction failures count only the samples meant to hold an answer: records the strategy marked
`auxiliary` (Logic-of-Thought's extraction, least-to-most's decomposition, tree-of-thoughts'
partial steps and ratings) are left out.

pass@k: the chance that at least one of k samples is right, by the unbiased estimator of Chen et
al. 2021 over the K stored samples (the headline metric of code tasks; an upper bound elsewhere).
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from selfimprove.core.stats import best_of_n_expectation
from selfimprove.core.types import Problem, Solution
from selfimprove.grading.code import pass_at_k
from selfimprove.runs.correlation import ErrorCorrelation, error_correlation
from selfimprove.runs.store import solution_row

MAX_EXACT_SUBSETS = 2000
# Rows stored before records carried `auxiliary` are recognised by their step names.
_LEGACY_AUXILIARY_STEP = re.compile(r"^(?:lot-extract-|tot-expand-|tot-value-|decompose$)")


def is_auxiliary(sample: dict[str, Any]) -> bool:
    if "auxiliary" in sample:
        return bool(sample["auxiliary"])
    return bool(_LEGACY_AUXILIARY_STEP.match(sample["step"]))


@dataclass
class RunMetrics:
    problems: int
    accuracy: float | None
    greedy_accuracy: float | None
    maj_at_k: dict[int, float]
    pass_at_k: dict[int, float]
    completion_tokens_per_problem: float
    prompt_tokens_per_problem: float
    prompt_evaluated_per_problem: float | None
    seconds_per_problem: float
    samples: int
    voted_samples_per_problem: float
    extraction_failure_rate: float
    majority_accuracy: float | None = None
    """The plain majority vote's accuracy over the same samples, where a strategy answers by another rule
    (weighted-consistency, deepconf keep it in `extra["majority_correct"]`)."""
    vote_rule: str | None = None
    """How the strategy's answer was chosen when it was not a plain majority vote (`extra["vote"]`)."""
    length_stop_rate: float | None = None
    """Share of answer samples that ran to max_tokens (repetition loops show here); None for rows stored before
    samples carried their finish reason."""
    errors: ErrorCorrelation | None = None
    """Whether the wrong samples agree with each other, the vote's calibration, vote vs greedy (runs with samples)."""
    best_of_n: dict[int, float] = field(default_factory=dict)
    """Expected accuracy of the highest-reward sample (that states an answer) among n of the K, by n: the exact
    best-of-n estimator over all subsets (core/stats.py), for runs whose samples carry rewards (best-of-n)."""
    by_level: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_subject: dict[str, dict[str, Any]] = field(default_factory=dict)
    grade_statuses: dict[str, int] = field(default_factory=dict)
    """Samples per grading outcome where the task reports one (code: passed, failed, timeout, ...)."""


def ks_for(samples: int) -> list[int]:
    """1, 2, 4, ... up to `samples`, with `samples` itself always last."""
    ks, k = [], 1
    while k < samples:
        ks.append(k)
        k *= 2
    return ks + [samples] if samples else []


def maj_at_k(answers: Sequence[str | None], correct_answers: set[str], k: int, seed: int = 0) -> float:
    """Expected correctness of a majority vote over k of these samples (see module docstring)."""
    total = len(answers)
    if not 1 <= k <= total:
        raise ValueError(f"k={k} outside 1..{total}")
    subsets = _subsets(total, k, seed)
    # Answers as small integers (None: -1) and a lean vote with majority_vote's rule: the most frequent answer,
    # ties to the one that comes first in the subset. Thousands of subsets per k make this the hot loop.
    codes_of: dict[str, int] = {}
    codes = [-1 if a is None else codes_of.setdefault(a, len(codes_of)) for a in answers]
    right = [a in correct_answers for a in codes_of]
    hits = count = 0
    for subset in subsets:
        winner = _winner([codes[i] for i in subset])
        hits += winner >= 0 and right[winner]
        count += 1
    return hits / count


@functools.lru_cache(maxsize=64)
def _subsets(total: int, k: int, seed: int) -> tuple[tuple[int, ...], ...]:
    """All k-subsets of range(total), or MAX_EXACT_SUBSETS seeded random ones (each in sample order). Every
    problem of a run draws the same ones, so they are drawn once (drawing them was most of maj@k's time)."""
    if math.comb(total, k) <= MAX_EXACT_SUBSETS:
        return tuple(itertools.combinations(range(total), k))
    rng = random.Random(seed)
    return tuple(tuple(sorted(rng.sample(range(total), k))) for _ in range(MAX_EXACT_SUBSETS))


def _winner(codes: Sequence[int]) -> int:
    """The majority answer's code (-1 for none): the highest count, the earliest in `codes` on a tie."""
    counts: dict[int, int] = {}
    for code in codes:
        if code >= 0:
            counts[code] = counts.get(code, 0) + 1
    if not counts:
        return -1
    best = max(counts.values())
    return next(code for code in codes if code >= 0 and counts[code] == best)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _prompt_tokens(samples: list[dict[str, Any]]) -> int:
    """Prompt tokens of a problem, each step's prompt counted once (its samples share one decode)."""
    return sum({x["step"]: x["prompt_tokens"] for x in samples}.values())


def _prompt_evaluated(samples: list[dict[str, Any]], problems: int) -> float | None:
    """Prompt tokens the engine actually decoded per problem (a prompt shared by n samples, or taken from the
    prefix cache, counts as what it cost); None when some engine call did not say."""
    values = [x.get("prompt_evaluated") for x in samples]
    if not values or any(v is None for v in values):
        return None
    return sum(values) / problems


def compute(
    solutions: Sequence[dict[str, Any]] | Sequence[Solution],
    step: str = "sample",
    problems: Sequence[Problem] | None = None,
    errors: bool = True,
) -> RunMetrics:
    """Metrics of one run from `RunStore.solutions(run_id)` rows, or straight from what `Strategy.solve`
    returned (pass the `problems` too for per-level breakdowns and references)."""
    solutions = as_rows(solutions, problems)
    graded = [s for s in solutions if s["correct"] is not None]
    greedy = [s["extra"]["greedy_correct"] for s in solutions if s["extra"].get("greedy_correct") is not None]
    all_samples = [x for s in solutions for x in s["samples"]]
    voted = [[x for x in s["samples"] if x["step"] == step] for s in solutions]
    counts = {len(v) for v in voted}
    # maj@k needs the same K for every problem; adaptive runs stop at different counts and get none.
    big_k = counts.pop() if len(counts) == 1 else 0
    curve: dict[int, float] = {}
    passes: dict[int, float] = {}
    if big_k and graded:
        for k in ks_for(big_k):
            values, any_right = [], []
            for s, rows in zip(solutions, voted):
                if s["correct"] is None:
                    continue
                rows = rows[:big_k]
                right = {x["answer"] for x in rows if x["correct"] and x["answer"] is not None}
                values.append(maj_at_k([x["answer"] for x in rows], right, k))
                any_right.append(pass_at_k(big_k, sum(bool(x["correct"]) for x in rows), k))
            curve[k] = sum(values) / len(values)
            passes[k] = sum(any_right) / len(any_right)
    n = len(solutions) or 1
    metrics = RunMetrics(
        problems=len(solutions),
        accuracy=_mean([float(s["correct"]) for s in graded]),
        greedy_accuracy=_mean([float(g) for g in greedy]),
        maj_at_k=curve,
        pass_at_k=passes,
        completion_tokens_per_problem=sum(x["completion_tokens"] for x in all_samples) / n,
        prompt_tokens_per_problem=sum(_prompt_tokens(s["samples"]) for s in solutions) / n,
        prompt_evaluated_per_problem=_prompt_evaluated(all_samples, n),
        seconds_per_problem=sum(x["seconds"] for x in all_samples) / n,
        samples=len(all_samples),
        voted_samples_per_problem=sum(len(v) for v in voted) / n,
        extraction_failure_rate=_mean([float(x["answer"] is None) for x in all_samples if not is_auxiliary(x)]) or 0.0,
    )
    majority = [s["extra"]["majority_correct"] for s in graded if s["extra"].get("majority_correct") is not None]
    metrics.majority_accuracy = _mean([float(m) for m in majority])
    rules = {s["extra"].get("vote") for s in solutions}
    metrics.vote_rule = rules.pop() if len(rules) == 1 else None
    answering = [x for x in all_samples if not is_auxiliary(x)]
    if answering and all(x.get("finish_reason") for x in answering):
        metrics.length_stop_rate = sum(x["finish_reason"] == "length" for x in answering) / len(answering)
    statuses = [x["detail"].split(":", 1)[0] for x in all_samples if x.get("detail")]
    metrics.grade_statuses = dict(sorted(Counter(statuses).items(), key=lambda item: -item[1]))
    if big_k and graded and all(x.get("reward") is not None for rows in voted for x in rows):
        metrics.best_of_n = best_of_n_curve([v for s, v in zip(solutions, voted) if s["correct"] is not None], big_k)
    if errors:
        metrics.errors = error_correlation(solutions, step)
    metrics.by_level = _breakdown(solutions, "level", step)
    metrics.by_subject = _breakdown(solutions, "subject", step)
    return metrics


def best_of_n_curve(voted: Sequence[Sequence[dict[str, Any]]], big_k: int) -> dict[int, float]:
    """best-of-n accuracy for n = 1, 2, 4, ... K; a sample without an answer is never the choice (reward −inf)."""
    curve = {}
    for n in ks_for(big_k):
        values = [
            best_of_n_expectation(
                [x["reward"] if x["answer"] is not None else -math.inf for x in rows[:big_k]],
                [float(bool(x["correct"]) and x["answer"] is not None) for x in rows[:big_k]],
                n,
            )
            for rows in voted
        ]
        curve[n] = sum(values) / len(values)
    return curve


def as_rows(
    solutions: Sequence[dict[str, Any]] | Sequence[Solution], problems: Sequence[Problem] | None = None
) -> list[dict[str, Any]]:
    """Store rows as they are; Solutions turned into the rows the store would hold for them."""
    by_id = {p.id: p for p in problems or ()}
    return [
        solution_row(i, by_id.get(s.problem_id), s) if isinstance(s, Solution) else s for i, s in enumerate(solutions)
    ]


def _breakdown(solutions: list[dict[str, Any]], key: str, step: str) -> dict[str, dict[str, Any]]:
    """Accuracy per value of a problem metadata field (MATH's level and subject), when it has several."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in solutions:
        if key in s["metadata"]:
            groups[str(s["metadata"][key])].append(s)
    if len(groups) < 2:
        return {}
    table = {}
    for value, group in sorted(groups.items()):
        sub = compute(group, step, errors=False)
        table[value] = {"problems": sub.problems, "accuracy": sub.accuracy, "greedy_accuracy": sub.greedy_accuracy}
    return table


@dataclass
class TurnMetrics:
    """Self-correction over turns. Contract: a multi-turn strategy stores
    `Solution.extra["turns"] = [{"answer": ..., "correct": ..., "text": ...}, ...]`, turn 1 first."""

    problems: int
    accuracy: list[float]  # Acc@t1, Acc@t2, ...
    delta: list[float]  # Acc@t(i+1) - Acc@t(i), per consecutive pair of turns
    incorrect_to_correct: list[float]  # fraction of problems wrong at t and right at t+1
    correct_to_incorrect: list[float]
    edit_distance: list[float]  # mean normalised edit distance between consecutive attempts (collapse monitor)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions of characters)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def normalised_edit_distance(a: str, b: str) -> float:
    """Edit distance over the longer text's length: 0 identical, 1 nothing in common."""
    longest = max(len(a), len(b))
    return edit_distance(a, b) / longest if longest else 0.0


def turn_metrics(solutions: Sequence[dict[str, Any]] | Sequence[Solution]) -> TurnMetrics | None:
    """Acc@t, Δ, i→c / c→i rates and attempt edit distances, over problems with every turn graded."""
    solutions = as_rows(solutions)
    runs = [s["extra"].get("turns") for s in solutions]
    runs = [t for t in runs if t and all(x.get("correct") is not None for x in t)]
    if not runs:
        return None
    turns = min(len(t) for t in runs)
    n = len(runs)
    right = [[bool(t[i]["correct"]) for t in runs] for i in range(turns)]
    accuracy = [sum(r) / n for r in right]
    pairs = range(turns - 1)
    return TurnMetrics(
        problems=n,
        accuracy=accuracy,
        delta=[accuracy[i + 1] - accuracy[i] for i in pairs],
        incorrect_to_correct=[sum(not a and b for a, b in zip(right[i], right[i + 1])) / n for i in pairs],
        correct_to_incorrect=[sum(a and not b for a, b in zip(right[i], right[i + 1])) / n for i in pairs],
        edit_distance=[
            sum(normalised_edit_distance(t[i].get("text", ""), t[i + 1].get("text", "")) for t in runs) / n
            for i in pairs
        ],
    )
