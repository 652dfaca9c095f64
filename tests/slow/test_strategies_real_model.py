"""The issue-4 strategies end to end on the real embedded model, through the CLI."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def run(tmp_path, *args):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "selfimprove.cli",
            "run",
            "--task",
            "arithmetic",
            "--limit",
            "2",
            "--max-tokens",
            "48",
            "--store",
            str(tmp_path / "s.sqlite"),
            "--no-progress",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_self_correct(tmp_path):
    out = run(tmp_path, "--strategy", "self-correct", "--turns", "2")
    for label in ("Acc@t1", "Acc@t2", "Δ(t1→t2)", "Δi→c", "Δc→i", "edit distance"):
        assert label in out


def test_adaptive_consistency(tmp_path):
    out = run(tmp_path, "--strategy", "adaptive-consistency", "--samples", "8", "-S", "stop_rule=window")
    assert "voted samples / problem" in out or "maj@8" in out


def test_least_to_most(tmp_path):
    out = run(tmp_path, "--strategy", "least-to-most")
    assert "least-to-most accuracy" in out
