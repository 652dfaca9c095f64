"""The issue-4 strategies end to end on the real embedded model: values in the store, not labels in stdout.
One run goes through the CLI (its printed numbers must be the store's); the rest through `si.run`."""

import re
import subprocess
import sys

import pytest

import selfimprove as si

pytestmark = pytest.mark.slow

TASK = si.ArithmeticTask(level="1")


def test_self_correct_through_the_cli_prints_the_stores_numbers(tmp_path):
    store = tmp_path / "s.sqlite"
    args = ["run", "--task", "arithmetic", "--limit", "2", "--max-tokens", "48", "--store", str(store),
            "--no-progress", "--strategy", "self-correct", "--turns", "2"]  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "selfimprove.cli", *args], capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_id = re.search(r"run ([0-9a-f]{12})", result.stdout).group(1)
    rows = si.RunStore(store).solutions(run_id)
    assert len(rows) == 2 and all(len(r["extra"]["turns"]) == 2 for r in rows)
    for r in rows:
        first, second = r["extra"]["turns"]
        assert first["text"] and second["text"]  # two real attempts
        assert r["answer"] == second["answer"]  # the final answer is the last turn's
    turns = si.metrics.turn_metrics(rows)
    for i, value in enumerate(turns.accuracy, start=1):
        assert f"Acc@t{i}" in result.stdout and f"{100 * value:.1f}%" in result.stdout
    assert 0.0 <= turns.edit_distance[0] <= 1.0


def test_adaptive_consistency_stops_within_its_bounds(llama_engine, tmp_path):
    strategy = si.AdaptiveConsistency(samples=8, batch=2, stop_rule="window", max_tokens=48)
    result = si.run(TASK, strategy, llama_engine, store=tmp_path / "s.sqlite", limit=2)
    for r in result.solutions:
        voted = [x for x in r["samples"] if x["step"] == "sample"]
        assert 2 <= len(voted) <= 8 and len(voted) % 2 == 0  # whole rounds of `batch`, never past `samples`
        assert sum(r["votes"].values()) == sum(x["answer"] is not None for x in voted)
        if r["answer"] is not None:
            assert r["votes"][r["answer"]] == max(r["votes"].values())
    assert result.metrics.voted_samples_per_problem == pytest.approx(
        sum(len([x for x in r["samples"] if x["step"] == "sample"]) for r in result.solutions) / 2
    )


def test_least_to_most_decomposes_then_answers(llama_engine, tmp_path):
    result = si.run(TASK, si.LeastToMost(max_tokens=48), llama_engine, store=tmp_path / "s.sqlite", limit=2)
    for r in result.solutions:
        steps = [x["step"] for x in r["samples"]]
        assert steps[0] == "decompose" and r["samples"][0]["auxiliary"] is True
        assert len(steps) >= 2 and all(not x["auxiliary"] for x in r["samples"][1:])
        assert r["answer"] == r["samples"][-1]["answer"]  # the last subquestion's answer is the answer
    assert result.metrics.accuracy is not None and 0.0 <= result.metrics.accuracy <= 1.0
