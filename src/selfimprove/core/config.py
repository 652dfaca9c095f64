"""Where selfimprove keeps its files: `$SELFIMPROVE_HOME`, default `~/.selfimprove`."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The root for the run store, the assembled embedded model and build caches."""
    root = Path(os.environ.get("SELFIMPROVE_HOME") or Path.home() / ".selfimprove").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def default_store_path() -> Path:
    return home() / "runs.sqlite"
