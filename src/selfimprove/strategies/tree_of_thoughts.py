"""Strategy `tree-of-thoughts` (alias `tot`): beam search over partial reasoning (Yao et al. 2023).

A state is the task's own prompt followed by the reasoning written so far; a step is one sentence
(or line) of it. At each depth:

1. Propose (step `tot-expand-<node>`): every state in the beam is continued `breadth` times by
   sampling; each continuation is cut after its first sentence. A child is *final* when its step
   states the answer ("... answer is ...") or when the model ended the answer within it.
2. Value (step `tot-value-<node>`): a few-shot prompt asks whether the partial answer is on the
   right track; the reply's first "sure" / "likely" / "impossible" scores 20 / 1 / 0.001 (the
   value map of Yao et al.'s code for Game of 24), summed over `value_samples` ratings; an
   unreadable rating scores 0.
3. Keep: final children become leaves; the `beam` best of the others form the next depth.

States still open at depth `depth` are finished greedily (step `tot-finish-<node>`) and rated like
any leaf. The answer comes from the best leaf: highest value, then the answer most leaves share,
then the earliest; a leaf with an answer beats one without. The whole tree, with every rating,
is kept in `Solution.extra["tree"]`; `selfimprove show RUN --problem ID` prints it.

The proposals use the task's few-shot chain-of-thought prompt, so the search works on every task
whose worked answers are written as sentences (arithmetic, GSM8K, PrOntoQA, ...). Where the
exemplars answer directly (ProofWriter's), the tree is one level deep: candidate answers ranked
by their rating.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Completion, Problem, Prompt, SampleRecord, Sampling, Solution
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import NoAnswers, extract_answer, prefetch_grades, records_for, registry
from selfimprove.tasks.base import Task

RATINGS = {"sure": 20.0, "likely": 1.0, "impossible": 0.001}
_RATING = re.compile(r"\b(sure|likely|impossible)\b", re.IGNORECASE)
_ANSWER_STATED = re.compile(r"\banswer\s*(?:is|:|=)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\n")

# Written for this module: each line judges a partial answer, the way the value prompt asks.
VALUE_EXEMPLARS = (
    (
        "Sam has 3 bags of 5 marbles. He loses 4 marbles. How many marbles does Sam have now?",
        "Sam has 3 x 5 = 15 marbles.",
        "sure",
    ),
    (
        "Sam has 3 bags of 5 marbles. He loses 4 marbles. How many marbles does Sam have now?",
        "Sam has 3 x 5 = 15 marbles. 15 + 4 = 19.",
        "impossible",
    ),
    (
        "Ann has 12 eggs. She uses half of them for a cake and buys 6 more. How many eggs does Ann have?",
        "Ann starts with 12 eggs.",
        "likely",
    ),
    (
        "Every cat is a mammal. Tom is a cat. Is the statement 'Tom is a mammal' true or false?",
        "Tom is a cat. Every cat is a mammal, so Tom is a mammal. The answer is true.",
        "sure",
    ),
)
VALUE_INSTRUCTION = (
    "Judge each partial answer: sure (correct so far and leads to the answer), likely (nothing wrong yet), "
    "or impossible (it contains a mistake)."
)


def value_prompt(question: str, partial: str) -> str:
    blocks = [VALUE_INSTRUCTION, ""]
    for q, answer, rating in VALUE_EXEMPLARS:
        blocks.append(f"Question: {q}\nPartial answer: {answer}\nJudgement: {rating}\n")
    blocks.append(f"Question: {question}\nPartial answer: {partial.strip()}\nJudgement:")
    return "\n".join(blocks)


def rating_of(text: str) -> str | None:
    """The first of sure / likely / impossible in a value reply, lower-cased, or None."""
    match = _RATING.search(text)
    return match.group(1).lower() if match else None


def first_step(completion: Completion) -> tuple[str, bool]:
    """The completion's first sentence (leading whitespace kept, so steps concatenate as written) and whether
    the answer ends with it: the step states the answer, or the model stopped of its own accord right after."""
    text = completion.text
    start = len(text) - len(text.lstrip())
    end = _SENTENCE_END.search(text, start + 1) if start < len(text) else None
    step = text[: end.start()] if end is not None else text.rstrip()
    rest = text[len(step) :]
    ended = not rest.strip() and completion.finish_reason == "stop"
    final = not step.strip() or bool(_ANSWER_STATED.search(step)) or ended
    return step.rstrip(), final


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    step: str
    text: str
    """The whole partial answer: the parent's text plus this step."""
    final: bool = False
    value: float | None = None
    ratings: list[str | None] = field(default_factory=list)
    kept: bool = False
    answer: str | None = None
    correct: bool | None = None

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "text"}


@dataclass
class _Search:
    """One problem's tree while it grows."""

    problem: Problem
    prompt: str
    nodes: list[Node]
    frontier: list[Node]
    records: list[SampleRecord] = field(default_factory=list)
    duplicates: int = 0

    def add(self, parent: Node, step: str, final: bool) -> Node | None:
        text = parent.text + step
        if any(n.text == text and n.depth == parent.depth + 1 for n in self.nodes):
            self.duplicates += 1
            return None
        node = Node(id=len(self.nodes), parent=parent.id, depth=parent.depth + 1, step=step.strip(), text=text)
        node.final = final
        self.nodes.append(node)
        return node


class TreeOfThoughts:
    """Breadth-first beam search; see the module docstring."""

    name = "tree-of-thoughts"

    def __init__(
        self,
        breadth: int = 3,
        beam: int = 2,
        depth: int = 5,
        value_samples: int = 1,
        step_tokens: int = 48,
        max_tokens: int = 256,
        temperature: float = 0.7,
        top_k: int = 40,
        seed: int = 0,
    ):
        for setting, value in (
            ("breadth", breadth),
            ("beam", beam),
            ("depth", depth),
            ("value_samples", value_samples),
        ):
            if int(value) < 1:
                raise ConfigError(f"tree-of-thoughts: {setting} must be >= 1, got {value}")
        self.breadth, self.beam, self.depth = int(breadth), int(beam), int(depth)
        self.value_samples, self.step_tokens, self.max_tokens = int(value_samples), int(step_tokens), int(max_tokens)
        self.temperature, self.top_k, self.seed = float(temperature), int(top_k), int(seed)
        require_sampling_ranges(self)

    def describe(self) -> dict:
        return {"strategy": self.name, **vars(self), "value_prompt": 1}

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        searches = []
        for problem in problems:
            prompt = task.format_prompt(problem)
            if not isinstance(prompt, str):
                raise ConfigError(
                    f"tree-of-thoughts continues partial answers, so it needs a text prompt; task {task.name!r} "
                    "gave chat messages"
                )
            root = Node(id=0, parent=None, depth=0, step="", text="", kept=True)
            searches.append(_Search(problem, prompt, [root], [root]))

        propose = Sampling(
            temperature=self.temperature,
            top_k=self.top_k,
            max_tokens=self.step_tokens,
            stop=tuple(task.stop),
            seed=self.seed,
        )
        for _ in range(self.depth):
            growing = [s for s in searches if s.frontier]
            if not growing:
                break
            children = self._expand(growing, task, engine, propose)
            self._rate(children, engine)
            for search in growing:
                fresh = [n for n in children if n[0] is search]
                open_nodes = sorted((n for _, n in fresh if not n.final), key=lambda n: (-(n.value or 0.0), n.id))
                search.frontier = open_nodes[: self.beam]
                for node in search.frontier:
                    node.kept = True

        finishing = [s for s in searches if s.frontier]
        if finishing:
            greedy = Sampling(temperature=0.0, max_tokens=self.max_tokens, stop=tuple(task.stop))
            self._rate(self._finish(finishing, task, engine, greedy), engine)
        return [self._solution(search, task) for search in searches]

    def _expand(
        self, searches: list[_Search], task: Task, engine: Engine, sampling: Sampling
    ) -> list[tuple[_Search, Node]]:
        """Every frontier state continued `breadth` times; the new, distinct children."""
        owners = [(s, node) for s in searches for node in s.frontier]
        prompts = [
            Prompt(s.prompt + node.text, problem_id=s.problem.id, step=f"tot-expand-{node.id}") for s, node in owners
        ]
        outputs = engine.generate(prompts, self.breadth, sampling)
        children: list[tuple[_Search, Node]] = []
        for (search, parent), prompt, completions in zip(owners, prompts, outputs):
            for index, completion in enumerate(completions):
                step, final = first_step(completion)
                child = search.add(parent, step, final)
                answer = None
                if child is not None and final:
                    answer = child.answer = extract_answer(task, search.problem, child.text)
                search.records.extend(
                    records_for(
                        task if final else NoAnswers(), search.problem, prompt.step, [index], [completion], [answer],
                        auxiliary=True,
                    )
                )
                if child is not None:
                    children.append((search, child))
        self._grade_leaves(children, task)
        return children

    def _finish(
        self, searches: list[_Search], task: Task, engine: Engine, sampling: Sampling
    ) -> list[tuple[_Search, Node]]:
        """States still open at the depth limit, completed greedily to an answer."""
        owners = [(s, node) for s in searches for node in s.frontier]
        prompts = [
            Prompt(s.prompt + node.text, problem_id=s.problem.id, step=f"tot-finish-{node.id}") for s, node in owners
        ]
        leaves = []
        for (search, parent), prompt, (completion,) in zip(owners, prompts, engine.generate(prompts, 1, sampling)):
            leaf = Node(
                id=len(search.nodes),
                parent=parent.id,
                depth=parent.depth + 1,
                step=completion.text.strip(),
                text=parent.text + completion.text.rstrip(),
                final=True,
            )
            search.nodes.append(leaf)
            leaf.answer = extract_answer(task, search.problem, leaf.text)
            search.records.extend(records_for(task, search.problem, prompt.step, [0], [completion], [leaf.answer]))
            leaves.append((search, leaf))
        for search in searches:
            search.frontier = []
        self._grade_leaves(leaves, task)
        return leaves

    def _rate(self, nodes: list[tuple[_Search, Node]], engine: Engine) -> None:
        """Each node's value from `value_samples` ratings of its partial answer."""
        if not nodes:
            return
        sampling = (
            Sampling(temperature=0.0, max_tokens=4, stop=("\n",))
            if self.value_samples == 1
            else Sampling(temperature=0.7, top_k=40, max_tokens=4, stop=("\n",), seed=self.seed)
        )
        prompts = [
            Prompt(value_prompt(s.problem.question, node.text), problem_id=s.problem.id, step=f"tot-value-{node.id}")
            for s, node in nodes
        ]
        for (search, node), prompt, completions in zip(
            nodes, prompts, engine.generate(prompts, self.value_samples, sampling)
        ):
            node.ratings = [rating_of(c.text) for c in completions]
            node.value = sum(RATINGS.get(r or "", 0.0) for r in node.ratings)
            search.records.extend(
                records_for(
                    NoAnswers(), search.problem, prompt.step, range(len(completions)), completions, auxiliary=True
                )
            )

    @staticmethod
    def _grade_leaves(nodes: list[tuple[_Search, Node]], task: Task) -> None:
        leaves = [(s, n) for s, n in nodes if n.final]
        prefetch_grades(task, [(s.problem, n.answer) for s, n in leaves])
        for search, node in leaves:
            node.correct = task.grade(search.problem, node.answer)

    def _solution(self, search: _Search, task: Task) -> Solution:
        leaves = [n for n in search.nodes if n.final]
        shared = Counter(n.answer for n in leaves if n.answer is not None)
        best = min(
            leaves,
            key=lambda n: (n.answer is None, -(n.value or 0.0), -shared.get(n.answer, 0), n.id),
            default=None,
        )
        answer = best.answer if best is not None else None
        tree = {
            "nodes": [n.summary() for n in search.nodes],
            "best": best.id if best is not None else None,
            "duplicates": search.duplicates,
        }
        return Solution(
            problem_id=search.problem.id,
            answer=answer,
            correct=task.grade(search.problem, answer),
            samples=search.records,
            votes=dict(shared),
            confidence=(shared[answer] / len(leaves)) if answer is not None and leaves else None,
            extra={"tree": tree},
        )


registry.register("tree-of-thoughts")(TreeOfThoughts)
registry.register("tot")(TreeOfThoughts)
