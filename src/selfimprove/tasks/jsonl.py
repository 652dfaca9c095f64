"""Reading JSONL datasets with errors that name the file, the line and the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selfimprove.core.errors import DataError


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (1-based line number, record) for each non-blank line; raises DataError on bad JSON."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "dataset file not found (pass --data PATH to a JSONL file)")
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"invalid JSON ({exc.msg} at column {exc.colno})", line=line_no) from None
            if not isinstance(record, dict):
                raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line=line_no)
            yield line_no, record


def require_str(record: dict[str, Any], field: str, path: str | Path, line: int) -> str:
    """`record[field]` as a non-empty string, or a DataError naming file, line and field."""
    if field not in record:
        raise DataError(path, "missing", line=line, field=field)
    value = record[field]
    if not isinstance(value, str) or not value.strip():
        raise DataError(path, f"expected a non-empty string, got {value!r:.60}", line=line, field=field)
    return value
