"""One exception family, so callers (and the CLI) can catch what selfimprove raises and nothing else.

Every message says what went wrong, where (file:line, field) when there is a where, and how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class SelfImproveError(Exception):
    """Base of every error selfimprove raises on purpose."""


class UnknownNameError(SelfImproveError):
    """A registry lookup failed; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, valid
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        super().__init__(f"unknown {kind} {name!r}; valid {plural}: {', '.join(sorted(valid))}")


class DataError(SelfImproveError):
    """A dataset file is missing or malformed; names the file, the line and the field."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = self.path if line is None else f"{self.path}:{line}"
        what = message if field is None else f"field {field!r}: {message}"
        super().__init__(f"{where}: {what}")


class ModelNotFoundError(SelfImproveError):
    """A model file or directory does not exist."""


class RunBusyError(SelfImproveError):
    """Another live process is computing the same run in the same store."""


class EngineError(SelfImproveError):
    """An engine could not produce completions (server unreachable, decode failure, ...)."""


class ConfigError(SelfImproveError):
    """A configuration value is invalid."""
