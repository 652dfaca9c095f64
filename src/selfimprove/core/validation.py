"""Range checks for settings, run where the settings are built (dataclasses' `__post_init__`), so the Python
API refuses a wrong value exactly as the CLI does: one line naming the setting, its flag and the valid range."""

from __future__ import annotations

from typing import Any

from selfimprove.core.errors import ConfigError

# The house vocabulary: a setting of this name means the same thing wherever it appears.
SAMPLING_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    # name: (lowest, highest, lowest excluded)
    "samples": (1, None, False),
    "turns": (1, None, False),
    "turn_samples": (1, None, False),
    "batch": (1, None, False),
    "temperature": (0, None, False),
    "top_p": (0, 1, True),
    "top_k": (0, None, False),
    "max_tokens": (1, None, False),
    "seed": (0, None, False),
    "repeat_penalty": (0, None, True),
    "frequency_penalty": (-2, 2, False),
    "presence_penalty": (-2, 2, False),
    "penalty_window": (0, None, False),
    "top_logprobs": (0, 20, False),
    "stop_below_confidence": (0, None, False),
    "confidence_window": (1, None, False),
}


def require_range(
    name: str, value: Any, low: float | None = None, high: float | None = None, low_excluded: bool = False
) -> None:
    """ConfigError unless `low <= value <= high` (`low < value` when `low_excluded`); None bounds are open."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} = {value!r} (--{name.replace('_', '-')}): expected a number")
    too_low = low is not None and (value <= low if low_excluded else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        lower = "" if low is None else (f"> {low:g}" if low_excluded else f">= {low:g}")
        upper = "" if high is None else f"<= {high:g}"
        valid = " and ".join(part for part in (lower, upper) if part)
        raise ConfigError(f"{name} = {value!r} (--{name.replace('_', '-')}): must be {valid}")


def require_sampling_ranges(settings: Any) -> None:
    """Checks every field of `settings` named in SAMPLING_RANGES."""
    for name, (low, high, low_excluded) in SAMPLING_RANGES.items():
        if hasattr(settings, name) and getattr(settings, name) is not None:
            require_range(name, getattr(settings, name), low, high, low_excluded)
