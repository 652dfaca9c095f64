"""`selfimprove testbed`: a small transformer trained from scratch on the arithmetic task's easy levels.

Why: the embedded Gemma 3 270M cannot do arithmetic, so it cannot show self-improvement. This
model can: trained on labeled problems of the easy levels only, it is then improved by LMSI on
unlabeled problems one level harder (the easy-to-hard setting of Lee et al. 2025, "Self-Improving
Transformers Overcome Easy-to-Hard and Length Generalization Challenges").

The model is a Llama-architecture decoder (transformers config) over a word-and-digit tokenizer
fitted on the task's text (every digit its own token; `tokenizer.py`),
trained zero-shot ("Question: q / Answer:" → the worked solution) with TRL's SFTTrainer, all
weights, on CPU. It is saved as an ordinary Hugging Face checkpoint that the `hf` engine loads
(`--engine hf --model FOLDER`), evaluated with the arithmetic task's `-O shots=0`.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.strategies.self_correct import DEFAULT_INSTRUCTION, REVISION_CUE
from selfimprove.tasks.arithmetic import ArithmeticTask, parse_levels
from selfimprove.tasks.arithmetic_solutions import parse_formats, random_solution, write_solution
from selfimprove.tasks.jsonl import write_jsonl
from selfimprove.training.formats import STEP_BY_STEP, zero_shot_prompt
from selfimprove.training.sft import SFTResult, SFTSettings, finetune
from selfimprove.training.tokenizer import word_digit_tokenizer


@dataclass
class TestbedSettings:
    """The testbed model and its training: a small transformer trained from scratch on easy arithmetic."""

    levels: str = "1-2"
    """Arithmetic levels it is trained on, with labels."""
    examples: int = 40000
    """Labeled training problems."""
    hidden: int = 128
    """Hidden size."""
    layers: int = 4
    """Decoder layers."""
    heads: int = 4
    """Attention heads."""
    epochs: float = 2.0
    """Passes over the training problems."""
    learning_rate: float = 1e-3
    """Peak learning rate."""
    batch_size: int = 32
    """Problems per step."""
    max_length: int = 160
    """Longest training sequence in tokens (prompt and solution)."""
    seed: int = 0
    """Data and initialisation seed."""
    formats: str = "chain"
    """Worked-solution formats, comma-separated (chain, words, grouped, places, reordered, or all): each training
    example gets one drawn at random, so sampled paths differ in structure (chain alone: the task's own format)."""
    positions: str = "rope"
    """Position encoding: rope (a Llama) or nope (no positional encoding in any layer: SmolLM3's architecture
    with every layer a NoPE layer); NoPE decoders extrapolate to longer inputs better (Kazemnejad et al. 2023)."""


@dataclass
class TestbedEvaluation:
    """What `testbed` measures once the model is trained."""

    evaluate: int = 50
    """Test problems per level evaluated afterwards, greedy (0: none)."""
    eval_levels: str = "1-3"
    """Levels evaluated afterwards (trained and held-out ones)."""


@dataclass
class TestbedReport:
    """The trained testbed and its greedy accuracy per level."""

    merged: Path
    """The trained model (a transformers checkpoint folder): `--model` for lmsi, score, run --engine hf."""
    steps: int
    seconds: float
    losses: list[float]
    accuracy: dict[int, float | None] = field(default_factory=dict)
    """Level -> greedy accuracy on its first `evaluate` test problems."""
    trained_levels: list[int] = field(default_factory=list)


def testbed_rows(levels: str, examples: int, seed: int = 0, formats: str = "chain") -> list[dict]:
    """Labeled train problems of `levels` as zero-shot prompt/completion pairs: the worked solution, in one of
    `formats` drawn per example (seeded)."""
    task = ArithmeticTask(level=levels, seed=seed, shots=0)
    chosen = parse_formats(formats)
    rng = random.Random(f"testbed-formats-{seed}")
    rows = []
    for p in task.problems("train", limit=examples):
        solution = (
            p.metadata["solution"] if chosen == ("chain",) else random_solution(p.metadata["structure"], chosen, rng)
        )
        rows.append({"prompt": zero_shot_prompt(p.question, False), "completion": " " + solution})
    return rows


def testbed_tokenizer(seed: int = 0, formats: str = "chain") -> Any:
    """Fitted on every level's train text (in every format asked for) plus the phrases of LMSI's training formats
    and of the self-correct transcript (new words get new ids after the old ones)."""
    task = ArithmeticTask(level="1-6", seed=seed, shots=0)
    corpus = [f"{p.question} {p.metadata['solution']}" for p in task.problems("train", limit=5000)]
    extra = [name for name in parse_formats(formats) if name != "chain"]
    corpus += [
        write_solution(p.metadata["structure"], name) for p in task.problems("train", limit=500) for name in extra
    ]
    corpus.append(f"{zero_shot_prompt('q', True)} {STEP_BY_STEP} The answer is")
    corpus.append(f"{DEFAULT_INSTRUCTION}\n{REVISION_CUE}")  # the self-correct transcript (SCoRe) in words, not <unk>
    return word_digit_tokenizer(corpus)


POSITIONS = ("rope", "nope")


def build_model(tokenizer: Any, settings: TestbedSettings) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, SmolLM3Config, SmolLM3ForCausalLM

    if settings.positions not in POSITIONS:
        raise ConfigError(f"testbed: positions must be one of {', '.join(POSITIONS)}, got {settings.positions!r}")
    torch.manual_seed(settings.seed)
    shape = dict(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden,
        num_hidden_layers=settings.layers,
        num_attention_heads=settings.heads,
        num_key_value_heads=settings.heads,
        intermediate_size=4 * settings.hidden,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    if settings.positions == "nope":
        config = SmolLM3Config(**shape, no_rope_layers=[0] * settings.layers, use_sliding_window=False)
        return SmolLM3ForCausalLM(config)
    return LlamaForCausalLM(LlamaConfig(**shape))


def train_testbed(out: Path, settings: TestbedSettings | None = None) -> SFTResult:
    """Train (or, when `out` holds a finished one, reuse) the testbed; the checkpoint is `out/merged`."""
    settings = settings or TestbedSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "testbed.json").write_text(json.dumps(asdict(settings), indent=2))
    tokenizer = testbed_tokenizer(settings.seed, settings.formats)
    model = build_model(tokenizer, settings)
    rows = testbed_rows(settings.levels, settings.examples, settings.seed, settings.formats)
    write_jsonl(out / "train.jsonl", rows)  # the labeled easy data, for `lmsi --replay`
    sft = SFTSettings(
        epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        max_length=settings.max_length,
        lora_r=0,
        warmup=0.02,
        save_steps=500,
        seed=settings.seed,
    )
    return finetune(model, tokenizer, rows, out, sft)


def testbed(
    out: str | Path, settings: TestbedSettings | None = None, evaluation: TestbedEvaluation | None = None
) -> TestbedReport:
    """Train the testbed into `out` (reused when already trained there), then its greedy accuracy per level."""
    from selfimprove.engines.hf import HFEngine
    from selfimprove.runs import metrics, runner
    from selfimprove.runs.store import RunStore
    from selfimprove.strategies.cot import ChainOfThought

    settings, evaluation, out = settings or TestbedSettings(), evaluation or TestbedEvaluation(), Path(out)
    result = train_testbed(out, settings)
    report = TestbedReport(result.merged, result.steps, result.seconds, result.losses)
    report.trained_levels = parse_levels(settings.levels)
    if evaluation.evaluate <= 0:
        return report
    engine = HFEngine(model=str(result.merged), batch_size=64)
    store = RunStore(out / "runs.sqlite")
    try:
        for level in parse_levels(evaluation.eval_levels):
            task = ArithmeticTask(level=level, shots=0)
            outcome = runner.execute(task, ChainOfThought(max_tokens=96), engine, store, limit=evaluation.evaluate)
            report.accuracy[level] = metrics.compute(store.solutions(outcome.run_id)).accuracy
    finally:
        engine.close()
        store.close()
    return report
