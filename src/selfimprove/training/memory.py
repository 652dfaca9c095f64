"""`selfimprove memory`: how much a model stores and recalls, in items and bits per parameter, with controls.

For each model and each (N items, E exposures) point: fine-tune on the first N items of a pool for E epochs
(TRL's SFT trainer, LoRA or all weights), then recall every trained item from its key by greedy decoding,
and the same for a **control** set of items never trained on (their recall must stay at chance). Before any
training the base model recalls both sets too: what it already knew (a poem's pretraining contamination,
measured rather than assumed). The cost to reasoning is the arithmetic task's greedy accuracy before and
after, paired on the same problems.

Anchors: Wang & Li 2024 ("Schrödinger's memory": poems recited from title and author after fine-tuning;
no control set, contamination check or matching rule, which this adds) and Allen-Zhu & Li 2024 ("Physics of
Language Models 3.3": about 2 bits of knowledge per parameter at saturation on synthetic facts).

Models: checkpoint folders, hub names, .gguf files, None (the embedded model), or `scratch:HIDDENxLAYERS`, a
fresh Llama-architecture decoder (the testbed's) with a word-level tokenizer fitted on the pool's text, which
knows nothing before training. A word-level model (the arithmetic testbed) has its vocabulary extended with the
pool's missing words first (new ids after the old ones), saved as the base every point starts from.

Every stage is resumable: checkpoints are named by a hash of what they depend on, recalls are runs in
`WORK/runs.sqlite`, and a re-run recomputes nothing that is stored.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.files import atomic_path, atomic_write_text
from selfimprove.core.stats import paired_comparison, wilson_interval
from selfimprove.engines.base import Engine
from selfimprove.runs import runner
from selfimprove.runs.recall import RecallScore, score_recall
from selfimprove.runs.store import RunStore
from selfimprove.strategies.cot import ChainOfThought
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.memory import ItemPool, MemoryItem, MemoryTask, bits_per_item, item_pool
from selfimprove.training.sft import SFTSettings, finetune, load_for_training, resolve_sft

SCRATCH = re.compile(r"^scratch:(\d+)x(\d+)$")


def _positive_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ConfigError(f"--{flag}: expected positive integers separated by commas (e.g. 16,64), got {text!r}")
    return sorted(set(values))


@dataclass
class MemorySettings:
    """What is memorised, how often, and what is measured around it."""

    items: str = "synthetic"
    """"synthetic" (people with uniform random facts: bits known), or a JSONL file of poems
    {title, author, lines} (`../shared/data/poems/poems_short.jsonl`) or of {key, value}."""
    counts: str = "16,64"
    """Items trained on (N), comma-separated: one point per value; a smaller set is a prefix of a larger."""
    exposures: str = "100"
    """Epochs over the N items (E), comma-separated: one point per value."""
    control: int = 32
    """Items never trained on, recalled before and after (must stay at chance)."""
    max_chars: int = 256
    """Poems: their first lines within this many characters."""
    reasoning: int = 100
    """Arithmetic test problems solved greedily before and after memorising (0: not measured)."""
    reasoning_level: str = "1"
    """Their arithmetic level(s)."""
    reasoning_shots: int = 4
    """Their exemplars (0 for the testbed, which is trained zero-shot)."""
    max_tokens: int = 0
    """Recall length in tokens; 0: the longest item's value in the model's tokens, plus 8."""
    batch_size: int = 32
    """Sequences decoded together by the recall and reasoning engines."""
    quantised: str = ""
    """Also recall every trained checkpoint with its Linear weights quantised weight-only, comma-separated
    (int8, int4; torchao): does the stored knowledge survive quantisation (Allen-Zhu & Li: int8 keeps it)."""
    device: str = "auto"
    """Device of the recall engines (auto: CUDA when present)."""
    seed: int = 0
    """Order of the items (files) or their facts (synthetic)."""

    def __post_init__(self) -> None:
        self.count_list = _positive_list(self.counts, "counts")
        self.quantised_list = [q.strip() for q in self.quantised.split(",") if q.strip()]
        if any(q not in ("int8", "int4") for q in self.quantised_list):
            raise ConfigError(f"--quantised: expected int8 and/or int4 separated by commas, got {self.quantised!r}")
        self.exposure_list = _positive_list(self.exposures, "exposures")
        if self.control < 1:
            raise ConfigError(f"--control must be at least 1 (items never trained on), got {self.control}")
        if self.reasoning < 0 or self.max_tokens < 0 or self.max_chars < 1:
            raise ConfigError("--reasoning and --max-tokens must be >= 0 and --max-chars >= 1")


@dataclass
class ModelBaseline:
    """One model before it memorised anything."""

    model: str
    source: str | None
    parameters: int
    trained: RecallScore
    """Recall of the largest trained set (the items it will see), before training: contamination."""
    control: RecallScore
    reasoning: float | None
    reasoning_interval: tuple[float, float] | None


@dataclass
class MemoryPoint:
    """One model after E exposures to N items."""

    model: str
    count: int
    exposures: int
    parameters: int
    trained: RecallScore
    control: RecallScore
    before: RecallScore
    """The same N items recalled by the base model."""
    bits_per_parameter: float
    fano_bits_per_parameter: float
    reasoning: dict[str, Any] | None
    """Arithmetic before/after on the same problems: accuracies, difference, its interval, McNemar p."""
    steps: int
    final_loss: float | None
    seconds: float
    checkpoint: str
    quantised: dict[str, RecallScore] = field(default_factory=dict)
    """The trained items recalled with the checkpoint's Linear weights quantised (int8, int4)."""


@dataclass
class MemoryReport:
    settings: dict[str, Any]
    bits_per_item: float | None
    """Synthetic items: the information in one value (None for free text)."""
    baselines: list[ModelBaseline] = field(default_factory=list)
    points: list[MemoryPoint] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


EngineFactory = Callable[..., Engine]
"""(source, weights="float") -> an engine that decodes greedily from the source with its weights as given."""


class MemoryStudy:
    """Args: models (sources or `scratch:HxL`), work folder, settings, fine-tuning settings (or overrides of the
    defaults scaled to each model's size; a scratch model trains all weights unless told otherwise)."""

    def __init__(
        self,
        models: list[str | None],
        work: str | Path,
        settings: MemorySettings | None = None,
        sft: SFTSettings | dict[str, Any] | None = None,
        make_engine: EngineFactory | None = None,
        log: Callable[[str], None] = print,
    ):
        if not models:
            raise ConfigError("memory: give at least one --model")
        self.models, self.work = list(models), Path(work)
        self.settings = settings or MemorySettings()
        self.sft, self.log = sft, log
        self.make_engine = make_engine or self._hf_engine
        self.work.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.work / "runs.sqlite")
        s = self.settings
        self.pool: ItemPool = item_pool(s.items, max(s.count_list), s.control, s.seed, s.max_chars)
        self.seconds: dict[str, float] = {}

    def run(self) -> MemoryReport:
        s = self.settings
        synthetic = s.items == "synthetic"
        report = MemoryReport(settings=asdict(s), bits_per_item=bits_per_item(self.pool.spaces) if synthetic else None)
        largest = self.pool.trained(max(s.count_list))
        for model in self.models:
            name = model_label(model)
            base = self._base(model)
            parameters = self._parameters(base)
            before_rows = self._recall(f"{name} before", base, largest, "trained")
            control = self.pool.control()
            before_control = self._score(control, self._recall(f"{name} before", base, control, "control"))
            scratch = SCRATCH.match(model or "") is not None
            reasoning = None if scratch else self._reasoning(f"{name} before", base)
            report.baselines.append(
                ModelBaseline(
                    model=name,
                    source=model,
                    parameters=parameters,
                    trained=self._score(largest, before_rows),
                    control=before_control,
                    reasoning=None if reasoning is None else sum(reasoning) / len(reasoning),
                    reasoning_interval=None if reasoning is None else wilson_interval(sum(reasoning), len(reasoning)),
                )
            )
            for count in s.count_list:
                for exposures in s.exposure_list:
                    report.points.append(
                        self._point(name, base, parameters, count, exposures, before_rows, reasoning, scratch)
                    )
                    self._save(report)
        self._save(report)
        return report

    # -- stages ----------------------------------------------------------------------------------

    def _point(
        self, name: str, base: str | None, parameters: int, count: int, exposures: int,
        before_rows: dict[str, str | None], reasoning_before: list[bool] | None, scratch: bool,
    ) -> MemoryPoint:  # fmt: skip
        items = self.pool.trained(count)
        folder, done = self._train(name, base, items, exposures, scratch)
        label = f"{name} N={count} E={exposures}"
        trained = self._score(items, self._recall(label, folder, items, "trained"))
        quantised = {
            weights: self._score(items, self._recall(f"{label} {weights}", folder, items, "trained", weights))
            for weights in self.settings.quantised_list
        }
        control = self._score(self.pool.control(), self._recall(label, folder, self.pool.control(), "control"))
        compared = None
        if reasoning_before is not None:
            after = self._reasoning(label, folder)
            paired = paired_comparison(reasoning_before, after)
            compared = {
                "before": paired.accuracy_a, "after": paired.accuracy_b, "difference": paired.difference,
                "interval": paired.interval, "broken": paired.b_losses, "fixed": paired.b_wins,
                "p_value": paired.p_value, "problems": paired.shared,
            }  # fmt: skip
        return MemoryPoint(
            model=name,
            count=count,
            exposures=exposures,
            parameters=parameters,
            trained=trained,
            control=control,
            before=self._score(items, before_rows),
            bits_per_parameter=trained.bits / parameters,
            fano_bits_per_parameter=trained.fano_bits / parameters,
            reasoning=compared,
            quantised=quantised,
            steps=done["steps"],
            final_loss=done["losses"][-1] if done["losses"] else None,
            seconds=done["seconds"],
            checkpoint=folder,
        )

    def _hf_engine(self, source: str | None, weights: str = "float") -> Engine:
        from selfimprove.engines.hf import HFEngine

        return HFEngine(model=source, device=self.settings.device, batch_size=self.settings.batch_size, weights=weights)

    def _stage(self, name: str, **depends: Any) -> str:
        text = json.dumps(depends, sort_keys=True, default=str)
        return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"

    def _corpus(self) -> list[str]:
        return [text for item in self.pool.items for text in (item.prompt, item.value)]

    def _base(self, model: str | None) -> str | None:
        """The checkpoint every point of this model starts from: a fresh scratch model, the model with its
        word-level vocabulary extended to the pool's text, or the model as given."""
        from selfimprove.training.tokenizer import extend_word_level, is_word_level, missing_pieces

        scratch = SCRATCH.match(model or "")
        pool_identity = [self.settings.items, len(self.pool.items), self.settings.seed, self.settings.max_chars]
        if scratch:
            folder = self.work / self._stage(f"scratch-{scratch[1]}x{scratch[2]}", pool=pool_identity)
            if not (folder / "config.json").is_file():
                self._build_scratch(folder, int(scratch[1]), int(scratch[2]))
            return str(folder)
        if model is not None and (Path(model) / "config.json").is_file():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model)
            if is_word_level(tokenizer) and missing_pieces(tokenizer, self._corpus()):
                stage = self._stage(f"extended-{_slug(model_label(model))}", model=model, pool=pool_identity)
                folder = self.work / stage
                if not (folder / "config.json").is_file():
                    network, _ = load_for_training(model)
                    extended = extend_word_level(tokenizer, self._corpus())
                    network.resize_token_embeddings(len(extended))
                    self.log(f"{model}: vocabulary extended by {len(extended) - len(tokenizer)} pieces of the items")
                    _save_checkpoint(folder, network, extended)
                return str(folder)
        return model

    def _build_scratch(self, folder: Path, hidden: int, layers: int) -> None:
        from selfimprove.training.testbed import TestbedSettings, build_model
        from selfimprove.training.tokenizer import extend_word_level, word_digit_tokenizer

        tokenizer = extend_word_level(word_digit_tokenizer(self._corpus()), self._corpus())
        shape = TestbedSettings(hidden=hidden, layers=layers, heads=max(1, hidden // 32), seed=self.settings.seed)
        network = build_model(tokenizer, shape)
        _save_checkpoint(folder, network, tokenizer)

    def _parameters(self, base: str | None) -> int:
        from selfimprove.engines.hf import load_causal_lm

        network, _, _ = load_causal_lm(base)
        return int(network.num_parameters())

    def _train(
        self, name: str, base: str | None, items: list[MemoryItem], exposures: int, scratch: bool
    ) -> tuple[str, dict]:
        """Fine-tune `base` on the items for `exposures` epochs (a scratch model: all weights by default)."""
        overrides = dict(self.sft) if isinstance(self.sft, dict) else {}
        if scratch and not isinstance(self.sft, SFTSettings):
            overrides.setdefault("lora_r", 0)
        identity = asdict(self.sft) if isinstance(self.sft, SFTSettings) else dict(sorted(overrides.items()))
        data = [(item.id, item.prompt, item.value) for item in items]
        stage = self._stage(f"memorise-{_slug(name)}-n{len(items)}-e{exposures}", base=base, data=data, sft=identity)
        folder = self.work / stage
        if not (folder / "done.json").is_file():
            network, tokenizer = load_for_training(base)
            given = self.sft if isinstance(self.sft, SFTSettings) else overrides
            settings = SFTSettings(
                **{**asdict(resolve_sft(given, network.num_parameters())), "epochs": float(exposures)}
            )
            self.log(f"{name}: memorising {len(items)} items, {exposures} exposures")
            rows = [{"prompt": item.prompt, "completion": item.value} for item in items]
            finetune(network, tokenizer, rows, folder, settings)
            del network
        return str(folder / "merged"), json.loads((folder / "done.json").read_text())

    def _recall(
        self, label: str, model: str | None, items: list[MemoryItem], role: str, weights: str = "float"
    ) -> dict[str, str | None]:
        """Item id -> the model's greedy generation from the item's key (a run in the store)."""
        started = time.perf_counter()
        engine = self.make_engine(model) if weights == "float" else self.make_engine(model, weights=weights)
        try:
            tokens = self.settings.max_tokens or max(engine.count_tokens(item.value) for item in items) + 8
            strategy = ChainOfThought(max_tokens=tokens)
            outcome = runner.execute(
                MemoryTask(items, role), strategy, engine, self.store, batch_size=self.settings.batch_size
            )
        finally:
            engine.close()
        self.seconds[f"recall {label} {role}"] = time.perf_counter() - started
        return {r["problem_id"]: r["answer"] for r in self.store.solutions(outcome.run_id)}

    def _score(self, items: list[MemoryItem], generations: dict[str, str | None]) -> RecallScore:
        return score_recall(items, [generations[item.id] for item in items], self.pool.spaces)

    def _reasoning(self, label: str, model: str | None) -> list[bool] | None:
        """Greedy correctness on the first `reasoning` arithmetic test problems; None when not measured (a
        scratch model, which has never seen arithmetic, is not asked)."""
        s = self.settings
        if s.reasoning == 0:
            return None
        started = time.perf_counter()
        task = ArithmeticTask(level=s.reasoning_level, shots=s.reasoning_shots)
        engine = self.make_engine(model)
        try:
            strategy = ChainOfThought(max_tokens=128)
            outcome = runner.execute(task, strategy, engine, self.store, limit=s.reasoning, batch_size=s.batch_size)
        finally:
            engine.close()
        self.seconds[f"reasoning {label}"] = time.perf_counter() - started
        return [bool(r["correct"]) for r in self.store.solutions(outcome.run_id)]

    def _save(self, report: MemoryReport) -> None:
        from selfimprove.reports.memory import render_memory

        report.seconds = dict(self.seconds)
        atomic_write_text(self.work / "report.json", json.dumps(asdict(report), indent=2))
        atomic_write_text(self.work / "report.html", render_memory(report))


def model_label(model: str | None) -> str:
    """A short name: `weak2/merged` for a checkpoint's merged folder, the file or folder name otherwise."""
    if model is None:
        return "embedded"
    if SCRATCH.match(model):
        return model
    path = Path(model)
    return f"{path.parent.name}/{path.name}" if path.name in ("merged", "adapter") else path.name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "model"


def _save_checkpoint(folder: Path, network: Any, tokenizer: Any) -> None:
    with atomic_path(folder, directory=True) as partial:
        network.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))


def memory(
    models: list[str | None],
    out: str | Path,
    settings: MemorySettings | None = None,
    sft: SFTSettings | dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> MemoryReport:
    """Run the memory study (see the module's docstring) into `out`; re-running resumes."""
    study = MemoryStudy(models, out, settings, sft, log=log)
    try:
        return study.run()
    finally:
        study.store.close()
