"""The issue-3 tasks end to end on the real embedded model, through the CLI: each run completes and stores
its grades (the base model's scores are low; a crash, a hang or a lost grade is the failure)."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def run(tmp_path, task, data, *args):
    store = tmp_path / "s.sqlite"
    result = subprocess.run(
        [sys.executable, "-m", "selfimprove.cli", "run", "--task", task, "--data", str(SHARED / data),
         "--store", str(store), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(store) as db:
        graded = db.execute("SELECT COUNT(*) FROM solutions WHERE correct IS NOT NULL").fetchone()[0]
    return " ".join(result.stdout.replace("│", " ").split()), graded


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_mbpp_cot_runs_in_the_sandbox(tmp_path):
    out, graded = run(tmp_path, "mbpp", "mbpp/mbpp_validation.jsonl", "--strategy", "cot", "--limit", "3")
    assert graded == 3
    assert "graded samples" in out and "cot accuracy" in out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_mbpp_self_consistency_reports_pass_at_k(tmp_path):
    out, graded = run(
        tmp_path, "mbpp", "mbpp/mbpp_validation.jsonl", "--samples", "2", "--limit", "2", "--max-tokens", "96"
    )
    assert graded == 2 and "pass@2" in out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_proofwriter_and_math(tmp_path):
    out, graded = run(tmp_path, "proofwriter", "proofwriter/dev.jsonl", "--strategy", "cot", "--limit", "2",
                      "--max-tokens", "64")  # fmt: skip
    assert graded == 2
    out, graded = run(tmp_path, "math", "math500/math500_dev100.jsonl", "--strategy", "cot", "--limit", "2",
                      "--max-tokens", "64")  # fmt: skip
    assert graded == 4 and "cot accuracy" in out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_logic_of_thought_on_proofwriter(tmp_path):
    out, graded = run(tmp_path, "proofwriter", "proofwriter/dev.jsonl", "--strategy", "lot+cot", "--limit", "2",
                      "--max-tokens", "48", "-S", "lot_retries=1")  # fmt: skip
    assert graded == 2 and "lot+cot accuracy" in out
    store = str(tmp_path / "s.sqlite")
    run_id = sqlite3.connect(store).execute("SELECT run_id FROM runs").fetchone()[0]
    problem = sqlite3.connect(store).execute("SELECT problem_id FROM solutions").fetchone()[0]
    shown = subprocess.run(
        [sys.executable, "-m", "selfimprove.cli", "show", run_id, "--problem", problem, "--store", store],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0 and "Logic-of-Thought:" in shown.stdout


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_tree_of_thoughts_on_prontoqa(tmp_path):
    out, graded = run(tmp_path, "prontoqa", "prontoqa/prontoqa_dev100.jsonl", "--strategy", "tot", "--limit", "1",
                      "-S", "breadth=2", "-S", "depth=3", "-S", "beam=1")  # fmt: skip
    assert graded == 1 and "tree-of-thoughts accuracy" in out
    store = str(tmp_path / "s.sqlite")
    run_id, problem = sqlite3.connect(store).execute("SELECT run_id, problem_id FROM solutions").fetchone()
    shown = subprocess.run(
        [sys.executable, "-m", "selfimprove.cli", "show", run_id, "--problem", problem, "--store", store],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0 and "Tree of thoughts:" in shown.stdout and "v=" in shown.stdout
