"""Process reward training: a token classifier (right / wrong) read at the last token of every step, trained
with transformers' Trainer on step labels (`rewards/process.py`). TRL's PRMTrainer, which did this, left TRL
(it is in neither `trl` nor `trl.experimental` at 1.16), so the few lines of data preparation are here and the
loop is transformers'. Steps without a label are not trained on (label −100)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.files import atomic_path
from selfimprove.core.validation import require_range
from selfimprove.rewards.process import (
    PROCESS,
    ProcessRewardModel,
    arithmetic_step_labels,
    encode_steps,
    split_steps,
    write_process_manifest,
)
from selfimprove.runs.store import RunStore
from selfimprove.tasks.base import Task
from selfimprove.training.reward_models import _graded_samples, resolve_base
from selfimprove.training.sft import _last_checkpoint


@dataclass(frozen=True)
class StepExample:
    """A prompt, a path cut into steps, and each step's label (None: unknown, not trained on)."""

    prompt: str
    steps: tuple[str, ...]
    labels: tuple[bool | None, ...]


@dataclass
class ProcessTrainSettings:
    """How a process reward model is trained."""

    epochs: float = 2.0
    """Passes over the training paths."""
    learning_rate: float = 1e-4
    batch_size: int = 16
    """Paths per step."""
    max_length: int = 1024
    """Longest prompt + path in tokens (a longer one loses its prompt's start)."""
    dev_share: float = 0.1
    """Share of prompts held out to measure step accuracy."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dev_share < 1.0:
            raise ConfigError(f"--dev-share must be in [0, 1), got {self.dev_share}")
        for name in ("epochs", "learning_rate", "batch_size", "max_length"):
            require_range(name, getattr(self, name), 0, low_excluded=True)


@dataclass
class ProcessTrainReport:
    path: Path
    train_paths: int
    dev_paths: int
    losses: list[float]
    dev_step_accuracy: float | None
    """Share of labelled held-out steps whose predicted class (p(right) > 0.5) matches the label."""
    seconds: float


def step_examples_from_run(store: RunStore, run_id: str, task: Task) -> list[StepExample]:
    """Every distinct graded path of a run, cut into steps and labelled by `arithmetic_step_labels`."""
    examples = []
    for prompt, text, correct in _graded_samples(store, run_id, task):
        steps = split_steps(text)
        if steps:
            examples.append(StepExample(prompt, tuple(steps), tuple(arithmetic_step_labels(steps, correct))))
    return list(dict.fromkeys(examples))


def process_reward_train(
    base: str | None,
    examples: Sequence[StepExample],
    out: str | Path,
    settings: ProcessTrainSettings | None = None,
    progress: Callable[[str], None] = print,
) -> ProcessTrainReport:
    """Train a process reward model from `base` on `examples`; write it to `out` (done when out/process.json is)."""
    settings = settings or ProcessTrainSettings()
    out = Path(out)
    if (out / PROCESS).is_file():
        record = json.loads((out / PROCESS).read_text())
        return ProcessTrainReport(out, record["train_paths"], record["dev_paths"], record["losses"],
                                  record["dev_step_accuracy"], record["seconds"])  # fmt: skip
    labelled = [e for e in examples if any(label is not None for label in e.labels)]
    if len(labelled) < 2:
        raise ConfigError(f"process reward training needs at least 2 paths with step labels, got {len(labelled)}")
    prompts = sorted({e.prompt for e in labelled})
    random.Random(settings.seed).shuffle(prompts)
    held = set(prompts[: round(settings.dev_share * len(prompts))])
    train = [e for e in labelled if e.prompt not in held]
    dev = [e for e in labelled if e.prompt in held]
    progress(f"process reward model: {len(train)} training paths, {len(dev)} held out")
    started = time.perf_counter()
    folder = resolve_base(base)
    checkpoints = out.with_name(out.name + ".checkpoints")
    trainer = _trainer(folder, train, checkpoints, settings)
    last = _last_checkpoint(checkpoints)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    with atomic_path(out, directory=True) as partial:
        trainer.model.save_pretrained(str(partial))
        trainer.processing_class.save_pretrained(str(partial))
    write_process_manifest(out, {"base": folder, "loss": "token classification at step ends"})
    accuracy = step_accuracy(ProcessRewardModel(str(out), max_length=settings.max_length), dev) if dev else None
    seconds = time.perf_counter() - started
    record = {
        "base": folder,
        "train_paths": len(train),
        "dev_paths": len(dev),
        "losses": losses,
        "dev_step_accuracy": accuracy,
        "seconds": seconds,
        "settings": asdict(settings),
    }
    write_process_manifest(out, record)
    return ProcessTrainReport(out, len(train), len(dev), losses, accuracy, seconds)


def step_accuracy(model: ProcessRewardModel, examples: Sequence[StepExample]) -> float:
    right = total = 0
    for example in examples:
        (probabilities,) = model.step_probabilities(example.prompt, ["".join(example.steps)])
        for p, label in zip(probabilities, example.labels):
            if label is not None:
                total += 1
                right += (p > 0.5) == label
    return right / total if total else float("nan")


def _trainer(base: str, train: Sequence[StepExample], checkpoints: Path, settings: ProcessTrainSettings) -> Any:
    import datasets
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from selfimprove.training.sft import _replace_printer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    set_seed(settings.seed)
    model = AutoModelForTokenClassification.from_pretrained(base, num_labels=2, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    rows = []
    for example in train:
        ids, ends = encode_steps(tokenizer, example.prompt, example.steps, settings.max_length)
        labels = [-100] * len(ids)
        for end, label in zip(ends, example.labels[len(example.labels) - len(ends) :]):
            if label is not None:
                labels[end] = int(label)
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    on_cuda = torch.cuda.is_available()
    steps = max(1, int(len(rows) * settings.epochs / settings.batch_size))
    args = TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        seed=settings.seed,
        logging_steps=max(1, steps // 20),
        save_steps=200,
        save_total_limit=1,
        report_to=[],
        disable_tqdm=True,
        use_cpu=not on_cuda,
        bf16=on_cuda,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
    )
    _replace_printer(trainer)
    return trainer
