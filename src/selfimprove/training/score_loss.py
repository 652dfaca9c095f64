"""The SCoRe objective as per-turn returns, leave-one-out advantages and a per-token loss.

Kumar et al. 2024 ("Training Language Models to Self-Correct via Reinforcement Learning"), with
r_t the grader's reward (1 right, 0 wrong) of attempt t:

- Stage I maximises E[r(y2)] − β2·KL(π(·|x1) ‖ π_ref(·|x1)): attempt 2 is what is rewarded and the
  strong KL holds attempt 1 near the base model, so the model cannot learn to "correct" by
  answering worse first (the collapse the paper warns of).
- Stage II maximises E[r(y1) + r(y2)] − β1·(KL on both turns) with a bonus α·(r2 − r1) on attempt 2.

Credit per turn. Stage II: attempt 1's tokens get r1 + r2 (the rewards that follow them), attempt
2's get r2 + α·(r2 − r1). The bonus goes to attempt 2 only: crediting it to attempt 1 as well would
reward a *wrong* first attempt (−α·r1), the very collapse the bonus fights. Stage I: attempt 2 gets
r2 and attempt 1 gets no reward at all, only its KL — the paper's "train the second attempt while
forcing the first not to change". The exact gradient of E[r(y2)] would also credit attempt 1 with
r2; measured on the testbed (docs/score.md), that credit pulled sampled attempt-1 accuracy from
0.4 to about 0.1 within 20 steps despite β2 = 0.1: the model learnt to answer worse first.

The baseline is leave-one-out (RLOO, Ahmadian et al. 2024): each episode's return minus the mean
of the other episodes of the same problem. KL is estimated per sampled token with Schulman's
unbiased, non-negative k3 = exp(q) − q − 1, q = log π_ref − log π, summed over a turn's tokens and
weighted by that turn's coefficient only. These functions are plain torch so that their values
can be checked by hand (tests/test_score.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StageObjective:
    """What one stage rewards and regularises. `kl` holds one coefficient per turn."""

    name: str
    turns: int
    kl: tuple[float, ...]
    alpha: float = 0.0
    credit_first: bool = True
    """Whether attempt 1's tokens get a return (Stage II, single-turn RL) or only their KL (Stage I)."""

    def turn_returns(self, rewards: Sequence[float]) -> list[float]:
        """The return credited to each turn's tokens, from the attempts' 0/1 rewards."""
        if len(rewards) != self.turns:
            raise ValueError(f"{self.name}: expected {self.turns} rewards, got {len(rewards)}")
        if self.turns == 1:
            return [float(rewards[0])]
        r1, r2 = float(rewards[0]), float(rewards[1])
        second = r2 + self.alpha * (r2 - r1)
        first = r1 + r2 if self.credit_first else 0.0
        return [first, second]


def stage_one(beta2: float) -> StageObjective:
    """E[r(y2)] for attempt 2; attempt 1 held by β2·KL alone."""
    return StageObjective("stage-1", turns=2, kl=(beta2, 0.0), alpha=0.0, credit_first=False)


def stage_two(alpha: float, beta1: float) -> StageObjective:
    """E[r(y1) + r(y2)] + α·(r2 − r1) on attempt 2 − β1·KL on both attempts."""
    return StageObjective("stage-2", turns=2, kl=(beta1, beta1), alpha=alpha, credit_first=True)


def single_turn(beta1: float) -> StageObjective:
    """The paper's ablation baseline: RL on attempt 1 alone, E[r(y1)] − β1·KL."""
    return StageObjective("single-turn", turns=1, kl=(beta1,))


def leave_one_out(returns: Sequence[float]) -> list[float]:
    """Each value minus the mean of the others (one problem's episodes); 0 for a lone episode."""
    k = len(returns)
    if k < 2:
        return [0.0] * k
    total = sum(returns)
    return [r - (total - r) / (k - 1) for r in returns]


def token_kl(logp: Any, ref_logp: Any) -> Any:
    """k3 estimate of KL(π ‖ π_ref) at each sampled token: exp(q) − q − 1 with q = ref_logp − logp."""
    import torch

    q = ref_logp - logp
    return torch.exp(q) - q - 1.0


def sequence_loss(logp: Any, ref_logp: Any, mask: Any, advantages: Any, betas: Any, episodes: int) -> tuple[Any, Any]:
    """(loss, per-row KL) for rows that are each one turn of one episode.

    logp, ref_logp, mask: [rows, tokens] (mask 1 on the turn's generated tokens); advantages, betas:
    [rows]. loss = (1/episodes) · Σ_rows [−A·Σ_t log π(a_t) + β·Σ_t k3_t]; on-policy, so the score
    function needs no importance ratio. Rows of a step can be split across micro-batches: the sum
    decomposes, `episodes` is the whole step's count."""
    mask = mask.to(logp.dtype)
    kl = (token_kl(logp, ref_logp) * mask).sum(dim=-1)
    logp_sum = (logp * mask).sum(dim=-1)
    loss = (-advantages * logp_sum + betas * kl).sum() / episodes
    return loss, kl.detach()
