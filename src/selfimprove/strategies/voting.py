"""Majority voting over extracted answers: a pure function, testable by hand.

Rules: an answer of None (nothing extractable) casts no vote. Among answers tied for the most
votes, the one that appeared first (lowest sample index) wins, so a vote is deterministic and
does not depend on dict or set ordering. No votes at all -> answer None, share 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from selfimprove.core.types import Problem, SampleRecord, Solution
from selfimprove.tasks.base import Task


@dataclass(frozen=True)
class Vote:
    answer: str | None
    counts: dict[str, float]
    share: float
    """Top answer's votes over all samples (extraction failures included): the confidence of the vote."""


def voted_solution(
    problem: Problem, task: Task, voters: Sequence[SampleRecord], extra: dict, trace: Sequence[SampleRecord] = ()
) -> Solution:
    """The Solution of a majority vote over `voters`; `trace` holds further samples kept before them."""
    vote = majority_vote([r.answer for r in voters])
    return Solution(
        problem_id=problem.id,
        answer=vote.answer,
        correct=task.grade(problem, vote.answer),
        samples=[*trace, *voters],
        votes=vote.counts,
        confidence=vote.share,
        extra=extra,
    )


def majority_vote(answers: Sequence[str | None]) -> Vote:
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return Vote(answer=None, counts={}, share=0.0)
    best = max(counts.values())
    winner = next(a for a in answers if a is not None and counts[a] == best)
    ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], answers.index(item[0]))))
    return Vote(answer=winner, counts=ordered, share=best / len(answers))


def weighted_vote(answers: Sequence[str | None], weights: Sequence[float]) -> Vote:
    """Each answer's votes are the sum of its samples' weights (None answers and their weights left out); ties go
    to the answer that appeared first, as in `majority_vote`. `counts` holds the summed weights; `share` is the
    winner's weight over all samples' weights."""
    totals: dict[str, float] = {}
    for answer, weight in zip(answers, weights):
        if answer is not None:
            totals[answer] = totals.get(answer, 0.0) + weight
    if not totals:
        return Vote(answer=None, counts={}, share=0.0)
    best = max(totals.values())
    winner = next(a for a in answers if a is not None and totals[a] == best)
    ordered = dict(sorted(totals.items(), key=lambda item: (-item[1], answers.index(item[0]))))
    everything = sum(weights)
    return Vote(answer=winner, counts=ordered, share=best / everything if everything > 0 else 0.0)
