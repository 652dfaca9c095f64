"""How much of a set of memory items a model recalled: exact matches, similarity, and bits.

- exact: the generation begins with the item's value (`tasks.memory.recalled_exactly`), with a Wilson interval.
- similarity: 1 − normalised edit distance between the value and the generation cut to the value's length,
  beside its chance level: the same generations scored against *another* item's value (item i's generation
  against item i+1's value), which is what unrelated text of the same kind shares (rhyme, common words).
- bits (synthetic items only, whose fields are uniform over stated sets):
  `bits` counts log2 |set| for every field recalled exactly (the issue's measure); `chance_bits` is what
  uniform guessing gets on average (Σ over items and fields of log2 |set| / |set|); `fano_bits` is a lower
  bound on the information the recalls carry about the true values: with accuracy p on a field of V values,
  Fano's inequality gives I ≥ log2 V − H(p) − (1 − p) log2(V − 1) per item (0 at p = 1/V, log2 V at p = 1),
  which does not reward lucky guesses. Allen-Zhu & Li 2024 report ≈ 2 bits per parameter at saturation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from selfimprove.core.stats import wilson_interval
from selfimprove.runs.metrics import normalised_edit_distance
from selfimprove.tasks.memory import FieldSpace, MemoryItem, normalise, parse_fields, recalled_exactly, recalled_part


@dataclass
class RecallScore:
    """One model's recall of one set of items."""

    items: int
    exact: int
    """Items recalled exactly."""
    exact_rate: float
    exact_interval: tuple[float, float]
    similarity: float
    """Mean of 1 − normalised edit distance (value vs generation cut to the value's length)."""
    chance_similarity: float
    """The same generations against another item's value: what unrelated text shares."""
    fields: dict[str, float] = field(default_factory=dict)
    """Synthetic items: field name -> share recalled exactly."""
    bits: float = 0.0
    """Synthetic items: Σ log2 |set| over the fields recalled exactly."""
    chance_bits: float = 0.0
    """Synthetic items: the expected `bits` of uniform guessing."""
    fano_bits: float = 0.0
    """Synthetic items: Fano lower bound on the information recalled (0 at chance accuracy)."""


def similarity(generated: str, value: str) -> float:
    return 1.0 - normalised_edit_distance(recalled_part(generated, value), normalise(value))


def fano_bits_per_item(accuracy: float, values: int) -> float:
    """Least mutual information (bits) between a uniform V-valued fact and a guess right with probability p."""
    if values < 2 or accuracy <= 1 / values:
        return 0.0
    entropy = -sum(q * math.log2(q) for q in (accuracy, 1 - accuracy) if q > 0)
    return max(0.0, math.log2(values) - entropy - (1 - accuracy) * math.log2(values - 1))


def score_recall(
    items: Sequence[MemoryItem], generations: Sequence[str | None], spaces: Sequence[FieldSpace] = ()
) -> RecallScore:
    """Score `generations[i]` as the recall of `items[i]` (None: nothing generated)."""
    if len(items) != len(generations) or not items:
        raise ValueError("recall scoring needs one generation per item, and at least one item")
    texts = [g or "" for g in generations]
    exact = sum(recalled_exactly(t, item.value) for t, item in zip(texts, items))
    shifted = [items[(i + 1) % len(items)] for i in range(len(items))]
    score = RecallScore(
        items=len(items),
        exact=exact,
        exact_rate=exact / len(items),
        exact_interval=wilson_interval(exact, len(items)),
        similarity=sum(similarity(t, item.value) for t, item in zip(texts, items)) / len(items),
        chance_similarity=sum(similarity(t, other.value) for t, other in zip(texts, shifted)) / len(items)
        if len(items) > 1
        else 0.0,
    )
    synthetic = [space for space in spaces if all(dict(item.fields).get(space.name) for item in items)]
    parsed = [parse_fields(t, spaces) for t in texts] if synthetic else []
    for space in synthetic:
        hits = sum(found.get(space.name) == dict(item.fields)[space.name] for found, item in zip(parsed, items))
        accuracy = hits / len(items)
        score.fields[space.name] = accuracy
        score.bits += hits * space.bits
        score.chance_bits += len(items) * space.bits / len(space.values)
        score.fano_bits += len(items) * fano_bits_per_item(accuracy, len(space.values))
    return score
