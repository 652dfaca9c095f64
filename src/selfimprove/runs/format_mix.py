"""Which solution formats an arithmetic run's samples followed, and how often each was right: whether a testbed
trained on several formats (issue 24) samples them, and whether the less usual routes are as reliable as the
usual one. Each completion is matched to a format by `closest_format` (ties go to chain). The store keeps only
a problem's scalar metadata, so the problems' structures are rebuilt from the run's task config (the arithmetic
streams are seeded: problem i is the same whatever the limit).

    python -m selfimprove.runs.format_mix STORE RUN_ID [RUN_ID ...]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass

from selfimprove.core.errors import ConfigError
from selfimprove.runs.store import RunStore
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.arithmetic_solutions import SOLUTION_FORMATS, closest_format


@dataclass
class FormatShare:
    completions: int
    share: float
    """Of the step's completions."""
    accuracy: float


def format_mix(store: RunStore, run_id: str, step: str = "sample") -> dict[str, FormatShare]:
    """Format -> its share of the run's `step` completions and their accuracy (formats never taken left out)."""
    rows = store.solutions(run_id)
    texts = {(c["problem_id"], c["step"], c["sample"]): c["text"] for c in store.completion_rows(run_id)}
    return mix_of(rows, texts, _structures(store, run_id, rows), step)


def mix_of(
    rows: list[dict], texts: dict[tuple[str, str, int], str], structures: dict[str, dict], step: str = "sample"
) -> dict[str, FormatShare]:
    """`format_mix` over solution rows, their completions' texts by (problem id, step, sample) and the problems'
    structures by problem id."""
    right: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        for sample in row["samples"]:
            if sample["step"] == step and sample["correct"] is not None:
                text = texts[(row["problem_id"], step, sample["index"])]
                right[closest_format(structures[row["problem_id"]], text)].append(bool(sample["correct"]))
    total = sum(len(v) for v in right.values())
    return {
        fmt: FormatShare(len(right[fmt]), len(right[fmt]) / total, sum(right[fmt]) / len(right[fmt]))
        for fmt in SOLUTION_FORMATS
        if right.get(fmt)
    }


def _structures(store: RunStore, run_id: str, rows: list[dict]) -> dict[str, dict]:
    task = (store.config(run_id) or {}).get("task", {})
    if task.get("task") != "arithmetic":
        raise ConfigError(f"run {run_id}: format_mix reads arithmetic runs, this one is {task.get('task')!r}")
    rebuilt = ArithmeticTask(level=",".join(map(str, task["levels"])), seed=task["seed"], shots=0)
    split = task.get("split", "test")
    ids = [row["problem_id"] for row in rows]
    limit = max((int(i.rsplit("-", 1)[1]) for i in ids), default=-1) + 1
    return {p.id: p.metadata["structure"] for p in rebuilt.problems(split, limit=limit)}


def main(argv: list[str]) -> None:
    store = RunStore(argv[0])
    try:
        for run_id in argv[1:]:
            for step in ("greedy", "sample"):
                mix = format_mix(store, run_id, step)
                if mix:
                    cells = ", ".join(f"{f} {m.share:.0%} ({m.accuracy:.0%} right)" for f, m in mix.items())
                    print(f"{run_id} {step}: {cells}")
    finally:
        store.close()


if __name__ == "__main__":  # pragma: no cover - a command-line view of format_mix
    main(sys.argv[1:])
