"""RunStore: every completion of every run in one SQLite file (WAL), written as it arrives.

Keys: completions by (run, problem, step, sample); solutions by (run, problem). A run's id is the
hash of its config, so re-running the same command finds what it already has. Each completion is
committed on its own, so a process killed at any moment (even SIGKILL) loses at most the
completion being generated; a duplicate key raises instead of silently recomputing.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from selfimprove.core.errors import RunBusyError, SelfImproveError
from selfimprove.core.types import Completion, Problem, SampleRecord, Solution

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    label TEXT NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS completions (
    run_id TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    step TEXT NOT NULL,
    sample INTEGER NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT NOT NULL,
    seconds REAL NOT NULL,
    session INTEGER NOT NULL,
    created REAL NOT NULL,
    prompt_evaluated INTEGER,
    logprobs TEXT,
    top_logprobs TEXT,
    PRIMARY KEY (run_id, problem_id, step, sample)
);
CREATE TABLE IF NOT EXISTS solutions (
    run_id TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    reference TEXT,
    answer TEXT,
    correct INTEGER,
    confidence REAL,
    votes TEXT NOT NULL,
    samples TEXT NOT NULL,
    extra TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created REAL NOT NULL,
    question TEXT,
    PRIMARY KEY (run_id, problem_id)
);
CREATE TABLE IF NOT EXISTS run_claims (
    run_id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    claimed REAL NOT NULL,
    heartbeat REAL NOT NULL
);
"""
CLAIM_STALE_SECONDS = 300.0  # a claim from another machine not renewed for this long is taken over


def _claim_alive(pid: int, host: str, heartbeat: float, now: float) -> bool:
    if host != socket.gethostname():
        return now - heartbeat < CLAIM_STALE_SECONDS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class RunStore:
    """SQLite-backed store; one instance per process. `session` numbers each invocation of a run."""

    def __init__(self, path: str | Path, shared: bool = False):
        """`shared`: the connection may be used from several threads (the caller serialises its writes, as the
        server's recorder does)."""
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=not shared)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable against process death; WAL keeps it fast
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise SelfImproveError(f"{self.path}: not a usable run store ({exc})") from exc
        self._db.row_factory = sqlite3.Row

    def _migrate(self) -> None:
        """Bring stores written by earlier versions up to this schema (columns are only ever added)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(solutions)")}
        if "question" not in columns:
            self._db.execute("ALTER TABLE solutions ADD COLUMN question TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(completions)")}
        for name, kind in (("prompt_evaluated", "INTEGER"), ("logprobs", "TEXT"), ("top_logprobs", "TEXT")):
            if name not in columns:
                self._db.execute(f"ALTER TABLE completions ADD COLUMN {name} {kind}")

    def close(self) -> None:
        self._db.close()

    # -- runs ------------------------------------------------------------------------------------

    def open_run(self, run_id: str, label: str, config: dict[str, Any]) -> int:
        """Create the run if new; return this invocation's session number (1 for a fresh run)."""
        now = time.time()
        self._db.execute(
            "INSERT INTO runs (run_id, created, updated, label, config) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET updated = excluded.updated",
            (run_id, now, now, label, json.dumps(config, sort_keys=True)),
        )
        row = self._db.execute("SELECT MAX(session) FROM completions WHERE run_id = ?", (run_id,)).fetchone()
        return (row[0] or 0) + 1

    # -- claims: one process computes a run at a time ---------------------------------------------------------

    def claim_run(self, run_id: str) -> None:
        """Claim `run_id` for this process, or raise RunBusyError naming the live process that holds it. A claim
        whose process is gone (same host: its pid no longer exists; another host: no heartbeat for
        CLAIM_STALE_SECONDS) is taken over: a crashed run resumes, nothing is lost."""
        me, host, now = os.getpid(), socket.gethostname(), time.time()
        self._db.execute("BEGIN IMMEDIATE")  # the check and the claim in one write transaction
        try:
            row = self._db.execute("SELECT pid, host, claimed, heartbeat FROM run_claims WHERE run_id = ?",
                                   (run_id,)).fetchone()  # fmt: skip
            if row is not None and (row[0], row[1]) != (me, host) and _claim_alive(row[0], row[1], row[3], now):
                since = time.strftime("%H:%M:%S", time.localtime(row[2]))
                raise RunBusyError(
                    f"run {run_id} is being computed by process {row[0]} on {row[1]} (since {since}) in "
                    f"{self.path}; wait for it to finish or stop it, then run again to resume"
                )
            self._db.execute(
                "INSERT INTO run_claims (run_id, pid, host, claimed, heartbeat) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(run_id) DO UPDATE SET pid = excluded.pid, host = excluded.host, "
                "claimed = excluded.claimed, heartbeat = excluded.heartbeat",
                (run_id, me, host, now, now),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def renew_claim(self, run_id: str) -> None:
        self._db.execute("UPDATE run_claims SET heartbeat = ? WHERE run_id = ? AND pid = ? AND host = ?",
                         (time.time(), run_id, os.getpid(), socket.gethostname()))  # fmt: skip

    def release_run(self, run_id: str) -> None:
        self._db.execute("DELETE FROM run_claims WHERE run_id = ? AND pid = ? AND host = ?",
                         (run_id, os.getpid(), socket.gethostname()))  # fmt: skip

    def runs(self) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT r.run_id, r.created, r.updated, r.label, "
            "(SELECT COUNT(*) FROM solutions s WHERE s.run_id = r.run_id) AS problems, "
            "(SELECT AVG(correct) FROM solutions s WHERE s.run_id = r.run_id) AS accuracy, "
            "(SELECT COUNT(*) FROM completions c WHERE c.run_id = r.run_id) AS completions "
            "FROM runs r ORDER BY r.updated DESC"
        ).fetchall()

    def find_run(self, prefix: str) -> str:
        """The full id of the run whose id starts with `prefix`; errors name the candidates."""
        rows = [r[0] for r in self._db.execute("SELECT run_id FROM runs WHERE run_id LIKE ? || '%'", (prefix,))]
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise SelfImproveError(f"no run {prefix!r} in {self.path} (`selfimprove runs` lists them)")
        raise SelfImproveError(f"run prefix {prefix!r} is ambiguous: {', '.join(rows)}")

    def label(self, run_id: str) -> str:
        row = self._db.execute("SELECT label FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row else run_id

    def config(self, run_id: str) -> dict[str, Any]:
        row = self._db.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else {}

    # -- completions -----------------------------------------------------------------------------

    def completions(self, run_id: str, problem_id: str, step: str) -> dict[int, Completion]:
        rows = self._db.execute(
            f"SELECT sample, {_COMPLETION_COLUMNS} FROM completions WHERE run_id = ? AND problem_id = ? AND step = ?",
            (run_id, problem_id, step),
        )
        return {r["sample"]: _completion(r) for r in rows}

    def problem_completions(self, run_id: str, problem_id: str) -> dict[str, dict[int, Completion]]:
        """Every stored completion of one problem, by step and sample id (what a re-dispatched problem starts from)."""
        rows = self._db.execute(
            f"SELECT step, sample, {_COMPLETION_COLUMNS} FROM completions WHERE run_id = ? AND problem_id = ?",
            (run_id, problem_id),
        )
        found: dict[str, dict[int, Completion]] = {}
        for r in rows:
            found.setdefault(r["step"], {})[r["sample"]] = _completion(r)
        return found

    def add_completion(
        self, run_id: str, problem_id: str, step: str, sample: int, completion: Completion, session: int
    ) -> None:
        self._db.execute(
            "INSERT INTO completions (run_id, problem_id, step, sample, text, prompt_tokens, completion_tokens, "
            "finish_reason, seconds, session, created, prompt_evaluated, logprobs, top_logprobs) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                problem_id,
                step,
                sample,
                completion.text,
                completion.prompt_tokens,
                completion.completion_tokens,
                completion.finish_reason,
                completion.seconds,
                session,
                time.time(),
                completion.prompt_evaluated,
                None if completion.logprobs is None else json.dumps(list(completion.logprobs)),
                None
                if completion.top_logprobs is None
                else json.dumps([[list(a) for a in t] for t in completion.top_logprobs]),
            ),
        )

    def completion_rows(self, run_id: str) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT * FROM completions WHERE run_id = ? ORDER BY problem_id, step, sample", (run_id,)
        ).fetchall()

    # -- solutions -------------------------------------------------------------------------------

    def solved(self, run_id: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT problem_id FROM solutions WHERE run_id = ?", (run_id,))}

    def add_solutions(self, run_id: str, items: Iterable[tuple[int, Problem, Solution]]) -> None:
        now = time.time()
        rows = []
        for position, problem, solution in items:
            row = solution_row(position, problem, solution)
            rows.append(
                (run_id, row["problem_id"], position, row["reference"], row["answer"], _as_int(row["correct"]),
                 row["confidence"], *(json.dumps(row[key]) for key in ("votes", "samples", "extra", "metadata")),
                 now, row["question"])
            )  # fmt: skip
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO solutions (run_id, problem_id, position, reference, answer, correct, "
                "confidence, votes, samples, extra, metadata, created, question) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def solutions(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM solutions WHERE run_id = ? ORDER BY position", (run_id,))
        out = []
        for r in rows:
            item = dict(r)
            for key in ("votes", "samples", "extra", "metadata"):
                item[key] = json.loads(item[key])
            item["correct"] = None if item["correct"] is None else bool(item["correct"])
            out.append(item)
        return out


def solution_row(position: int, problem: Problem | None, solution: Solution) -> dict[str, Any]:
    """A solution as `RunStore.solutions` returns it (what metrics read), whether stored or not."""
    return {
        "problem_id": solution.problem_id,
        "position": position,
        "reference": problem.reference if problem else None,
        "answer": solution.answer,
        "correct": solution.correct,
        "confidence": solution.confidence,
        "votes": dict(solution.votes),
        "samples": [_sample_summary(r) for r in solution.samples],
        "extra": json.loads(json.dumps(solution.extra)),
        "metadata": _jsonable(problem.metadata) if problem else {},
        "question": problem.question if problem else None,
    }


def _loaded(text: str | None) -> list[float] | None:
    return None if text is None else json.loads(text)


def _loaded_top(text: str | None) -> list[list[tuple[str, float]]] | None:
    return None if text is None else [[(token, logprob) for token, logprob in top] for top in json.loads(text)]


def _as_int(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _sample_summary(record: SampleRecord) -> dict[str, Any]:
    """What metrics need from a sample; its text stays in the completions table."""
    summary = asdict(record)
    summary.pop("text")
    return summary


def _jsonable(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if isinstance(v, (str, int, float, bool, type(None)))}


_COMPLETION_COLUMNS = (
    "text, prompt_tokens, completion_tokens, finish_reason, seconds, prompt_evaluated, logprobs, top_logprobs"
)


def _completion(row: sqlite3.Row) -> Completion:
    return Completion(
        text=row["text"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        finish_reason=row["finish_reason"],
        seconds=row["seconds"],
        prompt_evaluated=row["prompt_evaluated"],
        logprobs=_loaded(row["logprobs"]),
        top_logprobs=_loaded_top(row["top_logprobs"]),
    )
