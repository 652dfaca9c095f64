"""What a person sees in a terminal: `selfimprove runs` at 80 columns."""

from __future__ import annotations

import time

from rich.console import Console

from selfimprove.reports.console import runs_table


def test_runs_are_readable_at_80_columns():
    rows = [
        dict(run_id="1a2b3c4d5e6f", updated=time.time(), problems=30, accuracy=0.4333, completions=270,
             label="arithmetic · self-consistency · /root/.selfimprove/models/gemma-3-270m-q4_k_m.gguf"),
        dict(run_id="9f8e7d6c5b4a", updated=time.time(), problems=100, accuracy=None, completions=9,
             label="proofwriter · lot+cot · work/testbed/merged · train"),
    ]  # fmt: skip
    console = Console(width=80, record=True)
    console.print(runs_table(rows))
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    first, second = lines[1], next(line for line in lines[2:] if line.startswith("9f8e"))
    for cell in ("1a2b3c4d5e6f", "arithmetic", "30", "43.3%"):
        assert cell in first  # the run id, the task and the numbers are never broken across lines
    assert "testbed/merged" in second and "100" in second and "/root" not in text


def test_a_strategy_that_does_not_beat_its_greedy_baseline_says_so():
    from selfimprove.reports.console import baseline_verdict
    from selfimprove.runs.metrics import RunMetrics

    def metrics(accuracy, greedy):
        return RunMetrics(
            problems=30, accuracy=accuracy, greedy_accuracy=greedy, maj_at_k={}, pass_at_k={},
            completion_tokens_per_problem=0.0, prompt_tokens_per_problem=0.0, prompt_evaluated_per_problem=None,
            seconds_per_problem=0.0, samples=0, voted_samples_per_problem=0.0, extraction_failure_rate=0.0,
        )  # fmt: skip

    below = baseline_verdict("self-consistency", metrics(0.367, 0.433))
    assert below and "is below the greedy answer (43.3%)" in below and "36.7%" in below
    assert "equals" in baseline_verdict("self-consistency", metrics(0.4, 0.4))
    assert baseline_verdict("self-consistency", metrics(0.5, 0.4)) is None
    assert baseline_verdict("cot", metrics(0.5, None)) is None
