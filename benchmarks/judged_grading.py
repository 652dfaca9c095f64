"""What judging from outside the program costs: one script in the sandbox vs the judge process, side by side.

The same programs, the same sandbox and workers, in one run: the MBPP references of the chosen
split (each problem's code plus its asserts) and HumanEval-format problems built from MBPP train
rows (prompt = the reference's signature and the task text as a docstring; test =
`check(candidate)` over the asserts; completion = the reference, a whole redefinition). Prints
seconds per program for the in-process script (`Sandbox.run`) and for the judge (`Sandbox.judge`),
their ratio, and how many verdicts differ (target, issue 16: judged <= 1.5x the script, none differ).

    python benchmarks/judged_grading.py                        # 90 MBPP validation + 164 HumanEval-format
    python benchmarks/judged_grading.py --workers 1 --humaneval 40
"""

from __future__ import annotations

import argparse
import ast
import re
import time
import warnings
from pathlib import Path

from selfimprove.core.types import Problem
from selfimprove.grading.sandbox import JudgedProgram, Sandbox
from selfimprove.tasks.humaneval import HumanEvalTask
from selfimprove.tasks.mbpp import MBPPTask

MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp"


def humaneval_from_mbpp(problem: Problem) -> Problem | None:
    """An MBPP row in HumanEval's shape, or None where the reference has no function the asserts call."""
    entry = problem.metadata["entry_point"]
    if not entry or not problem.reference or problem.metadata["setup"]:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(problem.reference)
    function = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry), None)
    if function is None or any(isinstance(n, ast.ClassDef) for n in tree.body):
        return None
    signature = f'def {entry}({ast.unparse(function.args)}):\n    """{problem.question}"""\n'
    asserts = [re.sub(rf"\b{re.escape(entry)}\s*\(", "candidate(", test) for test in problem.metadata["tests"]]
    test = "def check(candidate):\n" + "".join(f"    {line}\n" for line in asserts)
    return Problem(id=f"MBPP/{problem.id}", question=signature, reference=problem.reference,
                   metadata={"test": test, "entry_point": entry, "line": 0})  # fmt: skip


def time_both(sandbox: Sandbox, programs: list[JudgedProgram]) -> tuple[float, float, int]:
    """Seconds per program for the script and for the judge, and how many verdicts differ."""
    started = time.perf_counter()
    scripts = sandbox.run_many([p.script for p in programs])
    script_seconds = (time.perf_counter() - started) / len(programs)
    started = time.perf_counter()
    judged = sandbox.run_many(programs)
    judged_seconds = (time.perf_counter() - started) / len(programs)
    differ = [i for i, (a, b) in enumerate(zip(scripts, judged)) if a.passed != b.passed]
    for i in differ:
        print(f"  verdicts differ on program {i}: script {scripts[i].status}, judged {judged[i].status} "
              f"{judged[i].message[:100]}")  # fmt: skip
    return script_seconds, judged_seconds, len(differ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbpp", default=str(MBPP / "mbpp_validation.jsonl"))
    parser.add_argument("--humaneval", type=int, default=164, help="HumanEval-format problems built from MBPP train")
    parser.add_argument("--workers", type=int, default=None, help="sandbox workers (default: one per core)")
    args = parser.parse_args()

    mbpp = MBPPTask(data=args.mbpp)
    mbpp_programs = [mbpp.judged_program(p, p.reference) for p in mbpp.problems()]
    train = MBPPTask(data=str(MBPP / "mbpp_train.jsonl"))
    converted = [c for p in train.problems() if (c := humaneval_from_mbpp(p)) is not None][: args.humaneval]
    humaneval = HumanEvalTask(data=args.mbpp)  # only its program assembly is used here
    humaneval_programs = [humaneval.judged_program(p, p.reference) for p in converted]

    sandbox = Sandbox(mbpp.limits, args.workers)
    print(f"sandbox: {sandbox.isolation.method}, {sandbox.workers} workers")
    print(f"{'programs':<34} {'n':>4} {'script s/prog':>14} {'judged s/prog':>14} {'ratio':>6} {'differ':>7}")
    for name, programs in (("MBPP references", mbpp_programs), ("HumanEval-format (from MBPP)", humaneval_programs)):
        judged_here = [p for p in programs if p.in_process is None]
        script, judged, differ = time_both(sandbox, judged_here)
        print(f"{name:<34} {len(judged_here):>4} {script:>14.3f} {judged:>14.3f} {judged / script:>6.2f} {differ:>7}")


if __name__ == "__main__":
    main()
