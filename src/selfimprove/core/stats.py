"""Statistics for reports and run comparison: bootstrap intervals and McNemar's exact test.

Pure Python with a seeded RNG so figures are repeatable; the sizes here (tens to thousands of
problems, a few thousand resamples) need nothing faster.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 4000


def _percentiles(values: list[float], alpha: float) -> tuple[float, float]:
    values = sorted(values)
    last = len(values) - 1
    low = values[max(0, math.floor(alpha / 2 * last))]
    high = values[min(last, math.ceil((1 - alpha / 2) * last))]
    return low, high


def bootstrap_interval(
    outcomes: Sequence[float], resamples: int = RESAMPLES, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `outcomes` (e.g. 0/1 correctness per problem)."""
    if not outcomes:
        raise ValueError("no outcomes to bootstrap")
    rng = random.Random(seed)
    n = len(outcomes)
    means = [sum(outcomes[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples)]
    return _percentiles(means, alpha)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% at z = 1.96): sensible at 0 and n successes, where the
    bootstrap collapses to a point (a control set that recalls nothing still gets an upper bound)."""
    if n <= 0:
        raise ValueError("an interval needs at least one trial")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (A right & B wrong, and the reverse).

    Under the null each discordant problem is a fair coin: p = min(1, 2 * P(Binomial(n, 1/2) <= min)).
    """
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedComparison:
    shared: int
    accuracy_a: float
    accuracy_b: float
    difference: float  # accuracy_b - accuracy_a
    interval: tuple[float, float]
    b_wins: int  # problems B got right and A wrong
    b_losses: int  # problems A got right and B wrong
    both_right: int
    both_wrong: int
    p_value: float


def paired_comparison(
    a: Sequence[bool], b: Sequence[bool], resamples: int = RESAMPLES, alpha: float = 0.05, seed: int = 0
) -> PairedComparison:
    """Compare two runs on the same problems (a[i] and b[i] grade the same problem)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired comparison needs two equally long, non-empty outcome lists")
    n = len(a)
    diffs = [float(y) - float(x) for x, y in zip(a, b)]
    rng = random.Random(seed)
    means = [sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples)]
    wins = sum(1 for x, y in zip(a, b) if y and not x)
    losses = sum(1 for x, y in zip(a, b) if x and not y)
    both = sum(1 for x, y in zip(a, b) if x and y)
    return PairedComparison(
        shared=n,
        accuracy_a=sum(a) / n,
        accuracy_b=sum(b) / n,
        difference=sum(diffs) / n,
        interval=_percentiles(means, alpha),
        b_wins=wins,
        b_losses=losses,
        both_right=both,
        both_wrong=n - wins - losses - both,
        p_value=mcnemar_exact(losses, wins),
    )


def best_of_n_expectation(rewards: Sequence[float], values: Sequence[float], n: int) -> float:
    """The expected value of the highest-reward sample among n drawn without replacement from these N samples,
    computed exactly over all C(N, n) subsets rather than by re-sampling (the estimator of Nakano et al. 2021
    and Gao et al. 2022): the i-th best of N (0-based) is a subset's best with probability C(N-1-i, n-1) / C(N, n).
    Equal rewards share their probability equally."""
    total = len(rewards)
    if not 1 <= n <= total or len(values) != total:
        raise ValueError(f"best-of-{n} needs 1 <= n <= {total} samples with one value each")
    order = sorted(range(total), key=lambda i: -rewards[i])
    subsets = math.comb(total, n)
    expected = 0.0
    i = 0
    while i < total:
        j = i
        while j + 1 < total and rewards[order[j + 1]] == rewards[order[i]]:
            j += 1
        chance = sum(math.comb(total - 1 - r, n - 1) for r in range(i, j + 1)) / subsets
        expected += chance * sum(values[order[r]] for r in range(i, j + 1)) / (j - i + 1)
        i = j + 1
    return expected


@dataclass(frozen=True)
class GapRecovered:
    """Performance gap recovered (Burns et al. 2023): how much of the weak-to-ceiling gap a student closes."""

    weak: float
    student: float
    ceiling: float
    pgr: float | None
    """(student − weak) / (ceiling − weak); None when the ceiling is not above the weak model."""
    interval: tuple[float, float] | None
    """Percentile bootstrap interval over problems resampled jointly for all three models; None without a gap."""
    undefined_resamples: int
    """Resamples in which the ceiling was not above the weak model (left out of the interval)."""


def performance_gap_recovered(
    weak: Sequence[bool],
    student: Sequence[bool],
    ceiling: Sequence[bool],
    resamples: int = RESAMPLES,
    alpha: float = 0.05,
    seed: int = 0,
) -> GapRecovered:
    """PGR = (student − weak) / (ceiling − weak) on the same problems (x[i] grades problem i for each model).

    Its interval resamples problems once for all three models (their outcomes are paired), so it carries the
    ratio's own uncertainty, which the three separate accuracy intervals cannot give."""
    n = len(weak)
    if n == 0 or len(student) != n or len(ceiling) != n:
        raise ValueError("PGR needs three equally long, non-empty outcome lists (one per model, same problems)")

    def gap(indices: Sequence[int]) -> float | None:
        w = sum(weak[i] for i in indices)
        c = sum(ceiling[i] for i in indices)
        return None if c <= w else (sum(student[i] for i in indices) - w) / (c - w)

    point = gap(range(n))
    rng = random.Random(seed)
    draws = [gap([rng.randrange(n) for _ in range(n)]) for _ in range(resamples)]
    defined = [d for d in draws if d is not None]
    interval = _percentiles(defined, alpha) if point is not None and defined else None
    return GapRecovered(
        weak=sum(weak) / n,
        student=sum(student) / n,
        ceiling=sum(ceiling) / n,
        pgr=point,
        interval=interval,
        undefined_resamples=len(draws) - len(defined),
    )
