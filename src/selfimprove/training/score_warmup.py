"""Format warm-up before SCoRe: teach a model the two-attempt transcript by repeating its own first attempt.

Why: SCoRe starts from a model that can already write a second attempt (the paper starts from
instruction-tuned models). A model that has never seen the transcript (the testbed: trained on
one-attempt text only, with no word of the instruction in its vocabulary) writes noise after it, so
nearly every attempt 2 is wrong; measured on the testbed, arithmetic level 2: Acc@t1 82%, Acc@t2 1%.
RL from so sparse a signal mostly drifts. The warm-up fine-tunes on (the transcript after the model's
own greedy attempt 1 → that same attempt again), plus (the task prompt → that attempt) so that attempt
1 stays what it was: without those rows the testbed's greedy Acc@t1 fell from 82% to 33% (it learnt to
copy from context and forgot to compute). It reads no label and leaves the model where the paper's
base models start: attempt 2 repeats attempt 1 (Δ ≈ 0), and SCoRe has to teach it to change a wrong
answer.

With `fixes`, where the model's attempt 1 is wrong, attempt 2's row is the task's worked solution instead
(it reads labels: a supervised correction warm-up on the model's own errors, like the paper's Pair-SFT
baseline rather than label-free), so SCoRe starts from a model that has seen a second attempt differ.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Problem, Prompt, Sampling
from selfimprove.strategies.base import extract_answer
from selfimprove.strategies.self_correct import attempt_stops, continue_conversation
from selfimprove.tasks.base import Task
from selfimprove.training.sft import SFTSettings, finetune


def repeat_rows(
    task: Task, engine: Any, problems: int, instruction: str, max_tokens: int, fixes: bool = False
) -> list[dict]:
    """Two prompt/completion rows per problem, both completed by the model's greedy attempt 1: the task prompt
    (attempt 1 kept as it is) and the transcript after that attempt (attempt 2 repeats it; with `fixes`, a
    wrong attempt 1 is followed by the worked solution)."""
    chosen = list(task.problems("train", limit=problems))
    sampling = Sampling(temperature=0.0, max_tokens=max_tokens, stop=attempt_stops(task, instruction))
    contents = [task.format_prompt(p) for p in chosen]
    prompts = [Prompt(c, problem_id=p.id, step="warmup") for c, p in zip(contents, chosen)]
    rows = []
    for problem, content, (completion,) in zip(chosen, contents, engine.generate(prompts, 1, sampling)):
        attempt = completion.text.rstrip()
        if attempt.strip():
            rows.append({"prompt": content, "completion": attempt, "problem_id": problem.id})
            rows.append(
                {
                    "prompt": continue_conversation(content, attempt, instruction),
                    "completion": _fixed(task, problem, attempt) if fixes else attempt,
                    "problem_id": problem.id,
                }
            )
    if not rows:
        raise ConfigError(f"{task.name}: the model wrote no first attempt to repeat; nothing to warm up on")
    return rows


def _fixed(task: Task, problem: Problem, attempt: str) -> str:
    """The attempt when it is right, else the problem's worked solution, led by the attempt's own whitespace."""
    if task.grade(problem, extract_answer(task, problem, attempt)):
        return attempt
    solution = problem.metadata.get("solution")
    if not solution:
        raise ConfigError(f"{task.name}: problem {problem.id} has no worked solution; --warmup-fixes needs one")
    return attempt[: len(attempt) - len(attempt.lstrip())] + solution


def format_warmup(
    task: Task,
    model: str | None,
    out: Path,
    problems: int,
    instruction: str,
    max_tokens: int,
    make_engine: Callable[[str | None], Any],
    load_model: Callable[[str | None], tuple[Any, Any]],
    settings: SFTSettings | None = None,
    fixes: bool = False,
) -> Path:
    """Fine-tunes `model` on `problems` repeat rows (all weights, two epochs by default); the merged folder.
    Resumable like every SFT stage (`done.json`)."""
    out = Path(out)
    if (out / "done.json").is_file():
        return out / "merged"
    engine = make_engine(model)
    try:
        rows = repeat_rows(task, engine, problems, instruction, max_tokens, fixes)
    finally:
        engine.close()
    base, tokenizer = load_model(model)
    settings = settings or SFTSettings(epochs=2.0, learning_rate=3e-4, lora_r=0, batch_size=16, warmup=0.1)
    return finetune(base, tokenizer, rows, out, settings).merged
