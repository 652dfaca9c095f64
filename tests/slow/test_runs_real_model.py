"""Whole runs on the real embedded model: self-consistency end to end, and SIGKILL then resume."""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "selfimprove.cli"]


def run_cli(*args, timeout=600):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def stored_rows(store: Path):
    with sqlite3.connect(store) as db:
        return db.execute("SELECT problem_id, step, sample, text, created, session FROM completions").fetchall()


def test_self_consistency_run_and_show(tmp_path):
    store = tmp_path / "runs.sqlite"
    result = run_cli(
        "run",
        "--task",
        "arithmetic",
        "--strategy",
        "self-consistency",
        "--samples",
        "4",
        "--limit",
        "3",
        "--max-tokens",
        "64",
        "--store",
        str(store),
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert "greedy CoT accuracy" in result.stdout and "maj@4" in result.stdout
    assert "llama_" not in result.stderr  # llama.cpp's own log stays off the terminal
    assert len(stored_rows(store)) == 3 * (1 + 4)
    run_id = re.search(r"run ([0-9a-f]{12})", result.stdout).group(1)
    shown = run_cli("show", run_id[:6], "--store", str(store))
    assert shown.returncode == 0 and "extraction failures" in shown.stdout
    listed = run_cli("runs", "--store", str(store))
    assert run_id in listed.stdout


def test_sigkill_part_way_then_resume(tmp_path):
    store = tmp_path / "runs.sqlite"
    args = [
        "run",
        "--task",
        "arithmetic",
        "--level",
        "1-3",
        "--strategy",
        "self-consistency",
        "--samples",
        "8",
        "--limit",
        "6",
        "--max-tokens",
        "96",
        "--batch-size",
        "2",
        "--store",
        str(store),
        "--no-progress",
    ]
    total = 6 * (1 + 8)
    process = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            time.sleep(0.05)
            if store.exists():
                try:
                    count = len(stored_rows(store))
                except sqlite3.OperationalError:
                    continue
                if count >= 20:
                    break
            assert process.poll() is None, process.stderr.read().decode()
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    before = stored_rows(store)
    assert 20 <= len(before) < total

    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    after = stored_rows(store)
    keys = [(p, s, i) for p, s, i, *_ in after]
    assert len(after) == total and len(set(keys)) == total  # nothing lost, nothing duplicated
    assert set(before) <= set(after)  # what was stored before the kill is untouched
    generated = int(re.search(r"generated (\d+)", result.stdout).group(1))
    assert generated == total - len(before)  # nothing recomputed
    assert {row[5] for row in after if row not in before} == {2}
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM solutions").fetchone()[0] == 6
