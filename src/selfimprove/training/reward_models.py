"""`reward train`: reward models (one, or an ensemble of K) trained on preferences with the pairwise
(Bradley–Terry, through TRL's RewardTrainer) or the listwise (Plackett–Luce) loss.

Preferences come from a user's JSONL or from a run's graded samples (for one problem, a correct answer is
preferred to a wrong one). A share of them is held out (`dev_share`) with its labels left clean, so the
dev accuracy measures agreement with the truth even when the training labels carry noise on purpose.

Members differ by seed (the reward head's initialisation and the data order), by data order alone, or by
base model. Each member is written to `<out>/member-<i>/` with `reward.json` (its settings, losses, dev
accuracy and the mean/std of its rewards on its training responses, used to standardise its scores); a
member that has one is done, so an interrupted run resumes with the next member (and an interrupted
member from its last checkpoint). `<out>/ensemble.json` lists the members: `load_reward(out, aggregator)`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.files import atomic_path, atomic_write_text
from selfimprove.core.validation import require_range
from selfimprove.rewards.aggregate import AGGREGATORS, aggregate
from selfimprove.rewards.model import CALIBRATION, ENSEMBLE, RewardModel
from selfimprove.rewards.preferences import Preference, with_label_noise
from selfimprove.runs.store import RunStore
from selfimprove.tasks.base import Task
from selfimprove.training.processes import is_main, wait_for_file
from selfimprove.training.sft import _last_checkpoint

log = logging.getLogger(__name__)

LOSSES = ("pairwise", "listwise")
VARIATIONS = ("seed", "order")


@dataclass
class RewardTrainSettings:
    """How reward models are trained (one member, or an ensemble)."""

    loss: str = "pairwise"
    """pairwise (Bradley–Terry, TRL's RewardTrainer; lists are split into their pairs) or listwise
    (Plackett–Luce over each list; equal to pairwise on lists of two)."""
    members: int = 1
    """Ensemble size K."""
    vary: str = "seed"
    """What differs between members: seed (the reward head's initialisation and the data order) or order
    (the data order only). Different base models: `bases`."""
    bases: tuple[str, ...] = ()
    """Base checkpoints for the members, taken in turn (comma-separated on the command line); empty: the model
    given."""
    epochs: float = 2.0
    """Passes over the training preferences."""
    learning_rate: float = 1e-4
    batch_size: int = 8
    """Preferences per step (pairs or lists)."""
    max_length: int = 512
    """Longest prompt + response in tokens; longer preferences are dropped from training."""
    lora_r: int = 0
    """LoRA rank; 0 trains every weight."""
    lora_alpha: int = 16
    center_rewards: float = 0.0
    """Weight of TRL's reward-centering term (Eisenstein et al. 2023 use 0.01); 0: off."""
    label_noise: float = 0.0
    """Share of training preferences whose ranking is reversed on purpose, in [0, 1]."""
    dev_share: float = 0.1
    """Share of preferences held out, with clean labels, to measure each member's accuracy."""
    seed: int = 0
    save_steps: int = 200
    """Checkpoint every this many steps (an interrupted member resumes from the last)."""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.vary not in VARIATIONS:
            raise ConfigError(f"--vary must be one of {', '.join(VARIATIONS)}, got {self.vary!r}")
        require_range("members", self.members, 1)
        if not 0.0 <= self.label_noise <= 1.0:
            raise ConfigError(f"--label-noise must be in [0, 1], got {self.label_noise}")
        if not 0.0 <= self.dev_share < 1.0:
            raise ConfigError(f"--dev-share must be in [0, 1), got {self.dev_share}")
        for name in ("epochs", "learning_rate", "batch_size", "max_length"):
            require_range(name, getattr(self, name), 0, low_excluded=True)


@dataclass
class MemberReport:
    path: Path
    base: str
    seed: int
    losses: list[float]
    dev_accuracy: float | None
    """Share of held-out stated pairs (better, worse) the member ranks right."""
    seconds: float


@dataclass
class RewardTrainReport:
    out: Path
    train_preferences: int
    dev_preferences: int
    flipped: int
    """Training preferences whose labels were reversed (label noise)."""
    members: list[MemberReport]
    ensemble_dev_accuracy: dict[str, float] = field(default_factory=dict)
    """Dev accuracy of the whole ensemble under each aggregator (K > 1)."""


def reward_train(
    base: str | None,
    preferences: Sequence[Preference],
    out: str | Path,
    settings: RewardTrainSettings | None = None,
    progress: Callable[[str], None] = print,
) -> RewardTrainReport:
    """Train `settings.members` reward models from `base` (a checkpoint folder, hub name, .gguf, or None for
    the embedded model) on `preferences`; write them under `out` and report their held-out accuracy."""
    settings = settings or RewardTrainSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if len(preferences) < 2:
        raise ConfigError(f"reward training needs at least 2 preferences, got {len(preferences)}")
    train, dev = _split(preferences, settings.dev_share, settings.seed)
    noisy = with_label_noise(train, settings.label_noise, settings.seed)
    flipped = sum(a != b for a, b in zip(train, noisy))
    progress(f"reward models: {len(train)} training preferences ({flipped} flipped), {len(dev)} held out")
    bases = settings.bases or (base,)
    names, reports = [], []
    for i in range(settings.members):
        name = f"member-{i}"
        names.append(name)
        member_base = resolve_base(bases[i % len(bases)])
        progress(f"member {i + 1}/{settings.members} from {member_base}")
        reports.append(_train_member(member_base, noisy, dev, out / name, settings, i))
    report = RewardTrainReport(out, len(train), len(dev), flipped, reports)
    if not is_main():
        return report  # the main process writes the ensemble and measures it
    atomic_write_text(out / ENSEMBLE, json.dumps({"members": names, "settings": _jsonable(settings)}, indent=2))
    if settings.members > 1 and dev:
        members = [RewardModel(str(r.path)) for r in reports]
        report.ensemble_dev_accuracy = ensemble_accuracy(members, dev)
    return report


def resolve_base(source: str | None) -> str:
    """A folder from_pretrained can read: a GGUF (or the embedded model) is dequantised once and cached."""
    from selfimprove.engines.hf import cached_gguf_checkpoint, resolve_source

    folder, gguf = resolve_source(source)
    return str(cached_gguf_checkpoint(gguf)) if gguf is not None else folder


def _train_member(
    base: str, train: list[Preference], dev: list[Preference], folder: Path, settings: RewardTrainSettings, index: int
) -> MemberReport:
    calibration = folder / CALIBRATION
    if calibration.is_file():
        return _member_report(folder, calibration)
    started = time.perf_counter()
    model_seed = settings.seed + index if settings.vary == "seed" else settings.seed
    data_seed = settings.seed + index
    checkpoints = folder.with_name(folder.name + ".checkpoints")
    trainer = _trainer(base, train, checkpoints, settings, model_seed, data_seed)
    if trainer.is_fsdp_enabled or (
        trainer.is_deepspeed_enabled and trainer.accelerator.state.deepspeed_plugin.zero_stage == 3
    ):
        raise ConfigError(
            "reward training shards no parameters: launch it with configs/accelerate/ddp.yaml or "
            "deepspeed-zero2.yaml (reward models here are small enough to replicate), not FSDP or ZeRO-3"
        )
    last = _last_checkpoint(checkpoints)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if not is_main():  # under accelerate launch the main process saves and calibrates the member
        wait_for_file(calibration)
        return _member_report(folder, calibration)
    model = trainer.model
    if settings.lora_r > 0:
        model = model.merge_and_unload()
    with atomic_path(folder, directory=True) as partial:
        model.save_pretrained(str(partial))
        trainer.processing_class.save_pretrained(str(partial))
    scorer = RewardModel(str(folder), standardise=False)
    responses = sorted({(p.prompt, r) for p in train for r in p.responses})[:4000]
    rewards = scorer.score_texts([p for p, _ in responses], [r for _, r in responses])
    mean = sum(rewards) / len(rewards)
    std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    dev_accuracy = pair_accuracy([scorer], dev) if dev else None
    seconds = time.perf_counter() - started
    record = {
        "base": base,
        "seed": model_seed,
        "data_seed": data_seed,
        "loss": settings.loss,
        "losses": losses,
        "dev_accuracy": dev_accuracy,
        "reward_mean": mean,
        "reward_std": std,
        "seconds": seconds,
        "settings": _jsonable(settings),
    }
    atomic_write_text(calibration, json.dumps(record, indent=2))
    return MemberReport(folder, base, model_seed, losses, dev_accuracy, seconds)


def _member_report(folder: Path, calibration: Path) -> MemberReport:
    record = json.loads(calibration.read_text())
    return MemberReport(
        folder, record["base"], record["seed"], record["losses"], record["dev_accuracy"], record["seconds"]
    )


def _trainer(
    base: str,
    train: list[Preference],
    checkpoints: Path,
    settings: RewardTrainSettings,
    model_seed: int,
    data_seed: int,
) -> Any:
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    from trl import RewardConfig, RewardTrainer

    from selfimprove.training.reward_listwise import ListwiseRewardTrainer, RankedListCollator
    from selfimprove.training.sft import _replace_printer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    set_seed(model_seed)  # the reward head is initialised here
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    on_cuda = torch.cuda.is_available()
    steps = max(1, int(len(train) * settings.epochs / settings.batch_size))
    config = RewardConfig(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        max_length=settings.max_length,
        center_rewards_coefficient=settings.center_rewards or None,
        seed=model_seed,
        data_seed=data_seed,
        logging_steps=max(1, steps // 20),
        save_steps=settings.save_steps,
        save_total_limit=1,
        report_to=[],
        disable_tqdm=True,
        use_cpu=not on_cuda,
        bf16=on_cuda,
        remove_unused_columns=False,
    )
    peft_config = None
    if settings.lora_r > 0:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=settings.lora_r, lora_alpha=settings.lora_alpha, target_modules="all-linear", task_type="SEQ_CLS"
        )
    if settings.loss == "listwise":
        rows = [{"prompt": p.prompt, "responses": list(p.responses), "ranks": list(p.ranks)} for p in train]
        trainer = ListwiseRewardTrainer(
            model=model,
            args=config,
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=tokenizer,
            data_collator=RankedListCollator(tokenizer.pad_token_id),
            peft_config=peft_config,
        )
    else:
        rows = [{"prompt": p.prompt, "chosen": c, "rejected": r} for p in train for c, r in p.pairs()]
        trainer = RewardTrainer(
            model=model,
            args=config,
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=peft_config,
        )
    _replace_printer(trainer)
    return trainer


def pair_accuracy(members: Sequence[RewardModel], preferences: Sequence[Preference], rule: str = "mean") -> float:
    """Share of the stated (better, worse) pairs that the aggregated reward ranks right (a tie counts half)."""
    return ensemble_accuracy(members, preferences, rules=(rule,))[rule]


def ensemble_accuracy(
    members: Sequence[RewardModel], preferences: Sequence[Preference], rules: Sequence[str] = AGGREGATORS
) -> dict[str, float]:
    """Pair accuracy under each aggregator; every member scores every response once."""
    scored: list[list[list[float]]] = []  # preference -> response -> member rewards
    for preference in preferences:
        per_member = [
            m.score_texts([preference.prompt] * len(preference.responses), preference.responses) for m in members
        ]
        scored.append([[column[i] for column in per_member] for i in range(len(preference.responses))])
    accuracy = {}
    for rule in rules:
        right = total = 0.0
        for preference, rewards in zip(preferences, scored):
            values = [aggregate(r, rule) for r in rewards]
            for i, rank_i in enumerate(preference.ranks):
                for j, rank_j in enumerate(preference.ranks):
                    if rank_i < rank_j:
                        total += 1
                        right += 1.0 if values[i] > values[j] else 0.5 if values[i] == values[j] else 0.0
        accuracy[rule] = right / total if total else float("nan")
    return accuracy


def preferences_from_run(
    store: RunStore, run_id: str, task: Task, per_problem: int = 8, list_size: int = 2, seed: int = 0
) -> list[Preference]:
    """Preferences from a run's graded samples: for each problem with both right and wrong answers, up to
    `per_problem` preferences of `list_size` distinct responses (at least one right and one wrong; right ranked
    0, wrong 1, ties within each). The problems' prompts are rebuilt with `task`, which must be the run's task."""
    if list_size < 2:
        raise ConfigError(f"list_size must be >= 2, got {list_size}")
    rng = random.Random(seed)
    preferences = []
    for prompt, right, wrong in _graded_problems(store, run_id, task):
        if not right or not wrong:
            continue
        for _ in range(per_problem):
            k_right = rng.randint(1, min(len(right), list_size - 1))
            k_wrong = min(len(wrong), list_size - k_right)
            chosen = rng.sample(right, k_right) + rng.sample(wrong, k_wrong)
            preferences.append(Preference(prompt, tuple(chosen), tuple([0] * k_right + [1] * k_wrong)))
    return list(dict.fromkeys(preferences))


def _graded_problems(store: RunStore, run_id: str, task: Task) -> Iterator[tuple[str, list[str], list[str]]]:
    """(prompt, distinct right texts, distinct wrong texts) of each problem a run solved. The prompts are
    rebuilt with `task`, which must be the run's task."""
    config = store.config(run_id)
    split = config.get("task", {}).get("split", "test")
    if split == "test":
        log.warning("run %s solved the test split: a reward model trained on it must not be evaluated there", run_id)
    rows = store.solutions(run_id)
    # A run solved the first problems of its split (a generated task's split never ends): read as many.
    problems = {p.id: p for p in task.problems(split, limit=max((r["position"] for r in rows), default=-1) + 1)}
    for row in rows:
        problem = problems.get(row["problem_id"])
        if problem is None:
            continue
        prompt = task.format_prompt(problem)
        if not isinstance(prompt, str):
            raise ConfigError(f"task {task.name!r} writes chat prompts; reward training takes text prompts")
        yield (prompt, *_graded_texts(store, run_id, row))


def _graded_samples(store: RunStore, run_id: str, task: Task) -> Iterator[tuple[str, str, bool]]:
    """(prompt, text, right) for each distinct graded sample of a run."""
    for prompt, right, wrong in _graded_problems(store, run_id, task):
        yield from ((prompt, text, True) for text in right)
        yield from ((prompt, text, False) for text in wrong)


def _graded_texts(store: RunStore, run_id: str, row: dict) -> tuple[list[str], list[str]]:
    """The distinct texts of a solution's graded samples, split into right and wrong."""
    right: dict[str, None] = {}
    wrong: dict[str, None] = {}
    by_step: dict[str, dict[int, Any]] = {}
    for sample in row["samples"]:
        if sample.get("auxiliary") or sample["correct"] is None:
            continue
        step = sample["step"]
        if step not in by_step:
            by_step[step] = store.completions(run_id, row["problem_id"], step)
        completion = by_step[step].get(sample["index"])
        if completion is not None and completion.text.strip():
            (right if sample["correct"] else wrong)[completion.text] = None
    return list(right), list(wrong)


def _split(preferences: Sequence[Preference], dev_share: float, seed: int) -> tuple[list[Preference], list[Preference]]:
    """Held-out preferences by prompt, so no held-out prompt is seen in training."""
    prompts = sorted({p.prompt for p in preferences})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: round(dev_share * len(prompts))])
    return [p for p in preferences if p.prompt not in held], [p for p in preferences if p.prompt in held]


def _jsonable(settings: RewardTrainSettings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}
