"""How an ensemble's member rewards become one reward (Coste et al. 2023, "Reward model ensembles help
mitigate overoptimization"): the mean; the worst case (min); uncertainty-weighted, mean − λ·std (std over
members, the population form); and the median. Members are standardised first, where the ensemble says so,
because members trained from different seeds put their rewards on different scales."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from selfimprove.core.errors import ConfigError

AGGREGATORS = ("mean", "min", "uncertainty", "median")


def aggregate(members: Sequence[float], rule: str, uncertainty_weight: float = 1.0) -> float:
    """One response's reward from its members' rewards."""
    if not members:
        raise ConfigError("an ensemble reward needs at least one member's score")
    if rule == "mean":
        return statistics.fmean(members)
    if rule == "min":
        return min(members)
    if rule == "median":
        return statistics.median(members)
    if rule == "uncertainty":
        return statistics.fmean(members) - uncertainty_weight * disagreement(members)
    raise ConfigError(f"unknown aggregator {rule!r}: use one of {', '.join(AGGREGATORS)}")


def disagreement(members: Sequence[float]) -> float:
    """The members' spread on one response (population standard deviation; 0 for one member)."""
    return statistics.pstdev(members) if len(members) > 1 else 0.0


def require_aggregator(rule: str, uncertainty_weight: float) -> None:
    if rule not in AGGREGATORS:
        raise ConfigError(f"aggregator must be one of {', '.join(AGGREGATORS)}, got {rule!r}")
    if uncertainty_weight < 0:
        raise ConfigError(f"uncertainty_weight must be >= 0, got {uncertainty_weight}")
