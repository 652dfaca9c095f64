"""Decoding settings strategies share beyond temperature and top-k: the repetition penalties of `Sampling`.

A strategy that takes them inherits `RepetitionControls`; its `describe()` goes through `settings_identity`,
which leaves the penalties out while they are off, so runs stored before they existed keep their ids and a run
with them on never resumes one without.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from selfimprove.core.validation import require_sampling_ranges


@dataclass(kw_only=True)  # after the strategy's own fields, never positional
class RepetitionControls:
    repeat_penalty: float = 1.0
    """Divides the logits of tokens the completion already generated (1: off). See `Sampling`."""
    frequency_penalty: float = 0.0
    """Lowers a token's logit by this per time it was generated (0: off; -2..2)."""
    presence_penalty: float = 0.0
    """Lowers a token's logit by this once it was generated at all (0: off; -2..2)."""
    penalty_window: int = 0
    """How many of the latest generated tokens the penalties count (0: all)."""

    def __post_init__(self) -> None:
        require_sampling_ranges(self)

    def penalties(self) -> dict[str, Any]:
        """The Sampling fields, for `Sampling(..., **self.penalties())`."""
        return {f.name: getattr(self, f.name) for f in fields(RepetitionControls)}


_OFF = {f.name: f.default for f in fields(RepetitionControls)}


def settings_identity(settings: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """`asdict(settings)` without the repetition penalties that are at their defaults and without the fields
    in `leave_out` (objects that describe themselves, such as a reward scorer, are never copied)."""
    if leave_out:
        described = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name not in leave_out}
    else:
        described = asdict(settings)
    return {k: v for k, v in described.items() if not (k in _OFF and v == _OFF[k])}
