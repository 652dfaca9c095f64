"""Stop rules for adaptive self-consistency: tiny pure functions of the answers drawn so far.

`None` answers (nothing extractable) never count as votes.
- `beta_stop` (Aggarwal et al. 2023, "Let's Sample Step by Step"): with v1 votes for the leading
  answer and v2 for the runner-up, and a uniform prior, the posterior that the leader's share
  exceeds the runner-up's is P(X > 1/2) for X ~ Beta(v1 + 1, v2 + 1); stop once it exceeds the
  threshold. For integer parameters this is a binomial tail: sum_{j<v1+1} C(n, j) / 2^n, n = v1+v2+1.
- `window_stop` (ESC, Li et al. 2024, "Escape Sky-high Cost"): stop once the latest window of w
  samples is unanimous (w extracted answers, all equal).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def leader_confidence(answers: Sequence[str | None]) -> float:
    """Posterior probability that the leading answer is the true majority (0 without votes)."""
    counts = sorted(Counter(a for a in answers if a is not None).values(), reverse=True)
    if not counts:
        return 0.0
    v1, v2 = counts[0], (counts[1] if len(counts) > 1 else 0)
    n = v1 + v2 + 1
    return sum(math.comb(n, j) for j in range(v1 + 1)) / 2**n


def beta_stop(answers: Sequence[str | None], threshold: float = 0.95) -> bool:
    return leader_confidence(answers) > threshold


def window_stop(answers: Sequence[str | None], window: int) -> bool:
    last = list(answers[-window:])
    return len(last) == window and None not in last and len(set(last)) == 1
