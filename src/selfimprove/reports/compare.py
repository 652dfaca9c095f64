"""`selfimprove compare A B`: paired comparison of two runs on the problems both have graded."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from selfimprove.core.errors import SelfImproveError
from selfimprove.core.stats import PairedComparison, paired_comparison
from selfimprove.runs.store import RunStore


def compare_runs(store: RunStore, run_a: str, run_b: str) -> tuple[str, str, PairedComparison]:
    """Full run ids and the comparison of B against A on their shared graded problems."""
    a_id, b_id = store.find_run(run_a), store.find_run(run_b)
    a = {r["problem_id"]: r["correct"] for r in store.solutions(a_id) if r["correct"] is not None}
    b = {r["problem_id"]: r["correct"] for r in store.solutions(b_id) if r["correct"] is not None}
    shared = [p for p in a if p in b]
    if not shared:
        raise SelfImproveError(f"runs {a_id} and {b_id} share no graded problem: nothing to compare")
    return a_id, b_id, paired_comparison([a[p] for p in shared], [b[p] for p in shared])


def as_json(a_id: str, b_id: str, c: PairedComparison) -> dict[str, Any]:
    return {"run_a": a_id, "run_b": b_id, **asdict(c)}
