"""Task `humaneval`: HumanEval (Chen et al. 2021) in the official JSONL format.

Each line holds `task_id`, `prompt` (imports, signature and docstring), `canonical_solution`,
`test` (defines `check(candidate)`) and `entry_point`. The model continues the prompt with the
function body; the Codex stop sequences end it at the next top-level statement. A chat model's
fenced answer that redefines the whole function is accepted too. The program run in the sandbox
is `prompt + completion + test + check(entry_point)`, as the official harness assembles it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Problem
from selfimprove.grading.code import extract_program
from selfimprove.tasks.base import registry
from selfimprove.tasks.jsonl import identify_source, read_records, require_str
from selfimprove.tasks.programs import ProgramGrading, sandbox_limits

CODEX_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


def load_humaneval(path: str | Path, split: str = "test") -> list[Problem]:
    problems = []
    for line, record in read_records(path, split):
        task_id = require_str(record, "task_id", path, line)
        prompt = require_str(record, "prompt", path, line)
        problems.append(
            Problem(
                id=task_id,
                question=prompt,
                reference=solution if isinstance(solution := record.get("canonical_solution"), str) else None,
                metadata={
                    "test": require_str(record, "test", path, line),
                    "entry_point": require_str(record, "entry_point", path, line).strip(),
                    "line": line,
                },
            )
        )
    return problems


@registry.register("humaneval")
class HumanEvalTask(ProgramGrading):
    """`data`: a HumanEval-format JSONL file; sandbox `timeout` (seconds) and `memory_mb`."""

    name = "humaneval"
    stop = CODEX_STOPS

    def __init__(
        self,
        data: str | None = None,
        timeout: float = 10.0,
        cpu_seconds: int | None = None,
        memory_mb: int = 1024,
        workers: int | None = None,
    ):
        if data is None:
            raise ConfigError(
                "task 'humaneval' needs --data PATH to a HumanEval JSONL file "
                "(task_id, prompt, canonical_solution, test, entry_point)"
            )
        self.data = data
        self.limits = sandbox_limits(timeout, cpu_seconds, memory_mb)
        self.workers = int(workers) if workers is not None else None
        self._problems: list[Problem] | None = None

    def describe(self) -> dict:
        return {"task": self.name, "data": identify_source(self.data), "sandbox": self.sandbox_description()}

    def problems(self, split: str = "test", limit: int | None = None) -> Iterator[Problem]:
        if split != "test":
            raise ConfigError("task 'humaneval' has only a test split")
        if self._problems is None:
            self._problems = load_humaneval(self.data)
        yield from self._problems[:limit]

    def format_prompt(self, problem: Problem) -> str:
        return problem.question

    def extract(self, text: str) -> str | None:
        return extract_program(text, stops=self.stop)

    def program(self, problem: Problem, code: str) -> str:
        entry = problem.metadata["entry_point"]
        definition = re.compile(rf"^def\s+{re.escape(entry)}\s*\(", re.MULTILINE)
        prompt = problem.question
        if definition.search(code):
            # A whole redefinition replaces the prompt's unfinished one; what precedes it (imports, helpers) stays.
            found = definition.search(prompt)
            prompt = (prompt[: found.start()] if found else prompt) + "\n"
        return f"{prompt}{code}\n\n{problem.metadata['test']}\n\ncheck({entry})\n"
