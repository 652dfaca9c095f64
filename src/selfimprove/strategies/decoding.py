"""Decoding settings strategies share beyond temperature and top-k: the repetition penalties of `Sampling`.

A strategy that takes them inherits `RepetitionControls`; its `describe()` goes through `settings_identity`,
which leaves the penalties out while they are off, so runs stored before they existed keep their ids and a run
with them on never resumes one without.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from selfimprove.core.types import Problem, SampleRecord, Sampling
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

    # The two below are for sampling strategies, whose own fields include temperature, top_p, top_k,
    # max_tokens, seed (and greedy_baseline).

    def sampled(self, task: Any, **extra: Any) -> Sampling:
        """The strategy's sampling settings with the task's stop strings (`extra`: further Sampling fields)."""
        return Sampling(
            **self.penalties(),
            temperature=self.temperature,  # type: ignore[attr-defined]
            top_p=self.top_p,  # type: ignore[attr-defined]
            top_k=self.top_k,  # type: ignore[attr-defined]
            max_tokens=self.max_tokens,  # type: ignore[attr-defined]
            stop=tuple(task.stop),
            seed=self.seed,  # type: ignore[attr-defined]
            **extra,
        )

    def greedy_rows(self, problems: Sequence[Problem], task: Any, engine: Any) -> list[list[SampleRecord]] | None:
        """The greedy answer of each problem (step "greedy", the baseline a sampling strategy reports) where
        `greedy_baseline` is on; None where it is off."""
        from selfimprove.strategies.base import sample_step

        if not self.greedy_baseline:  # type: ignore[attr-defined]
            return None
        greedy = Sampling(**self.penalties(), temperature=0.0, max_tokens=self.max_tokens, stop=tuple(task.stop))  # type: ignore[attr-defined]
        return sample_step(problems, task, engine, "greedy", 1, greedy)


_OFF = {f.name: f.default for f in fields(RepetitionControls)}


def settings_identity(settings: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """`asdict(settings)` without the repetition penalties that are at their defaults and without the fields
    in `leave_out` (objects that describe themselves, such as a reward scorer, are never copied)."""
    if leave_out:
        described = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name not in leave_out}
    else:
        described = asdict(settings)
    return {k: v for k, v in described.items() if not (k in _OFF and v == _OFF[k])}
