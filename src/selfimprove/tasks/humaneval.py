"""Task `humaneval`: HumanEval (Chen et al. 2021) in the official JSONL format.

Each line holds `task_id`, `prompt` (imports, signature and docstring), `canonical_solution`,
`test` (defines `check(candidate)`) and `entry_point`. The model continues the prompt with the
function body; the Codex stop sequences end it at the next top-level statement. A chat model's
fenced answer that redefines the whole function is accepted too. The program run in the sandbox
is `prompt + completion`; the judge runs the prompt (for its helpers, such as `encode_cyclic`), then
`test + check(entry_point)` with the entry point standing for the program's function, so the
verdict is the official harness's without the program's process deciding it.
"""

from __future__ import annotations

import re
from pathlib import Path

from selfimprove.core.types import Problem
from selfimprove.grading.code import extract_program
from selfimprove.grading.sandbox import JudgedProgram
from selfimprove.tasks.base import FileBackedTask, registry
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
class HumanEvalTask(ProgramGrading, FileBackedTask):
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
        FileBackedTask.__init__(
            self, data, "a HumanEval JSONL file (task_id, prompt, canonical_solution, test, entry_point)"
        )
        self.limits = sandbox_limits(timeout, cpu_seconds, memory_mb)
        self.workers = int(workers) if workers is not None else None

    def describe(self) -> dict:
        return {"task": self.name, "data": identify_source(self.data), "sandbox": self.sandbox_description()}

    def load(self, source: str, split: str) -> list[Problem]:
        return load_humaneval(source, split)

    def format_prompt(self, problem: Problem) -> str:
        return problem.question

    def extract(self, text: str) -> str | None:
        return extract_program(text, stops=self.stop)

    def judged_program(self, problem: Problem, code: str) -> JudgedProgram:
        entry = problem.metadata["entry_point"]
        definition = re.compile(rf"^def\s+{re.escape(entry)}\s*\(", re.MULTILINE)
        prompt = problem.question
        found = definition.search(prompt)
        # What precedes the entry point's unfinished definition: imports and helpers (`encode_cyclic`, `poly`).
        before_entry = prompt[: found.start()] if found else prompt
        if definition.search(code):
            prompt = before_entry + "\n"  # a whole redefinition replaces the prompt's unfinished one
        program = f"{prompt}{code}\n"
        tests = f"{problem.metadata['test']}\n\ncheck({entry})\n"
        return JudgedProgram(
            program=program,
            tests=tests,
            context=before_entry,
            entry_points=(entry,),
            script=f"{program}\n{tests}",
        )
