"""LMSI: label-free self-improvement (Huang et al. 2022, "Large Language Models Can Self-Improve").

Per round r (the model is the base model in round 1, round r-1's merged checkpoint after):
1. sample  — m reasoning paths per *unlabeled* train question (`paths`, temperature 0.7). The task
   is wrapped so its problems carry no reference: nothing in selection can read a label.
2. select  — majority vote per question; keep the paths that reach the majority answer, for
   questions whose vote share is at least `min_share` (the paper: 0, keep all).
3. dataset — the four formats of `formats.py` from every kept path, saved as JSONL.
4. train   — LoRA fine-tuning with TRL's SFTTrainer (`sft.py`), merged into a checkpoint.
5. evaluate — the task's test split before and after, greedy CoT and self-consistency, in the
   run store, with paired bootstrap intervals.
With `teacher`, the teacher samples in step 1 and the student is trained (distillation).

Everything lives under one work folder; every stage writes its output atomically and a re-run
skips finished stages (runs resume inside the run store; fine-tuning resumes from its last
checkpoint). Labels are read once, after selection, only for the calibration table (vote share
bucket vs accuracy of the kept answer) that the report prints.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError, DataError
from selfimprove.core.files import atomic_write_text
from selfimprove.core.stats import bootstrap_interval, paired_comparison
from selfimprove.core.validation import require_range, require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.engines.spec import EngineSpec
from selfimprove.runs import runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.cot import ChainOfThought
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.strategies.voting import majority_vote
from selfimprove.tasks.base import Task
from selfimprove.tasks.jsonl import read_jsonl, require_str, write_jsonl
from selfimprove.training.formats import FORMATS, KeptPath, training_rows
from selfimprove.training.gguf_export import EXPORT_TYPES, default_template, export_checkpoint
from selfimprove.training.processes import is_main, wait_for_file
from selfimprove.training.sft import SFTSettings, finetune, load_for_training, resolve_sft

SHARE_BUCKETS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


EngineFactory = Callable[[str | None], Engine]


@dataclass
class LMSISettings:
    """LMSI's rounds: sample, vote, keep, fine-tune, evaluate (Huang et al. 2022)."""

    paths: int = 32
    """Reasoning paths sampled per unlabeled question."""
    temperature: float = 0.7
    """Sampling temperature for the paths."""
    top_k: int = 40
    """Top-k of the path sampling (0: off)."""
    max_tokens: int = 256
    """Most tokens per path."""
    min_share: float = 0.0
    """Keep a question only if its majority answer has this vote share (the paper: 0, keep all)."""
    formats: tuple[str, ...] = FORMATS
    """Training formats, comma separated (the paper's mixture by default)."""
    train_limit: int | None = None
    """Unlabeled train questions to sample (first N; default all)."""
    test_limit: int | None = None
    """Test problems to evaluate on (first N; default all)."""
    eval_samples: int = 8
    """Samples of the self-consistency evaluation before and after."""
    rounds: int = 1
    """Rounds: each trains on the previous round's model's own paths."""
    shots: int = 4
    """Exemplars in the few-shot training formats (the task's own prompt shots are `-O shots=N`)."""
    seed: int = 0
    """Sampling and training seed."""
    gguf_type: str | None = None
    """Also export each round's model to GGUF of this type (f16, q8_0 ...); a llama.cpp sampler then samples it."""
    gguf_template: str | None = None
    """GGUF whose metadata and tokenizer the export keeps (default: the GGUF the model came from)."""
    replay: str | None = None
    """JSONL of labeled prompt/completion rows (e.g. the testbed's `train.jsonl`) mixed into every round's
    training set: Lee et al. 2025 train on the easy labeled data together with the self-generated data."""
    replay_rows: int = 0
    """Replay rows per round (drawn without replacement, seeded by round); 0: as many as the round's own rows."""

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        require_range("paths", self.paths, 1)
        require_range("eval_samples", self.eval_samples, 1)
        require_range("rounds", self.rounds, 1)


@dataclass
class LMSIEngines:
    """Which engines LMSI samples and evaluates with."""

    device: str = "auto"
    """Device of the hf engine: auto, cpu, cuda."""
    sample_engine: str = "hf"
    """Engine of the sampling stage: hf, or llama-cpp for a GGUF model (faster on CPU)."""
    ray: str = ""
    """Shard the sampling stage across Ray workers: 'local' starts a cluster here, 'auto' or HOST:PORT joins one
    (empty: sample in this process)."""
    ray_workers: int = 2
    """Ray workers of the sampling stage (with --ray), each holding its own copy of the sampled model."""

    def __post_init__(self) -> None:
        if self.sample_engine not in ("hf", "llama-cpp"):
            raise ConfigError(f"sample_engine = {self.sample_engine!r} (--sample-engine): choose hf or llama-cpp")

    def sampler_spec(self, source: str | None) -> EngineSpec:
        """What the sampling stage samples with. llama.cpp reads GGUF files (and the embedded model) only, so a
        later round's merged checkpoint is sampled by `hf` whatever was asked."""
        if self.sample_engine == "llama-cpp" and (source is None or str(source).endswith(".gguf")):
            return EngineSpec("llama-cpp", {"model": source})
        return EngineSpec("hf", {"model": source, "device": self.device})

    def sampler(self) -> EngineFactory:
        """The sampling stage's engine factory (an engine built here, from `sampler_spec`)."""
        return lambda source: self.sampler_spec(source).build()

    def sample_executor(self) -> Any:
        """The Ray executor of the sampling stage, or None to sample in this process."""
        if not self.ray:
            return None
        from selfimprove.runs.ray_executor import RayExecutor, RaySettings

        address = None if self.ray == "local" else self.ray
        return RayExecutor(RaySettings(address=address, workers=self.ray_workers))

    def engine(self, source: str | None) -> Engine:
        from selfimprove.engines.hf import HFEngine

        return HFEngine(model=source, device=self.device)


@dataclass
class RoundReport:
    round: int
    model: str
    questions: int = 0
    kept_questions: int = 0
    kept_paths: int = 0
    training_rows: int = 0
    calibration: list[dict] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    merged: str = ""
    gguf: str = ""




class LMSI:
    """Args:
    task: the task (its train split is sampled unlabeled; its test split evaluates).
    model: the base model (anything `load_causal_lm` takes: folder, hub name, .gguf, None = embedded).
    work: the work folder (stages, datasets, checkpoints, run store).
    sft: fine-tuning settings, or overrides of the defaults scaled to the model's size.
    make_engine: model source -> engine used for sampling and evaluation (default: `hf`).
    load_model: model source -> (model, tokenizer) to fine-tune (default: `load_causal_lm`).
    teacher: a model that samples instead of the student (distillation).
    make_sampler: the engine factory of the sampling stage only (e.g. llama.cpp for a GGUF: much faster on
        CPU; it reads the same weights the `hf` engine dequantises). Default: `make_engine`.
    sample_executor: a `RayExecutor` to shard the sampling stage across workers; `make_sampler` then returns an
        `EngineSpec` (each worker builds its own engine). The stored samples are the ones drawn locally.
    """

    def __init__(
        self,
        task: Task,
        model: str | None,
        work: Path,
        settings: LMSISettings | None = None,
        sft: SFTSettings | dict[str, Any] | None = None,
        make_engine: EngineFactory | None = None,
        load_model: Callable[[str | None], tuple[Any, Any]] | None = None,
        teacher: str | None = None,
        make_sampler: EngineFactory | None = None,
        log: Callable[[str], None] = print,
        sample_executor: Any = None,
    ):
        self.task, self.base_model, self.work = task, model, Path(work)
        self.settings = settings or LMSISettings()
        self.sft = sft
        self.make_engine = make_engine or _hf_engine
        self.make_sampler = make_sampler or self.make_engine
        self.sample_executor = sample_executor
        self.load_model = load_model or load_for_training
        self.teacher = teacher
        self.log = log
        self.work.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.work / "runs.sqlite")
        self._check_settings()

    def _check_settings(self) -> None:
        s = self.settings
        if s.paths < 1 or s.rounds < 1 or s.eval_samples < 1:
            raise ConfigError("lmsi: paths, rounds and eval_samples must be >= 1")
        if not 0.0 <= s.min_share <= 1.0:
            raise ConfigError(f"lmsi: min_share must be within 0..1, got {s.min_share}")
        if s.gguf_type is not None:
            if s.gguf_type not in EXPORT_TYPES:
                raise ConfigError(f"lmsi: unknown GGUF type {s.gguf_type!r}; choose from {', '.join(EXPORT_TYPES)}")
            default_template(self.base_model, s.gguf_template)  # a base model without a template fails now
        if s.replay_rows < 0:
            raise ConfigError(f"lmsi: replay_rows must be >= 0, got {s.replay_rows}")
        if s.replay:
            replay_rows(s.replay, 1)  # a missing or malformed file fails now, naming its line and field

    def run(self, on_round: Callable[[RoundReport], None] | None = None) -> list[RoundReport]:
        """Every round; `on_round` sees each report as soon as its round ends."""
        reports = []
        model, sample_from = self.base_model, self.base_model
        for number in range(1, self.settings.rounds + 1):
            report = self.round(number, model, sample_from)
            reports.append(report)
            if on_round is not None:
                on_round(report)
            model, sample_from = report.merged, report.gguf or report.merged
        return reports

    def round(self, number: int, model: str | None, sample_from: str | None = None) -> RoundReport:
        """One round on `model`; `sample_from` is the same model in another format (a GGUF export) when
        the sampling engine prefers it."""
        folder = self.work / f"round-{number}"
        folder.mkdir(exist_ok=True)
        saved = folder / "report.json"
        if saved.is_file():
            self.log(f"round {number}: finished before, reusing {saved}")
            return RoundReport(**json.loads(saved.read_text()))
        report = RoundReport(round=number, model=str(model) if model else "embedded model")
        s = self.settings
        if is_main():  # under accelerate launch: one process samples and selects, all of them train
            rows = self._sample_and_select(number, model, sample_from, folder, report)
        else:
            wait_for_file(folder / "train.jsonl")
            rows = self._dataset(folder, [], number)  # the main process's file

        started = time.perf_counter()
        network, tokenizer = self.load_model(model)
        settings = resolve_sft(self.sft, network.num_parameters())
        result = finetune(network, tokenizer, rows, folder / "sft", settings)
        del network
        report.losses, report.steps, report.merged = result.losses, result.steps, str(result.merged)
        report.seconds["train"] = time.perf_counter() - started
        if result.losses:
            self.log(f"round {number}: {result.steps} steps, loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}")

        if not is_main():
            wait_for_file(saved)  # the main process's export, evaluation and report
            return RoundReport(**json.loads(saved.read_text()))
        if s.gguf_type:
            started = time.perf_counter()
            report.gguf = str(self._export(result.merged, folder / "sft" / f"model-{s.gguf_type}.gguf"))
            report.seconds["export"] = time.perf_counter() - started

        started = time.perf_counter()
        report.evaluation = self._evaluate(model, str(result.merged))
        report.seconds["evaluate"] = time.perf_counter() - started
        _write_json(saved, asdict(report))
        return report

    def _sample_and_select(
        self, number: int, model: str | None, sample_from: str | None, folder: Path, report: RoundReport
    ) -> list[dict]:
        """Stages 1-3: sample paths of the unlabeled train questions, vote, keep the confident ones as rows."""
        s = self.settings

        started = time.perf_counter()
        sampler = self.make_sampler(self.teacher or sample_from or model)
        try:
            strategy = SelfConsistency(
                samples=s.paths,
                temperature=s.temperature,
                top_k=s.top_k,
                max_tokens=s.max_tokens,
                seed=s.seed + number,
                greedy_baseline=False,
            )
            self.log(f"round {number}: sampling {s.paths} paths per unlabeled train question")
            outcome = runner.execute(
                self.task, strategy, sampler, self.store, limit=s.train_limit, split="train", unlabeled=True,
                executor=self.sample_executor,
            )  # fmt: skip
        finally:
            if self.sample_executor is None:
                sampler.close()
        report.seconds["sample"] = time.perf_counter() - started

        started = time.perf_counter()
        kept, report.calibration = self._select(outcome.run_id, report)
        rows = self._dataset(folder, kept, number)
        report.training_rows = len(rows)
        report.seconds["select"] = time.perf_counter() - started
        self.log(
            f"round {number}: kept {report.kept_paths} paths of {report.kept_questions}/{report.questions} questions, "
            f"{len(rows)} training rows"
        )
        return rows

    # -- stages ----------------------------------------------------------------------------------

    def _export(self, merged: Path, target: Path) -> Path:
        if target.is_file():
            return target
        template = default_template(self.base_model, self.settings.gguf_template)
        self.log(f"exporting {merged} to {target.name} (template {template.name})")
        return export_checkpoint(merged, template, target, self.settings.gguf_type or "f16")

    def _select(self, run_id: str, report: RoundReport) -> tuple[list[KeptPath], list[dict]]:
        """Majority vote without labels; then, for the report only, how vote share tracked accuracy."""
        problems = {p.id: p for p in self.task.problems("train", limit=self.settings.train_limit)}
        texts = {(r["problem_id"], r["step"], r["sample"]): r["text"] for r in self.store.completion_rows(run_id)}
        kept: list[KeptPath] = []
        shares: list[tuple[float, bool | None]] = []
        for row in self.store.solutions(run_id):
            report.questions += 1
            samples = [x for x in row["samples"] if x["step"] == "sample"]
            vote = majority_vote([x["answer"] for x in samples])
            if vote.answer is None or vote.share < self.settings.min_share:
                continue
            problem = problems[row["problem_id"]]
            paths = [texts[(row["problem_id"], x["step"], x["index"])] for x in samples if x["answer"] == vote.answer]
            kept.extend(KeptPath(problem, vote.answer, path) for path in paths)
            report.kept_questions += 1
            report.kept_paths += len(paths)
            shares.append((vote.share, self.task.grade(problem, vote.answer)))  # labels: report only
        return kept, calibration_table(shares)

    def _dataset(self, folder: Path, kept: list[KeptPath], number: int) -> list[dict]:
        path = folder / "train.jsonl"
        if path.is_file():
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rows = training_rows(kept, self.task, self.settings.formats, self.settings.shots, self.settings.seed)
        if self.settings.replay:
            wanted = self.settings.replay_rows or len(rows)
            replayed = replay_rows(self.settings.replay, wanted, seed=self.settings.seed + number)
            self.log(f"round {number}: {len(rows)} self-generated rows + {len(replayed)} replayed labeled rows")
            rows += replayed
        write_jsonl(path, rows)
        return rows

    def _evaluate(self, before: str | None, after: str) -> dict[str, Any]:
        """Greedy CoT and self-consistency on the test split, before and after, paired by problem."""
        s = self.settings
        strategies = {
            "greedy": ChainOfThought(max_tokens=s.max_tokens),
            f"maj@{s.eval_samples}": SelfConsistency(
                samples=s.eval_samples, max_tokens=s.max_tokens, seed=s.seed, greedy_baseline=False
            ),
        }
        outcomes: dict[str, dict[str, dict[str, bool]]] = {}
        for label, source in (("before", before), ("after", after)):
            engine = self.make_engine(source)
            try:
                for mode, strategy in strategies.items():
                    run = runner.execute(self.task, strategy, engine, self.store, limit=s.test_limit)
                    outcomes.setdefault(mode, {})[label] = {
                        r["problem_id"]: bool(r["correct"]) for r in self.store.solutions(run.run_id)
                    }
            finally:
                engine.close()
        table = {}
        for mode, pair in outcomes.items():
            ids = [pid for pid in pair["before"] if pid in pair["after"]]
            a, b = [pair["before"][i] for i in ids], [pair["after"][i] for i in ids]
            c = paired_comparison(a, b)
            table[mode] = {
                "problems": len(ids),
                "before": c.accuracy_a,
                "before_interval": list(bootstrap_interval([float(x) for x in a])),
                "after": c.accuracy_b,
                "after_interval": list(bootstrap_interval([float(x) for x in b])),
                "difference": c.difference,
                "difference_interval": list(c.interval),
                "fixed": c.b_wins,
                "broken": c.b_losses,
                "p_value": c.p_value,
            }
        return table


def replay_rows(path: str | Path, count: int, seed: int = 0) -> list[dict]:
    """`count` labeled rows drawn from a prompt/completion JSONL (all of them when it has fewer)."""
    rows = [
        {
            "prompt": require_str(record, "prompt", path, line),
            "completion": require_str(record, "completion", path, line),
            "format": "replay",
            "problem_id": f"replay-{line}",
        }
        for line, record in read_jsonl(path)
    ]
    if not rows:
        raise DataError(Path(path), "no rows to replay")
    return random.Random(seed).sample(rows, min(count, len(rows)))


def calibration_table(shares: list[tuple[float, bool | None]]) -> list[dict]:
    """Vote-share buckets [0, .2), [.2, .4), ... [.8, 1]: questions and accuracy of the majority answer."""
    table = []
    for low, high in zip(SHARE_BUCKETS, SHARE_BUCKETS[1:]):
        graded = [ok for share, ok in shares if low <= share < high and ok is not None]
        table.append(
            {
                "share": f"{low:.1f}-{min(high, 1.0):.1f}",
                "questions": sum(1 for share, _ in shares if low <= share < high),
                "accuracy": (sum(graded) / len(graded)) if graded else None,
            }
        )
    return table


def _write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2))


def _hf_engine(source: str | None) -> Engine:
    from selfimprove.engines.hf import HFEngine

    return HFEngine(model=source)


def lmsi(
    task: Task,
    model: str | None,
    out: str | Path,
    settings: LMSISettings | None = None,
    sft: SFTSettings | dict[str, Any] | None = None,
    engines: LMSIEngines | None = None,
    teacher: str | None = None,
    log: Callable[[str], None] = print,
    on_round: Callable[[RoundReport], None] | None = None,
) -> list[RoundReport]:
    """Every LMSI round on `task` without its labels, resumable in `out`; the reports, round 1 first.
    `sft`: fine-tuning settings or overrides of the defaults scaled to the model (`SFTSettings.scaled_to`)."""
    engines = engines or LMSIEngines()
    loop = LMSI(
        task, model, Path(out), settings, sft=sft, make_engine=engines.engine,
        make_sampler=engines.sampler_spec if engines.ray else engines.sampler(), teacher=teacher, log=log,
        sample_executor=engines.sample_executor(),
    )  # fmt: skip
    return loop.run(on_round=on_round)
