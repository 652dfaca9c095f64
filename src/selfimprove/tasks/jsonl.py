"""Reading JSONL datasets with errors that name the file, the line and the field."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selfimprove.core.errors import DataError
from selfimprove.core.files import atomic_write_text


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (1-based line number, record) for each non-blank line of a `.jsonl` or `.jsonl.gz` file; raises
    DataError on bad JSON, text that is not UTF-8 (naming the line), a file that is not gzip, or no record."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "dataset file not found (pass --data PATH to a JSONL file)")
    opener = gzip.open if path.name.endswith(".gz") else open
    records = 0
    line_no = 0
    try:
        with opener(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    reason = f"not UTF-8 text (byte {exc.start + 1}); is it a JSONL file?"
                    raise DataError(path, reason, line=line_no) from None
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(path, f"invalid JSON ({exc.msg} at column {exc.colno})", line=line_no) from None
                if not isinstance(record, dict):
                    raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line=line_no)
                records += 1
                yield line_no, record
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(path, f"not a readable gzip file ({exc})", line=line_no + 1) from None
    if not records:
        raise DataError(path, "holds no records (an empty file?)")


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """One JSON object per line, written beside `path` and renamed: an interrupted write leaves no half file."""
    atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in records))


def require_str(record: dict[str, Any], field: str, path: str | Path, line: int) -> str:
    """`record[field]` as a non-empty string, or a DataError naming file, line and field."""
    if field not in record:
        raise DataError(path, "missing", line=line, field=field)
    value = record[field]
    if not isinstance(value, str) or not value.strip():
        raise DataError(path, f"expected a non-empty string, got {value!r:.60}", line=line, field=field)
    return value


def identify_source(source: str | None) -> str | None:
    """`name@sha256-prefix` for a local file, so that an edited dataset starts a new run; a hub name as is."""
    if source is None:
        return None
    path = Path(source).expanduser()
    if not path.is_file():
        return source
    return f"{path.name}@{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"


def is_hub_name(source: str) -> bool:
    """`owner/name` that is not a local path: loaded with Hugging Face `datasets` when the hub is reachable."""
    path = Path(source).expanduser()
    return (
        not path.exists()
        and source.count("/") == 1
        and not source.startswith((".", "/", "~"))
        and not source.endswith((".jsonl", ".jsonl.gz", ".json", ".txt"))
    )


def read_records(source: str | Path, split: str = "test", config: str | None = None) -> Iterator[tuple[int, dict]]:
    """(line or row number, record) from a local JSONL file, or from a hub dataset's split."""
    if isinstance(source, Path) or not is_hub_name(source):
        yield from read_jsonl(Path(source).expanduser())
        return
    try:
        import datasets
    except ImportError:
        raise DataError(source, "is not a local file; loading it from the hub needs `pip install datasets`") from None
    try:
        rows = datasets.load_dataset(source, config, split=split)
    except Exception as exc:  # datasets raises many unrelated types for "not reachable"
        raise DataError(source, f"could not load split {split!r} from the Hugging Face hub: {exc}") from exc
    for index, row in enumerate(rows, start=1):
        yield index, dict(row)


def file_beside(data: str, *names: str) -> str | None:
    """The first of `names` that exists in the folder of the local file `data`. It may be `data` itself:
    every task leaves the evaluated problem out of its own prompt."""
    path = Path(data).expanduser()
    if not path.is_file():
        return None
    for name in names:
        candidate = path.parent / name
        if candidate.is_file():
            return str(candidate)
    return None
