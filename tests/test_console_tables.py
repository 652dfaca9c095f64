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
