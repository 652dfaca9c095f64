"""`score(...)`: the whole SCoRe pipeline as one call — warm-up, SCoRe (and the single-turn baseline), then
`self-correct` on the test split before and after, side by side. The CLI's `selfimprove score` is this."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.validation import require_range
from selfimprove.runs.store import RunStore
from selfimprove.tasks.base import Task
from selfimprove.training.score import ScoreSettings, ScoreTrainer, compare_self_correction, training_curve


@dataclass
class ScorePipelineSettings:
    """What `score` does around the trainer: the warm-up before it, the baseline beside it, the evaluation after."""

    baseline: bool = False
    """Also train the single-turn RL baseline for the same steps, evaluated beside SCoRe."""
    format_warmup: int = 0
    """First fine-tune on N train problems' transcripts repeating the model's own attempt 1 (no labels)."""
    warmup_fixes: bool = False
    """In the warm-up, follow a wrong attempt 1 with the worked solution (reads labels)."""
    test_limit: int | None = None
    """Test problems of the before/after evaluation (first N; default all)."""
    device: str = "cpu"
    """cpu, or cuda (what `accelerate launch` gives this process)."""

    def __post_init__(self) -> None:
        require_range("format_warmup", self.format_warmup, 0)
        if self.test_limit is not None:
            require_range("test_limit", self.test_limit, 1)
        if self.warmup_fixes and self.format_warmup <= 0:
            raise ConfigError("--warmup-fixes changes the format warm-up: give --format-warmup N too")


@dataclass
class ScoreReport:
    """What `score` trained and measured (also written to OUT/curves.json and OUT/report.json)."""

    trained: dict[str, str] = field(default_factory=dict)
    """Name ("warm-up", "score", "single-turn") -> the merged checkpoint it wrote."""
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per trained mode: rewards, KL and edit distance of the sampled episodes by blocks of steps."""
    evaluation: list[dict[str, Any]] | None = None
    """Acc@t1, Acc@t2, Δ and flips per model (base first); None in the processes that do not evaluate."""


def score(
    task: Task,
    model: str | None,
    out: str | Path,
    settings: ScoreSettings | None = None,
    pipeline: ScorePipelineSettings | None = None,
    log: Callable[[str], None] = print,
) -> ScoreReport:
    """Train `model` (a checkpoint folder, hub name or .gguf; None: the embedded model) with SCoRe on `task`'s
    train split; resumable: re-running with the same `out` continues from its checkpoints."""
    from selfimprove.engines.hf import HFEngine

    settings = settings or ScoreSettings()
    pipeline = pipeline or ScorePipelineSettings()
    out = Path(out)
    if settings.rollout == "vllm":
        from selfimprove.training.score_vllm import require_vllm

        require_vllm()

    def make_engine(source: str | None) -> HFEngine:
        return HFEngine(model=source, device=pipeline.device)

    report = ScoreReport()
    start = model
    if pipeline.format_warmup > 0:
        start = _warm_up(task, model, out, settings, pipeline, make_engine, log)
        report.trained["warm-up"] = start
    modes = [settings.mode] + (["single-turn"] if pipeline.baseline and settings.mode != "single-turn" else [])
    for name in modes:
        trainer = ScoreTrainer(task, start, out / name, replace(settings, mode=name), device=pipeline.device, log=log)
        report.trained[name] = str(trainer.train())
        report.curves[name] = training_curve(trainer.logs())
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return report  # under accelerate launch, one process evaluates
    (out / "curves.json").write_text(json.dumps(report.curves, indent=2))
    run_store = RunStore(out / "runs.sqlite")
    try:
        report.evaluation = compare_self_correction(
            task, {"base": model, **report.trained}, run_store,
            make_engine=make_engine, limit=pipeline.test_limit, max_tokens=settings.max_tokens,
        )  # fmt: skip
    finally:
        run_store.close()
    (out / "report.json").write_text(json.dumps(report.evaluation, indent=2))
    return report


def _warm_up(
    task: Task,
    model: str | None,
    out: Path,
    settings: ScoreSettings,
    pipeline: ScorePipelineSettings,
    make_engine: Callable,
    log: Callable[[str], None],
) -> str:
    from selfimprove.training.score_warmup import format_warmup
    from selfimprove.training.sft import load_for_training

    fixes = pipeline.warmup_fixes
    what = "wrong ones followed by the worked solution" if fixes else "the model's own attempts repeated"
    log(f"format warm-up on {pipeline.format_warmup} train problems ({what})")
    folder = out / ("warmup-fixes" if pipeline.warmup_fixes else "warmup")
    return str(
        format_warmup(
            task, model, folder, pipeline.format_warmup, settings.instruction, settings.max_tokens,
            make_engine=make_engine, load_model=load_for_training, fixes=pipeline.warmup_fixes,
        )
    )  # fmt: skip
