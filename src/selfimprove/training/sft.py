"""Supervised fine-tuning on prompt/completion pairs with TRL's SFTTrainer, LoRA through PEFT.

The loss is on the completion only (TRL's default for prompt/completion data). Checkpoints go to
`<out>/checkpoints` and a re-run resumes from the last one; the finished adapter is saved to
`<out>/adapter` and merged into a plain checkpoint at `<out>/merged`, which every engine that reads
Hugging Face checkpoints (`hf`) loads like any other model. `done.json` marks a finished run, so a
re-run of a finished stage does nothing.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.files import atomic_path
from selfimprove.training.processes import is_main, processes, wait_for_everyone

log = logging.getLogger(__name__)


@dataclass
class SFTSettings:
    """Fine-tuning hyperparameters. `lora_r = 0` trains every weight instead of an adapter."""

    epochs: float = 2.0
    learning_rate: float = 2e-4
    batch_size: int = 8
    gradient_accumulation: int = 1
    max_length: int = 512
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str | list[str] = "all-linear"
    warmup: float = 0.05
    """Warm-up: a fraction of the steps when below 1, else a step count."""
    weight_decay: float = 0.0
    logging_steps: int = 0
    """Log the loss every this many steps; 0: about 20 times per run."""
    save_steps: int = 50
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """Further `SFTConfig` fields, passed as they are."""

    @classmethod
    def scaled_to(cls, parameters: int, **overrides: Any) -> SFTSettings:
        """Defaults by model size: small models take a larger learning rate and a smaller adapter."""
        if parameters < 50_000_000:
            base = cls(learning_rate=1e-3, lora_r=8, lora_alpha=16)
        elif parameters < 1_000_000_000:
            base = cls(learning_rate=2e-4, lora_r=16, lora_alpha=32)
        else:
            base = cls(learning_rate=1e-4, lora_r=16, lora_alpha=32, batch_size=4, gradient_accumulation=4)
        unknown = set(overrides) - set(asdict(base))
        if unknown:
            raise ConfigError(f"unknown fine-tuning setting(s): {', '.join(sorted(unknown))}")
        for key, value in overrides.items():
            setattr(base, key, value)
        return base


def resolve_sft(sft: SFTSettings | dict[str, Any] | None, parameters: int) -> SFTSettings:
    """Settings given as they are, or overrides of the defaults scaled to a model of `parameters` weights."""
    return sft if isinstance(sft, SFTSettings) else SFTSettings.scaled_to(parameters, **(sft or {}))


@dataclass
class SFTResult:
    merged: Path
    adapter: Path | None
    losses: list[float]
    steps: int
    seconds: float


def finetune(
    model: Any,
    tokenizer: Any,
    rows: list[dict],
    out: Path,
    settings: SFTSettings,
    loss: Any = None,
    callbacks: tuple[Any, ...] = (),
) -> SFTResult:
    """Fine-tune `model` on rows of {"prompt", "completion"}; save adapter and merged checkpoint under `out`.
    `loss`: a `compute_loss_func(outputs, labels, num_items_in_batch)` replacing the cross-entropy (e.g.
    `confidence_loss.ConfidenceLoss`); `callbacks`: further transformers TrainerCallbacks."""
    import time

    import datasets
    from trl import SFTConfig, SFTTrainer

    out = Path(out)
    done = out / "done.json"
    if done.is_file():
        record = json.loads(done.read_text())
        return SFTResult(
            merged=out / "merged",
            adapter=out / "adapter" if record.get("adapter") else None,
            losses=record["losses"],
            steps=record["steps"],
            seconds=record["seconds"],
        )
    if not rows:
        raise ConfigError("nothing to fine-tune on: the training set is empty")
    started = time.perf_counter()
    dataset = datasets.Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    checkpoints = out / "checkpoints"
    config = SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        max_length=settings.max_length,
        warmup_steps=settings.warmup,
        weight_decay=settings.weight_decay,
        logging_steps=settings.logging_steps or _about_twenty(len(rows), settings),
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        report_to=[],
        disable_tqdm=True,
        use_cpu=not _on_cuda(model),
        bf16=_on_cuda(model),
        **settings.extra,
    )
    peft_config = None
    if settings.lora_r > 0:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=settings.lora_targets,
            task_type="CAUSAL_LM",
        )
    model.train()
    trainer_class = SFTTrainer if loss is None else _trainer_with_loss(loss)
    trainer = trainer_class(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks) or None,
    )
    _replace_printer(trainer)
    last = _last_checkpoint(checkpoints)
    if last is not None:
        log.warning("resuming fine-tuning from %s", last)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    trained = whole_model(trainer, out / "gathered")
    if not is_main():  # under accelerate launch the main process saves; the others wait for its record
        wait_for_everyone()
        return finetune(model, tokenizer, rows, out, settings, loss, callbacks)

    adapter = None
    if peft_config is not None:
        adapter = out / "adapter"
        trained.save_pretrained(str(adapter))
        trained = trained.merge_and_unload()
    trained.eval()
    with atomic_path(out / "merged", directory=True) as partial:
        trained.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
    seconds = time.perf_counter() - started
    record = {
        "losses": losses,
        "steps": trainer.state.global_step,
        "seconds": seconds,
        "adapter": adapter is not None,
        "processes": processes(),
        "settings": asdict(settings),
    }
    done.write_text(json.dumps(record, indent=2))
    wait_for_everyone()
    return SFTResult(
        merged=out / "merged", adapter=adapter, losses=losses, steps=trainer.state.global_step, seconds=seconds
    )


def whole_model(trainer: Any, folder: Path) -> Any:
    """The trained model with all its weights, on the main process (None on the others). Under DDP and ZeRO-2
    every process holds them already. Under FSDP and ZeRO-3 each holds a shard: `Trainer.save_model` gathers them
    (a collective: every process calls it; the shipped configs ask for full state dicts) into `folder`, and the
    main process loads that back: a LoRA adapter onto the base it names, which the caller merges as usual.
    Unmeasured here (no GPU was lent; see docs/scaling.md)."""
    deepspeed = trainer.is_deepspeed_enabled and trainer.accelerator.state.deepspeed_plugin.zero_stage == 3
    if not (trainer.is_fsdp_enabled or deepspeed):
        return trainer.model
    trainer.save_model(str(folder))
    if not is_main():
        return None
    if (folder / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        return AutoPeftModelForCausalLM.from_pretrained(str(folder))
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder))


def _trainer_with_loss(loss: Any) -> Any:
    """SFTTrainer whose loss is `loss(outputs, labels, num_items_in_batch)` on the model's full logits (TRL
    deprecates `compute_loss_func`, and it costs a second forward pass there)."""
    from trl import SFTTrainer

    class LossTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            forward = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**forward, use_cache=False)
            value = loss(outputs, inputs["labels"], num_items_in_batch)
            return (value, outputs) if return_outputs else value

    return LossTrainer


def _about_twenty(rows: int, settings: SFTSettings) -> int:
    steps = math.ceil(rows / (settings.batch_size * settings.gradient_accumulation)) * settings.epochs
    return max(1, int(steps) // 20)


def _replace_printer(trainer: Any) -> None:
    """One short progress line per logging step instead of transformers' raw dicts."""
    from transformers import PrinterCallback, TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - transformers' signature
            if logs and "loss" in logs:
                print(f"  step {state.global_step}/{state.max_steps}  loss {float(logs['loss']):.4f}", flush=True)

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(Progress())


def _on_cuda(model: Any) -> bool:
    return next(model.parameters()).device.type == "cuda"


def _last_checkpoint(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def load_for_training(source: str | None) -> tuple[Any, Any]:
    """(model, tokenizer) in float32 on the CPU, from a checkpoint folder, hub name, .gguf or None (embedded)."""
    from selfimprove.engines.hf import load_causal_lm

    model, tokenizer, _ = load_causal_lm(source)
    return model, tokenizer
