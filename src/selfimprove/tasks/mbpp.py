"""Task `mbpp`: Mostly Basic Python Problems (Austin et al. 2021) in the official JSONL format.

Each line holds `task_id`, `text` (the task), `code` (a reference solution), `test_list` (assert
statements), `test_setup_code` and `challenge_test_list`. The prompt is the paper's: three solved
exemplars from the prompt split (task ids 2, 3 and 4), then the task with its tests, then
`[BEGIN]`; the model writes code and `[DONE]`. The code runs alone in the sandbox; the judge runs
the setup and the asserts and calls the code's functions across the pipe. The two rows whose tests
build the solution's own class instances (601 `Pair`, 927 `Node`) run code, setup and asserts as
one script in the sandbox instead, and say so.
"""

from __future__ import annotations

import re
from pathlib import Path

from selfimprove.core.errors import DataError
from selfimprove.core.types import Problem
from selfimprove.grading.code import extract_program
from selfimprove.grading.sandbox import JudgedProgram
from selfimprove.tasks.base import FileBackedTask, registry
from selfimprove.tasks.jsonl import file_beside, identify_source, is_hub_name, read_records, require_str
from selfimprove.tasks.programs import ProgramGrading, needs_program_objects, sandbox_limits

EXEMPLAR_IDS = (2, 3, 4)
_DEF = re.compile(r"^def\s+(\w+)\s*\(", re.MULTILINE)


def _string_list(record: dict, field: str, path: str | Path, line: int, required: bool) -> list[str]:
    value = record.get(field, [])
    if required and not value:
        raise DataError(path, "missing or empty (a list of assert statements)", line=line, field=field)
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise DataError(path, f"expected a list of strings, got {value!r:.60}", line=line, field=field)
    return value


def load_mbpp(path: str | Path, split: str = "test") -> list[Problem]:
    """Every problem of an MBPP JSONL file; ids are the official task ids."""
    problems = []
    for line, record in read_records(path, split):
        task_id = record.get("task_id")
        if not isinstance(task_id, (int, str)) or isinstance(task_id, bool):
            raise DataError(path, f"expected an integer id, got {task_id!r:.40}", line=line, field="task_id")
        text = require_str(record, "text", path, line)
        tests = _string_list(record, "test_list", path, line, required=True)
        code = record.get("code")
        setup = record.get("test_setup_code") or ""
        if not isinstance(setup, str):
            raise DataError(path, "expected a string", line=line, field="test_setup_code")
        names = _DEF.findall(code.replace("\r\n", "\n")) if isinstance(code, str) else []
        entry = next((n for n in names if any(re.search(rf"\b{n}\s*\(", t) for t in tests)), None)
        problems.append(
            Problem(
                id=str(task_id),
                question=text.strip(),
                reference=code.replace("\r\n", "\n") if isinstance(code, str) else None,
                metadata={
                    "tests": tests,
                    "challenge_tests": _string_list(record, "challenge_test_list", path, line, required=False),
                    "setup": setup.replace("\r\n", "\n"),
                    "entry_point": entry,
                    "line": line,
                },
            )
        )
    return problems


def mbpp_block(problem: Problem) -> str:
    tests = "\n".join(problem.metadata["tests"])
    return (
        f"You are an expert Python programmer, and here is your task: {problem.question} "
        f"Your code should pass these tests:\n\n{tests}\n[BEGIN]\n"
    )


@registry.register("mbpp")
class MBPPTask(ProgramGrading, FileBackedTask):
    """`data`: the evaluated JSONL; `fewshot`: the prompt split (default `mbpp_prompt.jsonl` beside it);
    `train`: the train split; `challenge`: also run `challenge_test_list`; sandbox `timeout`, `memory_mb`."""

    name = "mbpp"
    stop = ("[DONE]", "\nYou are an expert Python programmer")

    def __init__(
        self,
        data: str | None = None,
        fewshot: str | None = None,
        train: str | None = None,
        shots: int = 3,
        challenge: bool = False,
        timeout: float = 10.0,
        cpu_seconds: int | None = None,
        memory_mb: int = 1024,
        workers: int | None = None,
    ):
        FileBackedTask.__init__(self, data, "an MBPP JSONL file (task_id, text, code, test_list)")
        hub = is_hub_name(data)  # the hub dataset has all the splits
        self.fewshot = fewshot or (data if hub else file_beside(data, "mbpp_prompt.jsonl"))
        self.train = train or (data if hub else file_beside(data, "mbpp_train.jsonl"))
        self.shots = int(shots)
        self.challenge = str(challenge).lower() in ("1", "true", "yes")
        self.limits = sandbox_limits(timeout, cpu_seconds, memory_mb)
        self.workers = int(workers) if workers is not None else None

    def describe(self) -> dict:
        return {
            "task": self.name,
            "data": identify_source(self.data),
            "fewshot": identify_source(self.fewshot),
            "shots": self.shots,
            "challenge": self.challenge,
            "sandbox": self.sandbox_description(),
        }

    def load(self, source: str, split: str) -> list[Problem]:
        return load_mbpp(source, split)

    def split_files(self) -> dict[str, str | None]:
        return {"test": self.data, "train": self.train, "prompt": self.fewshot}

    def missing_split(self, split: str) -> str:
        return f"task 'mbpp' has no {split!r} split file (pass -O {split if split != 'prompt' else 'fewshot'}=PATH)"

    def exemplars(self) -> list[Problem]:
        if self.fewshot is None or self.shots == 0:
            return []
        pool = {p.id: p for p in self.loaded("prompt")}
        chosen = [pool[str(i)] for i in EXEMPLAR_IDS if str(i) in pool] or list(pool.values())
        return chosen[: self.shots]

    def format_prompt(self, problem: Problem) -> str:
        shots = [ex for ex in self.exemplars() if ex.id != problem.id and ex.reference]
        blocks = [f"{mbpp_block(ex)}{ex.reference}\n[DONE]\n" for ex in shots]
        return "".join(blocks) + mbpp_block(problem)

    def extract(self, text: str) -> str | None:
        return extract_program(text, stops=(*self.stop, "[BEGIN]"))

    def judged_program(self, problem: Problem, code: str) -> JudgedProgram:
        tests = "\n".join(problem.metadata["tests"] + (problem.metadata["challenge_tests"] if self.challenge else []))
        setup = problem.metadata["setup"]
        entry = problem.metadata["entry_point"]
        return JudgedProgram(
            program=code,
            tests=tests + "\n",
            context=setup,
            entry_points=(entry,) if entry else (),
            # In-process, the setup builds the tests' inputs and may use the solution's classes (927): it comes after.
            script=f"{code}\n\n{setup}\n{tests}\n",
            in_process=needs_program_objects(tests, setup, problem.reference),
        )
