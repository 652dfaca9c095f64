"""The two ranking losses a reward model trains with.

Pairwise: Bradley–Terry, -log σ(r_chosen − r_rejected [− margin]) (the loss TRL's RewardTrainer uses).
Listwise: Plackett–Luce, the ListMLE form (Xia et al. 2008): the negative log-likelihood that the responses
were drawn best first, each from those not yet drawn, with probability proportional to exp(reward):

    −Σ_i [ r_(i) − log Σ_{j ≥ i} exp r_(j) ]

For a list of two it is exactly Bradley–Terry. Tied ranks (two correct answers to one problem) use Breslow's
approximation from Cox's partial likelihood: an item's denominator holds every item ranked as good as it or
worse, so tied items are never pushed apart and a strict ranking gives ListMLE unchanged.
"""

from __future__ import annotations

from typing import Any


def bradley_terry_loss(chosen: Any, rejected: Any, margin: Any = None) -> Any:
    """Mean pairwise loss over a batch of (chosen, rejected) reward tensors."""
    import torch.nn.functional as F

    difference = chosen - rejected if margin is None else chosen - rejected - margin
    return -F.logsigmoid(difference).mean()


def plackett_luce_loss(rewards: Any, ranks: Any, mask: Any) -> Any:
    """Mean listwise loss over a batch of lists.

    rewards, ranks: (lists, longest) tensors; rank 0 is the best, equal ranks are ties. mask: True where a
    list has an item (lists are padded to the longest). Each list contributes the sum of its items' terms.
    """
    import torch

    # worse_or_tied[b, i, j]: item j is in item i's denominator (ranked no better than i, and present). The
    # diagonal is always in, so a padding row stays finite (its term is dropped below).
    worse_or_tied = (ranks.unsqueeze(1) >= ranks.unsqueeze(2)) & mask.unsqueeze(1) & mask.unsqueeze(2)
    worse_or_tied |= torch.eye(ranks.shape[1], dtype=torch.bool, device=ranks.device)
    expanded = rewards.unsqueeze(1).expand(-1, rewards.shape[1], -1)
    denominators = torch.logsumexp(expanded.masked_fill(~worse_or_tied, float("-inf")), dim=2)
    terms = torch.where(mask, denominators - rewards, torch.zeros_like(rewards))
    return terms.sum(dim=1).mean()
