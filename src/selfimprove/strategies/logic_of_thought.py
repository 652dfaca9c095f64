"""Strategy `lot+INNER`: Logic-of-Thought (Liu et al. 2024) in front of any other strategy.

1. Logic extraction (steps `lot-extract-0`, `-1`, ...): a few-shot prompt asks the model for the
   context's propositions and relations in the format of `logic/propositions.py`. The answer is
   parsed strictly; on a parse error the model is asked again, sampling (T = 0.7), at most
   `lot_retries` more times, then the problem goes on without augmentation and the trace says why.
2. Logic extension (code, `logic/extend.py`): contraposition and transitivity, each addition
   proved entailed by sympy, at most `lot_max_added`, nothing already stated.
3. Logic translation (template): each new implication as an English sentence from the
   propositions' own texts, appended to the context as "Additional information".
The augmented problems then go to the inner strategy (`lot+cot`, `lot+self-consistency`, ...).
`Solution.extra["lot"]` holds the whole trace; `selfimprove show RUN --problem ID` prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from selfimprove.core.types import Problem, Prompt, Sampling, Solution
from selfimprove.engines.base import Engine
from selfimprove.logic.extend import extend, verbalise
from selfimprove.logic.propositions import ParseError, parse_theory
from selfimprove.strategies.base import NoAnswers, records_for, registry
from selfimprove.tasks.base import Task

EXTRACTION_STOP = ("\nContext:", "\n\n", "\nQuestion:")

# Written for this module: one worked extraction in the format the parser reads.
EXTRACTION_EXEMPLAR = """Context: If the dog is hungry, it barks. If the dog barks, the cat hides. \
The cat does not hide when it is asleep. The dog is hungry.
Propositions:
A: the dog is hungry
B: the dog barks
C: the cat hides
D: the cat is asleep
Relations:
A -> B
B -> C
D -> not C
A"""

INSTRUCTION = (
    "Extract the propositions of the context, each once as 'SYMBOL: text', then the logical relations "
    "between them, one per line: 'A -> B', 'not A -> B', 'A and B -> C', or a proposition alone when "
    "the context states it as true."
)


def extraction_prompt(context: str) -> str:
    return f"{INSTRUCTION}\n\n{EXTRACTION_EXEMPLAR}\n\nContext: {context}\nPropositions:\n"


def context_of(problem: Problem) -> str:
    return problem.metadata.get("context") or problem.question


def augmented(problem: Problem, sentences: list[str]) -> Problem:
    """The problem with the sentences appended to its context (and its question, which holds the context)."""
    extra = "Additional information: " + " ".join(sentences)
    context = context_of(problem)
    metadata = {**problem.metadata, "context": f"{context}\n{extra}"} if "context" in problem.metadata else None
    if metadata is not None and problem.question.startswith(context):
        question = f"{context}\n{extra}" + problem.question[len(context) :]
    else:
        question = f"{problem.question}\n{extra}"
    return replace(problem, question=question, metadata=metadata or problem.metadata)


@dataclass
class LogicOfThought:
    inner: Any
    lot_retries: int = 2
    lot_max_added: int = 10
    lot_max_tokens: int = 256
    lot_max_antecedents: int = 3

    wraps = True

    @property
    def name(self) -> str:
        return f"lot+{self.inner.name}"

    def describe(self) -> dict:
        return {
            "strategy": self.name,
            "lot_retries": self.lot_retries,
            "lot_max_added": self.lot_max_added,
            "lot_max_tokens": self.lot_max_tokens,
            "lot_max_antecedents": self.lot_max_antecedents,
            "inner": self.inner.describe(),
        }

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        traces = {p.id: {"status": "parse-failed", "attempts": []} for p in problems}
        records: dict[str, list] = {p.id: [] for p in problems}
        theories: dict[str, Any] = {}
        pending = list(problems)
        for attempt in range(1 + max(0, int(self.lot_retries))):
            if not pending:
                break
            step = f"lot-extract-{attempt}"
            sampling = Sampling(
                temperature=0.0 if attempt == 0 else 0.7,
                top_k=0 if attempt == 0 else 40,
                max_tokens=int(self.lot_max_tokens),
                stop=EXTRACTION_STOP,
            )
            prompts = [Prompt(extraction_prompt(context_of(p)), problem_id=p.id, step=step) for p in pending]
            outputs = engine.generate(prompts, 1, sampling)
            still = []
            for problem, (completion,) in zip(pending, outputs):
                records[problem.id].extend(records_for(NoAnswers(), problem, step, [0], [completion], auxiliary=True))
                text = "Propositions:\n" + completion.text.strip("\n")
                try:
                    theories[problem.id] = parse_theory(text)
                    traces[problem.id]["attempts"].append({"text": completion.text, "error": None})
                except ParseError as error:
                    traces[problem.id]["attempts"].append({"text": completion.text, "error": str(error)})
                    still.append(problem)
            pending = still
        augmented_problems = []
        for problem in problems:
            trace = traces[problem.id]
            theory = theories.get(problem.id)
            if theory is None:
                augmented_problems.append(problem)
                continue
            extension = extend(theory, cap=int(self.lot_max_added), max_antecedents=int(self.lot_max_antecedents))
            sentences = [verbalise(rule, theory.propositions) for rule in extension.derived]
            trace.update(
                status="inconsistent" if not extension.consistent else "augmented" if sentences else "nothing-new",
                propositions=theory.propositions,
                relations=[str(r) for r in theory.implications] + [str(f) for f in theory.facts],
                derived=[str(r) for r in extension.derived],
                added=sentences,
            )
            new = augmented(problem, sentences) if sentences else problem
            trace["augmented_context"] = context_of(new)
            augmented_problems.append(new)
        solutions = self.inner.solve(augmented_problems, task, engine)
        for solution in solutions:
            solution.samples = records[solution.problem_id] + solution.samples
            solution.extra = {**solution.extra, "lot": traces[solution.problem_id]}
        return solutions


registry.register("lot")(LogicOfThought)
