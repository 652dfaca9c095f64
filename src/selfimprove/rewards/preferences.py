"""Preference data: a prompt and two or more responses ranked best first, read from JSONL or made from graded
samples (`training/reward_models.py`), with label noise added on purpose where a study asks for it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from selfimprove.core.errors import ConfigError, DataError
from selfimprove.tasks.jsonl import read_jsonl, require_str


@dataclass(frozen=True)
class Preference:
    """Responses to one prompt with their ranks: 0 is the best, equal ranks are ties (two correct answers)."""

    prompt: str
    responses: tuple[str, ...]
    ranks: tuple[int, ...]

    @property
    def is_pair(self) -> bool:
        return len(self.responses) == 2 and self.ranks[0] != self.ranks[1]

    def pairs(self) -> list[tuple[str, str]]:
        """Every (better, worse) pair the ranking states; ties state none."""
        return [
            (better, worse)
            for better, rank_b in zip(self.responses, self.ranks)
            for worse, rank_w in zip(self.responses, self.ranks)
            if rank_b < rank_w
        ]

    def reversed(self) -> Preference:
        """The ranking turned upside down (for a pair: chosen and rejected swapped)."""
        worst = max(self.ranks)
        return Preference(self.prompt, self.responses, tuple(worst - r for r in self.ranks))


def load_preferences(path: str | Path) -> list[Preference]:
    """Rows of `{"prompt", "chosen", "rejected"}` or `{"prompt", "responses": [...], "ranking": [...]}` (ranking:
    one rank per response, 0 the best; or omitted, meaning the responses are listed best first). A bad row
    raises DataError naming the file, line and field."""
    preferences = []
    for line, record in read_jsonl(path):
        prompt = require_str(record, "prompt", path, line)
        if "responses" in record:
            preferences.append(_ranked(record, prompt, path, line))
            continue
        if "chosen" not in record and "rejected" not in record:
            raise DataError(path, "needs chosen and rejected, or responses (and ranking)", line=line, field="chosen")
        chosen = require_str(record, "chosen", path, line)
        rejected = require_str(record, "rejected", path, line)
        preferences.append(Preference(prompt, (chosen, rejected), (0, 1)))
    return preferences


def _ranked(record: dict, prompt: str, path: str | Path, line: int) -> Preference:
    responses = record["responses"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise DataError(path, "expected a list of at least two responses", line=line, field="responses")
    for i, response in enumerate(responses):
        if not isinstance(response, str) or not response.strip():
            raise DataError(path, f"response {i} is not a non-empty string", line=line, field="responses")
    ranking = record.get("ranking", list(range(len(responses))))
    if (
        not isinstance(ranking, list)
        or len(ranking) != len(responses)
        or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in ranking)
    ):
        reason = f"expected {len(responses)} ranks (integers >= 0, 0 the best), got {ranking!r:.60}"
        raise DataError(path, reason, line=line, field="ranking")
    if len(set(ranking)) < 2:
        raise DataError(path, "every response has the same rank: nothing to learn", line=line, field="ranking")
    return Preference(prompt, tuple(responses), tuple(ranking))


def with_label_noise(preferences: Sequence[Preference], share: float, seed: int) -> list[Preference]:
    """`share` of the preferences (chosen at random, exactly round(share · count) of them) with their ranking
    reversed: the label noise under which overoptimization is studied (Coste et al. 2023 use 25%)."""
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"--label-noise must be in [0, 1], got {share}")
    flipped = set(random.Random(seed).sample(range(len(preferences)), round(share * len(preferences))))
    return [p.reversed() if i in flipped else p for i, p in enumerate(preferences)]
