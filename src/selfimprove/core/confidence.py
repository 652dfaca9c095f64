"""Token and trace confidence from top-k log-probabilities (DeepConf: Fu, Wang, Tian, Zhao 2025, "Deep Think with
Confidence", arXiv:2508.15260). Pure functions: engines use them to end a trace early, strategies to weigh votes.

- token confidence C_i = -(1/k) * sum of the k top log-probabilities at position i: high when the model's
  distribution is peaked (the top token near 0, the alternatives far below), low when it hesitates;
- group confidence: the mean token confidence over a sliding window of the latest `window` tokens;
- a trace's lowest group confidence: the minimum over its windows (a trace shorter than the window has one group,
  all of it), the measure DeepConf's online filter compares with its threshold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence


def token_confidence(top: Sequence[tuple[str, float]]) -> float:
    """-(mean log-probability of the top-k tokens at one position); 0 when no alternatives were returned."""
    return -sum(logprob for _, logprob in top) / len(top) if top else 0.0


def group_confidences(confidences: Sequence[float], window: int) -> list[float]:
    """The mean of every window of `window` consecutive token confidences (one group if the trace is shorter)."""
    if not confidences:
        return []
    if len(confidences) <= window:
        return [sum(confidences) / len(confidences)]
    total = sum(confidences[:window])
    groups = [total / window]
    for i in range(window, len(confidences)):
        total += confidences[i] - confidences[i - window]
        groups.append(total / window)
    return groups


def lowest_group_confidence(top_logprobs: Sequence[Sequence[tuple[str, float]]], window: int) -> float | None:
    """A trace's lowest group confidence; None for a trace without log-probabilities or tokens."""
    groups = group_confidences([token_confidence(top) for top in top_logprobs], window)
    return min(groups) if groups else None


class RunningGroupConfidence:
    """What an engine keeps per trace to stop it once the latest window's mean confidence is below a threshold.
    A trace is judged only once it has a full window (DeepConf checks full groups)."""

    def __init__(self, window: int, threshold: float):
        self.window, self.threshold = window, threshold
        self.recent: deque[float] = deque()
        self.total = 0.0

    def add(self, top: Sequence[tuple[str, float]]) -> bool:
        """Takes the next token's top-k; True when the trace should stop here."""
        value = token_confidence(top)
        self.recent.append(value)
        self.total += value
        if len(self.recent) > self.window:
            self.total -= self.recent.popleft()
        return len(self.recent) == self.window and self.total / self.window < self.threshold
