"""Grading for tasks whose answers are programs: run the program with the problem's tests in the sandbox.

An answer is the extracted code; it is correct when the assembled program (the task's
`program(problem, code)`) runs to its end in the sandbox. Outcomes are cached per
(problem, code), so the vote's winner is not run again, and `grade_many` runs a batch on the
sandbox's worker pool before the strategy grades the samples one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfimprove.core.types import Problem
from selfimprove.grading.sandbox import Limits, Sandbox, SandboxResult


def sandbox_limits(timeout: float, cpu_seconds: int | None, memory_mb: int) -> Limits:
    cpu = int(cpu_seconds) if cpu_seconds is not None else max(1, int(float(timeout)))
    return Limits(cpu_seconds=cpu, wall_seconds=float(timeout), memory_bytes=int(memory_mb) << 20)


class ProgramGrading:
    """Mixin: the task supplies `program(problem, code) -> str` and sets `limits` and `workers`."""

    limits: Limits
    workers: int | None

    def program(self, problem: Problem, code: str) -> str:
        raise NotImplementedError

    def sandbox(self) -> Sandbox:
        if getattr(self, "_the_sandbox", None) is None:
            self._the_sandbox = Sandbox(self.limits, self.workers)
            self._outcomes: dict[tuple[str, str], SandboxResult] = {}
        return self._the_sandbox

    def grade_many(self, pairs: Sequence[tuple[Problem, str | None]]) -> None:
        """Runs every not yet graded (problem, code) pair, in parallel; `grade` then reads the cache."""
        sandbox = self.sandbox()
        todo = {(p.id, code): self.program(p, code) for p, code in pairs if code is not None}
        todo = {key: source for key, source in todo.items() if key not in self._outcomes}
        keys = list(todo)
        for key, result in zip(keys, sandbox.run_many([todo[k] for k in keys])):
            self._outcomes[key] = result

    def outcome(self, problem: Problem, code: str | None) -> SandboxResult | None:
        """The sandbox result of this code on this problem (run now if it was not yet); None without code."""
        if code is None:
            return None
        sandbox = self.sandbox()
        key = (problem.id, code)
        if key not in self._outcomes:
            self._outcomes[key] = sandbox.run(self.program(problem, code))
        return self._outcomes[key]

    def grade(self, problem: Problem, answer: str | None) -> bool | None:
        result = self.outcome(problem, answer)
        return False if result is None else result.passed

    def grade_detail(self, problem: Problem, answer: str | None) -> str:
        """`status: message` of the sandbox run, or why there was none."""
        result = self.outcome(problem, answer)
        if result is None:
            return "no-code: nothing to run was found in the completion"
        return f"{result.status}: {result.message}" if result.message else result.status

    def sandbox_description(self) -> dict:
        return {
            "cpu_seconds": self.limits.cpu_seconds,
            "wall_seconds": self.limits.wall_seconds,
            "memory_bytes": self.limits.memory_bytes,
        }
