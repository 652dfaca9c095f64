"""Writing files and folders whole: into a `.partial` beside the target, renamed onto it only when complete,
so an interruption (Ctrl-C, SIGKILL, a full disk) never leaves half a file where a whole one is expected."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yields `target.partial` (an empty folder when `directory`) to write into; on a clean exit it replaces
    `target` (a folder is swapped in whole), on an exception it is removed and `target` is left as it was."""
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    _remove(partial)
    target.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        partial.mkdir()
    try:
        yield partial
    except BaseException:
        _remove(partial)
        raise
    if directory and target.exists():
        old = target.with_name(target.name + ".old")
        _remove(old)
        os.replace(target, old)  # a folder cannot be renamed onto a non-empty one
        os.replace(partial, target)
        _remove(old)
    else:
        os.replace(partial, target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    """`text` (UTF-8) written whole to `target`."""
    with atomic_path(target) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(target)
