"""Weak-to-strong: a strong student fine-tuned on a weak teacher's answers, measured by the share of the gap it closes.

Burns et al. 2023 ("Weak-to-strong generalization: eliciting strong capabilities with weak supervision"):
    PGR = (student − weak) / (ceiling − weak)
where the ceiling is the strong model fine-tuned on gold labels of the same problems. Here the task is
generative (arithmetic, GSM8K, multiple choice ...), so a label is a whole solution, not a class:

0. weak supervisor (optional, `weak_gold > 0`) — the weak model fine-tuned on gold solutions of the first
   `weak_gold` train problems, as the paper makes its supervisors; the students never see those problems.
1. weak labels — the weak model solves the next `train_limit` train problems, their references hidden
   (greedy, or a self-consistency vote); its solution (or only its answer) becomes the training target.
2. student — the strong model fine-tuned on the weak labels (optionally with the auxiliary confidence
   loss, `confidence_loss.py`); it is never given a gold label: the labeling run stores no reference and
   the training rows are built from the weak model's stored completions only.
3. ceiling — the strong model fine-tuned on the gold solutions of the same problems.
4. bootstrapping (optional, an `intermediate` model) — the intermediate model is trained on the weak
   labels, labels the same problems itself, and the strong model is trained on its labels.
5. evaluation — every model greedy on the test split through the run store; accuracy with intervals,
   PGR with a joint bootstrap interval, and the student's flips against the weak model (does it repeat
   the teacher's errors, fix them, or break what the teacher got right).

Everything lives in one work folder and every stage is reused when finished (runs resume in the store,
fine-tuning from its last checkpoint), so an interrupted run continues where it stopped. Each stage's
folder or file is named by a hash of what it depends on (`student-1a2b3c4d`), so a second run in the same
folder with another setting (say a confidence loss) reuses the weak labels and the ceiling and trains
only the new student, and never reuses a stage made with other settings.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.files import atomic_write_text
from selfimprove.core.stats import bootstrap_interval, paired_comparison, performance_gap_recovered
from selfimprove.core.types import Problem
from selfimprove.core.validation import require_range, require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.runs import runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.cot import ChainOfThought
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.strategies.voting import majority_vote
from selfimprove.tasks.base import Task
from selfimprove.tasks.jsonl import write_jsonl
from selfimprove.training.confidence_loss import ConfidenceLoss
from selfimprove.training.formats import direct_answer
from selfimprove.training.sft import SFTSettings, finetune, load_for_training, resolve_sft

LABELERS = ("greedy", "vote")
TARGETS = ("reasoning", "answer")
LABELING = ("labeler", "label_samples", "temperature", "top_k", "max_tokens", "seed")
"""The settings a labeling run depends on."""


@dataclass
class W2SSettings:
    """Weak-to-strong: which problems, how the weak model labels them, how the student learns from the labels."""

    labeler: str = "greedy"
    """How the weak model labels a problem: greedy (its greedy solution) or vote (majority of label_samples paths;
    the label is the first path that reaches the majority answer)."""
    label_samples: int = 8
    """Paths per problem when labeler is vote."""
    temperature: float = 0.7
    """Sampling temperature of the vote's paths."""
    top_k: int = 40
    """Top-k of the vote's paths (0: off)."""
    max_tokens: int = 128
    """Most tokens per solution (labels and evaluation)."""
    target: str = "reasoning"
    """What the student is trained to write: reasoning (the labeler's whole solution; the ceiling the gold
    worked solution) or answer (only "The answer is X.")."""
    weak_gold: int = 0
    """First N train problems: the weak model is fine-tuned on their gold solutions before it labels (the
    paper's weak supervisor); 0 uses the weak model as it is."""
    train_limit: int | None = 1000
    """Train problems the weak model labels (after the weak_gold ones); the student and ceiling train on them."""
    test_limit: int | None = 200
    """Test problems every model is evaluated on (first N; all when unset)."""
    confidence_weight: float = 0.0
    """Auxiliary confidence loss α_max (Burns et al. 2023; 0: plain fine-tuning on the weak labels)."""
    confidence_warmup: float = 0.2
    """Fraction of the student's steps over which α rises linearly from 0 to confidence_weight."""
    seed: int = 0
    """Sampling and fine-tuning seed."""
    device: str = "auto"
    """Device of the hf engine that labels and evaluates: auto, cpu, cuda."""
    batch_size: int = 32
    """Rows (prompt × sample) the hf engine decodes together."""

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        if self.labeler not in LABELERS:
            raise ConfigError(f"labeler = {self.labeler!r} (--labeler): choose {' or '.join(LABELERS)}")
        if self.target not in TARGETS:
            raise ConfigError(f"target = {self.target!r} (--target): choose {' or '.join(TARGETS)}")
        require_range("label_samples", self.label_samples, 1)
        require_range("weak_gold", self.weak_gold, 0)
        if self.train_limit is not None:
            require_range("train_limit", self.train_limit, 1)
        if self.test_limit is not None:
            require_range("test_limit", self.test_limit, 1)
        require_range("confidence_weight", self.confidence_weight, 0.0, 1.0)
        require_range("confidence_warmup", self.confidence_warmup, 0.0, 1.0)
        require_range("batch_size", self.batch_size, 1)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device = {self.device!r} (--device): choose auto, cpu or cuda")


@dataclass
class W2SReport:
    """Accuracy of every model on the same test problems, the gap recovered, and the student's flips."""

    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Name (weak, student, ceiling, intermediate, bootstrapped; strong-base and weak-base: the models as given,
    for reference) -> model, run, accuracy, interval, problems, accuracy by level."""
    pgr: dict[str, Any] = field(default_factory=dict)
    """The student's PGR, its interval, resamples without a gap."""
    bootstrapped_pgr: dict[str, Any] | None = None
    """The bootstrapped student's PGR (with an intermediate model)."""
    flips: dict[str, Any] = field(default_factory=dict)
    """Student against weak on each test problem: fixed, broken, both right, both wrong, same wrong answer."""
    labels: dict[str, Any] = field(default_factory=dict)
    """The weak labels: rows, problems left unlabeled, their accuracy (read after training, for this report)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Seconds of each stage done by this call (a reused stage takes none)."""
    settings: dict[str, Any] = field(default_factory=dict)


class TrainSlice:
    """`task` with its train split cut to problems [start, start + count): the weak supervisor's gold problems
    and the students' problems stay disjoint. Other splits and every other attribute are the task's own."""

    def __init__(self, task: Task, start: int, count: int | None):
        self.task, self.start, self.count = task, start, count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def problems(self, split: str = "test", limit: int | None = None) -> Iterator[Problem]:
        if split != "train":
            yield from self.task.problems(split, limit=limit)
            return
        end = None if self.count is None else self.start + self.count
        wanted = islice(self.task.problems("train", limit=end), self.start, end)
        yield from islice(wanted, limit)

    def describe(self) -> dict:
        return {**self.task.describe(), "train_slice": [self.start, self.count]}


def gold_completion(task: Task, problem: Problem, target: str) -> str | None:
    """The gold training target: the worked solution when the task has one (the answer stated after it when
    the solution does not state it), else the answer alone; None when the problem has no reference."""
    if problem.reference is None:
        return None
    if target == "answer":
        return direct_answer(problem.reference)
    solution = str(problem.metadata.get("solution") or "").strip()
    if not solution:
        return direct_answer(problem.reference)
    stated = task.grade(problem, task.extract(solution))
    return " " + solution if stated else f" {solution}{direct_answer(problem.reference)}"


def answer_in_prompt(prompt: Any, problem: Problem) -> bool:
    """A problem that is one of its own prompt's exemplars (its question appears twice): its gold answer
    is in the prompt, so it is left out of the weak labels and of the gold rows alike."""
    return isinstance(prompt, str) and prompt.count(problem.question) > 1


EngineFactory = Callable[[str | None], Engine]


class WeakToStrong:
    """Args:
    task: its train split is labeled by the weak model (and gives the gold rows); its test split evaluates.
    weak, strong, intermediate: model sources (checkpoint folder, hub name, .gguf, None = embedded).
    work: the work folder (datasets, checkpoints, run store, report).
    sft: fine-tuning settings, or overrides of the defaults scaled to each model's size.
    make_engine: model source -> engine for labeling and evaluation (default: `hf`).
    load_model: model source -> (model, tokenizer) to fine-tune.
    """

    def __init__(
        self,
        task: Task,
        weak: str | None,
        strong: str | None,
        work: str | Path,
        settings: W2SSettings | None = None,
        sft: SFTSettings | dict[str, Any] | None = None,
        intermediate: str | None = None,
        make_engine: EngineFactory | None = None,
        load_model: Callable[[str | None], tuple[Any, Any]] | None = None,
        log: Callable[[str], None] = print,
    ):
        self.task, self.weak, self.strong, self.intermediate = task, weak, strong, intermediate
        self.work = Path(work)
        self.settings = settings or W2SSettings()
        self.sft = sft
        self.make_engine = make_engine or self._hf_engine
        self.load_model = load_model or load_for_training
        self.log = log
        self.work.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.work / "runs.sqlite")
        self.students = TrainSlice(task, self.settings.weak_gold, self.settings.train_limit)
        self.seconds: dict[str, float] = {}
        self._runs: dict[str, str] = {}
        self._levels: dict[str, Any] = {}

    def run(self) -> W2SReport:
        s = self.settings
        weak = self.weak
        if s.weak_gold > 0:
            gold = self._gold_rows("weak-gold", TrainSlice(self.task, 0, s.weak_gold))
            weak = self._train("weak-supervisor", self.weak, gold)
        labels = self._labels("weak-labels", weak)
        arms: dict[str, str | None] = {
            "weak": weak,
            "student": self._train("student", self.strong, labels, confident=True),
            "ceiling": self._train("ceiling", self.strong, self._gold_rows("gold", self.students)),
        }
        if self.intermediate is not None:
            arms["intermediate"] = self._train("intermediate", self.intermediate, labels, confident=True)
            relabeled = self._labels("intermediate-labels", arms["intermediate"])
            arms["bootstrapped"] = self._train("bootstrapped", self.strong, relabeled, confident=True)
        # for the report only: the strong (and the weak, when it was fine-tuned) model as it came, untrained here
        arms["strong-base"] = self.strong
        if s.weak_gold > 0:
            arms["weak-base"] = self.weak
        outcomes = {name: self._evaluate(name, model) for name, model in arms.items()}
        report = self._report(arms, outcomes, labels)
        atomic_write_text(self.work / "report.json", json.dumps(asdict(report), indent=2))
        from selfimprove.reports.weak_to_strong import render_w2s

        atomic_write_text(self.work / "report.html", render_w2s(report))
        return report

    # -- stages ----------------------------------------------------------------------------------

    def _hf_engine(self, source: str | None) -> Engine:
        from selfimprove.engines.hf import HFEngine

        return HFEngine(model=source, device=self.settings.device, batch_size=self.settings.batch_size)

    def _stage(self, name: str, **depends: Any) -> str:
        """`name-HASH`: the stage's name and a hash of everything its output depends on."""
        text = json.dumps(depends, sort_keys=True, default=str)
        return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"

    def _sft_identity(self) -> Any:
        return asdict(self.sft) if isinstance(self.sft, SFTSettings) else dict(sorted((self.sft or {}).items()))

    def _labels(self, name: str, model: str | None) -> list[dict]:
        """The labeler's training rows for the students' problems, from its unlabeled run in the store."""
        s = self.settings
        labeling = {k: getattr(s, k) for k in LABELING}
        stage = self._stage(name, model=model, task=self.students.describe(), target=s.target, **labeling)
        path = self.work / f"{stage}.jsonl"
        if path.is_file():
            return _read_rows(path)
        started = time.perf_counter()
        if s.labeler == "vote":
            strategy: Any = SelfConsistency(
                samples=s.label_samples,
                temperature=s.temperature,
                top_k=s.top_k,
                max_tokens=s.max_tokens,
                seed=s.seed,
                greedy_baseline=False,
            )
        else:
            strategy = ChainOfThought(max_tokens=s.max_tokens)
        self.log(f"{name}: {model or 'embedded model'} labels the train problems ({s.labeler}), references hidden")
        engine = self.make_engine(model)
        try:
            outcome = runner.execute(
                self.students, strategy, engine, self.store, split="train", unlabeled=True,
                batch_size=self.settings.batch_size,
            )  # fmt: skip
        finally:
            engine.close()
        texts = {
            (r["problem_id"], r["step"], r["sample"]): r["text"] for r in self.store.completion_rows(outcome.run_id)
        }
        problems = {p.id: p for p in self.students.problems("train")}
        rows: list[dict] = []
        for solution in self.store.solutions(outcome.run_id):
            problem = problems[solution["problem_id"]]
            prompt = self._prompt(problem)
            vote = majority_vote([x["answer"] for x in solution["samples"]])
            if vote.answer is None or answer_in_prompt(prompt, problem):
                continue
            first = next(x for x in solution["samples"] if x["answer"] == vote.answer)
            path_text = texts[(problem.id, first["step"], first["index"])].rstrip()
            completion = path_text if s.target == "reasoning" else direct_answer(vote.answer)
            rows.append(
                {"prompt": prompt, "completion": completion, "problem_id": problem.id, "answer": vote.answer,
                 "share": vote.share, "stage": stage}
            )  # fmt: skip
        if not rows:
            raise ConfigError(f"{name}: the labeler stated no answer on any train problem; nothing to train on")
        write_jsonl(path, rows)
        self.seconds[name] = time.perf_counter() - started
        return rows

    def _gold_rows(self, name: str, problems_of: Any) -> list[dict]:
        stage = self._stage(name, task=problems_of.describe(), target=self.settings.target)
        path = self.work / f"{stage}.jsonl"
        if path.is_file():
            return _read_rows(path)
        rows = []
        for problem in problems_of.problems("train"):
            prompt, completion = self._prompt(problem), gold_completion(self.task, problem, self.settings.target)
            if completion is None or answer_in_prompt(prompt, problem):
                continue
            rows.append(
                {"prompt": prompt, "completion": completion, "problem_id": problem.id, "answer": problem.reference,
                 "stage": stage}
            )  # fmt: skip
        if not rows:
            raise ConfigError(f"{name}: the task's train problems have no references to build gold rows from")
        write_jsonl(path, rows)
        return rows

    def _prompt(self, problem: Problem) -> str:
        prompt = self.task.format_prompt(problem)
        if not isinstance(prompt, str):
            raise ConfigError(f"w2s fine-tunes on plain-text prompts; task {self.task.name!r} gives chat messages")
        return prompt

    def _train(self, name: str, model: str | None, rows: list[dict], confident: bool = False) -> str:
        s = self.settings
        confidence = (s.confidence_weight, s.confidence_warmup) if confident and s.confidence_weight > 0 else None
        data = rows[0]["stage"] if rows else None
        folder = self.work / self._stage(name, model=model, data=data, confidence=confidence, sft=self._sft_identity())
        if (folder / "done.json").is_file():
            return str(folder / "merged")
        started = time.perf_counter()
        network, tokenizer = self.load_model(model)
        settings = resolve_sft(self.sft, network.num_parameters())
        loss, callbacks = None, ()
        if confidence is not None:
            loss = ConfidenceLoss(*confidence)
            callbacks = (loss.callback(),)
        self.log(f"{name}: fine-tuning {model or 'embedded model'} on {len(rows)} rows")
        training = [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
        result = finetune(network, tokenizer, training, folder, settings, loss=loss, callbacks=callbacks)
        del network
        self.seconds[name] = time.perf_counter() - started
        return str(result.merged)

    def _evaluate(self, name: str, model: str | None) -> dict[str, tuple[bool, str | None]]:
        """Problem id -> (correct, answer) of `model`'s greedy solutions on the test split."""
        started = time.perf_counter()
        engine = self.make_engine(model)
        try:
            strategy = ChainOfThought(max_tokens=self.settings.max_tokens)
            outcome = runner.execute(
                self.task, strategy, engine, self.store, limit=self.settings.test_limit,
                batch_size=self.settings.batch_size,
            )  # fmt: skip
        finally:
            engine.close()
        self.seconds[f"evaluate {name}"] = time.perf_counter() - started
        self._runs[name] = outcome.run_id
        rows = self.store.solutions(outcome.run_id)
        self._levels.update({r["problem_id"]: (r["metadata"] or {}).get("level") for r in rows})
        return {r["problem_id"]: (bool(r["correct"]), r["answer"]) for r in rows}

    def _report(self, arms: dict, outcomes: dict, labels: list[dict]) -> W2SReport:
        report = W2SReport(seconds=dict(self.seconds), settings=asdict(self.settings))
        ids = [pid for pid in outcomes["weak"] if all(pid in o for o in outcomes.values())]
        correct = {name: [o[pid][0] for pid in ids] for name, o in outcomes.items()}
        for name, model in arms.items():
            report.arms[name] = {
                "model": str(model) if model else "embedded model",
                "run": self._runs[name],
                "problems": len(ids),
                "accuracy": sum(correct[name]) / len(ids),
                "interval": list(bootstrap_interval([float(x) for x in correct[name]])),
                "by_level": _by_level(ids, correct[name], self._levels),
            }
        report.pgr = asdict(performance_gap_recovered(correct["weak"], correct["student"], correct["ceiling"]))
        if "bootstrapped" in correct:
            gap = performance_gap_recovered(correct["weak"], correct["bootstrapped"], correct["ceiling"])
            report.bootstrapped_pgr = asdict(gap)
        report.flips = student_flips([outcomes["weak"][i] for i in ids], [outcomes["student"][i] for i in ids])
        report.labels = self._label_quality(labels)
        return report

    def _label_quality(self, labels: list[dict]) -> dict[str, Any]:
        """The weak labels against the gold answers: read only here, after every model is trained."""
        problems = {p.id: p for p in self.students.problems("train")}
        graded = [self.task.grade(problems[r["problem_id"]], r["answer"]) for r in labels]
        known = [g for g in graded if g is not None]
        return {
            "rows": len(labels),
            "problems": len(problems),
            "unlabeled": len(problems) - len(labels),
            "accuracy": sum(known) / len(known) if known else None,
        }


def student_flips(weak: list[tuple[bool, str | None]], student: list[tuple[bool, str | None]]) -> dict[str, Any]:
    """Per problem, weak vs student: fixed (weak wrong, student right), broken, both right, both wrong, and of the
    both-wrong ones those where the student gives the weak model's very answer (it learned the error)."""
    comparison = paired_comparison([w for w, _ in weak], [s for s, _ in student])
    same_wrong = sum(1 for (w, a), (s, b) in zip(weak, student) if not w and not s and a is not None and a == b)
    return {
        "problems": comparison.shared,
        "fixed": comparison.b_wins,
        "broken": comparison.b_losses,
        "both_right": comparison.both_right,
        "both_wrong": comparison.both_wrong,
        "same_wrong_answer": same_wrong,
        "difference": comparison.difference,
        "difference_interval": list(comparison.interval),
        "p_value": comparison.p_value,
    }


def _by_level(ids: list[str], correct: list[bool], levels: dict[str, Any]) -> dict[str, float]:
    """Accuracy per difficulty level, where the task's problems have one (else empty)."""
    grouped: dict[str, list[bool]] = {}
    for pid, ok in zip(ids, correct):
        if levels.get(pid) is not None:
            grouped.setdefault(str(levels[pid]), []).append(ok)
    return {level: sum(oks) / len(oks) for level, oks in sorted(grouped.items())}


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def weak_to_strong(
    task: Task,
    weak: str | None,
    strong: str | None,
    out: str | Path,
    settings: W2SSettings | None = None,
    sft: SFTSettings | dict[str, Any] | None = None,
    intermediate: str | None = None,
    log: Callable[[str], None] = print,
) -> W2SReport:
    """Train `strong` on `weak`'s labels of `task`'s train problems and on their gold labels, evaluate weak, student
    and ceiling on the test split; resumable in `out`. `sft`: fine-tuning settings or overrides of the defaults
    scaled to each model (`SFTSettings.scaled_to`)."""
    return WeakToStrong(task, weak, strong, out, settings, sft, intermediate, log=log).run()
