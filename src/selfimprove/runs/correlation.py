"""Do a run's wrong samples agree with each other? The measure that decides whether voting, LMSI and
best-of-n can help (issue 24): a majority vote beats one greedy path only where errors scatter while the
right answer repeats (Wang et al. 2022; Huang et al. 2022 rely on the same premise).

- `wrong_pair_agreement`: for a problem with two or more wrong answered samples, the chance that two of them,
  drawn at random without replacement, state the same wrong answer; averaged over those problems. 0: every
  error differs; 1: the model always makes the same mistake.
- `single_wrong_answer_share`: of those problems, the share whose wrong samples all state one answer.
- `calibration`: problems binned by the vote share of their majority answer (top count / samples), with the
  vote's accuracy in each bin: a vote share that means something is the basis of self-training's filter.
- `vote_vs_greedy`: the majority vote against the same run's greedy answer, paired over problems (difference,
  bootstrap interval, McNemar's p).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selfimprove.core.stats import PairedComparison, paired_comparison
from selfimprove.strategies.voting import majority_vote

BIN_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class CalibrationBin:
    low: float
    high: float
    problems: int
    accuracy: float | None
    """Accuracy of the majority vote on the problems whose vote share is in [low, high) ([0.8, 1.0] for the last)."""


@dataclass
class ErrorCorrelation:
    problems: int
    """Graded problems with at least two samples."""
    with_repeated_errors: int
    """Of them, those with two or more wrong answered samples (where agreement among errors is defined)."""
    wrong_pair_agreement: float | None
    single_wrong_answer_share: float | None
    calibration: list[CalibrationBin]
    vote_vs_greedy: PairedComparison | None
    """B = the majority vote, A = the greedy answer; None where the run has no greedy baseline."""


def error_correlation(rows: Sequence[dict[str, Any]], step: str = "sample") -> ErrorCorrelation | None:
    """The measures above from a run's solution rows (`RunStore.solutions`); None where no problem has two
    graded samples of `step`."""
    agreements, singles, shares, votes_right, greedy_pairs = [], [], [], [], []
    problems = 0
    for row in rows:
        samples = [x for x in row["samples"] if x["step"] == step and x["correct"] is not None]
        if len(samples) < 2:
            continue
        problems += 1
        wrong = Counter(x["answer"] for x in samples if not x["correct"] and x["answer"] is not None)
        total_wrong = sum(wrong.values())
        if total_wrong >= 2:
            agreements.append(sum(c * (c - 1) for c in wrong.values()) / (total_wrong * (total_wrong - 1)))
            singles.append(float(len(wrong) == 1))
        vote = majority_vote([x["answer"] for x in samples])
        right = vote.answer is not None and any(x["correct"] for x in samples if x["answer"] == vote.answer)
        shares.append(vote.share)
        votes_right.append(right)
        if row["extra"].get("greedy_correct") is not None:
            greedy_pairs.append((bool(row["extra"]["greedy_correct"]), right))
    if not problems:
        return None
    comparison = None
    if greedy_pairs and len(greedy_pairs) == problems:
        comparison = paired_comparison([g for g, _ in greedy_pairs], [v for _, v in greedy_pairs])
    return ErrorCorrelation(
        problems=problems,
        with_repeated_errors=len(agreements),
        wrong_pair_agreement=sum(agreements) / len(agreements) if agreements else None,
        single_wrong_answer_share=sum(singles) / len(singles) if singles else None,
        calibration=calibration(shares, votes_right),
        vote_vs_greedy=comparison,
    )


def calibration(shares: Sequence[float], right: Sequence[bool]) -> list[CalibrationBin]:
    """The vote's accuracy by vote share, in the bins of BIN_EDGES (the last bin includes 1.0)."""
    bins = []
    for low, high in zip(BIN_EDGES, BIN_EDGES[1:]):
        last = high == BIN_EDGES[-1]
        inside = [r for s, r in zip(shares, right) if low <= s < high or (last and s == high)]
        bins.append(CalibrationBin(low, high, len(inside), sum(inside) / len(inside) if inside else None))
    return bins
