"""Grading for tasks whose answers are programs: the sandboxed program, judged by the problem's tests.

An answer is the extracted code; the task's `judged_program(problem, code)` says what runs in the
sandbox (the code), what the judge runs (the tests, from the data set) and, for tests that need
the program's own objects, the one script to run in-process instead. The code is correct when
the judge's tests pass. Outcomes are cached per (problem, code), so the vote's winner is not run
again, and `grade_many` runs a batch on the sandbox's worker pool before the strategy grades the
samples one by one.
"""

from __future__ import annotations

import ast
import builtins
import functools
import warnings
from collections.abc import Sequence

from selfimprove.core.types import Problem
from selfimprove.grading.sandbox import JudgedProgram, Limits, Sandbox, SandboxResult, names_needed

_BUILTIN_NAMES = frozenset(dir(builtins))


def sandbox_limits(timeout: float, cpu_seconds: int | None, memory_mb: int) -> Limits:
    cpu = int(cpu_seconds) if cpu_seconds is not None else max(1, int(float(timeout)))
    return Limits(cpu_seconds=cpu, wall_seconds=float(timeout), memory_bytes=int(memory_mb) << 20)


@functools.lru_cache(maxsize=4096)  # asked once per candidate; the answer is the problem's
def needs_program_objects(tests: str, setup: str, reference: str | None) -> str | None:
    """Why these tests cannot be judged across the pipe, or None when they can: the setup reads names it never
    defines (it builds inputs from the program's objects), or the tests use a class the reference solution
    defines. Decided from trusted text only (data set rows), never from a candidate's code."""
    try:
        from_setup = names_needed(setup) - _BUILTIN_NAMES
        from_tests = names_needed(tests) - _BUILTIN_NAMES
    except SyntaxError:
        return None  # the judge reports the tests' own syntax error
    if from_setup:
        return "the setup code uses the program's " + ", ".join(sorted(from_setup))
    classes = set()
    if reference:
        try:
            with warnings.catch_warnings():  # old references hold invalid escapes such as "\d"
                warnings.simplefilter("ignore")
                tree = ast.parse(reference)
            classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
        except SyntaxError:
            pass
    if from_tests & classes:
        return "the tests use the program's class " + ", ".join(sorted(from_tests & classes))
    return None


class ProgramGrading:
    """Mixin: the task supplies `judged_program(problem, code) -> JudgedProgram` and sets `limits` and `workers`."""

    limits: Limits
    workers: int | None

    def judged_program(self, problem: Problem, code: str) -> JudgedProgram:
        raise NotImplementedError

    def sandbox(self) -> Sandbox:
        if getattr(self, "_the_sandbox", None) is None:
            self._the_sandbox = Sandbox(self.limits, self.workers)
            self._outcomes: dict[tuple[str, str], SandboxResult] = {}
        return self._the_sandbox

    def grade_many(self, pairs: Sequence[tuple[Problem, str | None]]) -> None:
        """Runs every not yet graded (problem, code) pair, in parallel; `grade` then reads the cache."""
        sandbox = self.sandbox()
        todo = {(p.id, code): self.judged_program(p, code) for p, code in pairs if code is not None}
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
            self._outcomes[key] = sandbox.judge(self.judged_program(problem, code))
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
