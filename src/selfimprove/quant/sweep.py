"""`selfimprove quant sweep`: what each GGUF quantisation of a model costs, against its own unquantised reference.

Per variant (llama.cpp's quantiser, from one reference): KL divergence to the reference over the same text
(mean, median, p99; streamed from the reference's top-k summary, `quant.divergence`), the rate at which the
likeliest next token is the reference's, the perplexity ratio; size on disk and bits per weight; peak memory,
prompt and decode speed of one stream (a process of its own); task accuracy through the run store with its
interval, by difficulty level, and **paired flips** against the reference (correct -> wrong, wrong -> correct):
equal accuracy can hide many flips (Dutta et al. 2024, "Accuracy is not all you need"), and KLD tracks flips.

Resumable: the reference's summary, each variant's file and each variant's result are kept in the work folder
and the accuracy runs in its run store; a re-run measures only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.files import atomic_write_text
from selfimprove.core.stats import paired_comparison, wilson_interval
from selfimprove.engines.weight_quantization import NOMINAL_BITS as WEIGHT_BITS
from selfimprove.quant.divergence import ReferenceSummary, divergence_statistics
from selfimprove.quant.measure import (
    compare_variant,
    logit_pass,
    probe_in_subprocess,
    read_text,
    summarise_reference,
    windows,
)
from selfimprove.quant.settings import QuantSettings
from selfimprove.quant.variants import (
    NOMINAL_BITS,
    GGUFFacts,
    gguf_facts,
    make_variant,
    reference_gguf,
)
from selfimprove.runs import runner
from selfimprove.runs.store import RunStore


@dataclass
class VariantResult:
    label: str
    type: str
    path: str
    bytes: int
    parameters: int
    bits_per_weight: float
    nominal_bits: float | None
    tensor_types: dict[str, int]
    divergence: dict[str, float]
    """kl_mean, kl_median, kl_p99, same_top_rate, perplexity, reference_perplexity, perplexity_ratio, positions."""
    speed: dict[str, float] | None
    accuracy: float | None = None
    interval: tuple[float, float] | None = None
    by_level: dict[str, list[float]] = field(default_factory=dict)
    """level -> [accuracy, problems]."""
    flips: dict[str, Any] | None = None
    """Against the reference: correct_to_wrong, wrong_to_correct (problem ids), difference, interval, p_value."""
    run_id: str | None = None
    seconds: float = 0.0


@dataclass
class QuantReport:
    model: str
    reference: str
    reference_made: str
    settings: dict[str, Any]
    variants: list[VariantResult] = field(default_factory=list)


class QuantSweep:
    def __init__(self, model: str | None, work: str | Path, settings: QuantSettings | None = None,
                 log: Callable[[str], None] = print):  # fmt: skip
        self.model, self.work = model, Path(work)
        self.settings = settings or QuantSettings()
        self.log = log
        self.work.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.work / "runs.sqlite")

    def run(self) -> QuantReport:
        s = self.settings
        self.hf = self.model is not None and (Path(self.model) / "config.json").is_file() and s.template is None
        if self.hf:
            made = "the checkpoint in float32; variants quantise its Linear weights (torchao)"
            reference = str(self.model)
            candidates: list[tuple[str, str, str | None]] = [("reference", "float", reference)]
            candidates += [(kind, kind, reference) for kind in s.weight_list]
        else:
            reference, made = reference_gguf(self.model, self.work / "variants", s.template)
            candidates = [("reference", "reference", reference)]
            if self.model is None and s.include_source:
                from selfimprove.engines.embedded import embedded_model_path

                candidates.append(("embedded (shipped Q4_K_M)", "q4_k_m", str(embedded_model_path())))
            candidates += [(kind, kind, None) for kind in s.type_list]
        report = QuantReport(self.model or "embedded", reference, made, asdict(s))
        token_windows = self._windows(reference)
        summary = self._reference_summary(reference, token_windows)
        reference_correct: list[bool] | None = None
        for label, kind, path in candidates:
            if path is None:
                self.log(f"quantising the reference to {kind}")
                path = make_variant(reference, kind, self.work / "variants")
            result = self._measure(label, kind, path, token_windows, summary, reference_correct)
            if label == "reference" and result.run_id is not None:
                reference_correct = self._correct(result.run_id)
            report.variants.append(result)
            self._save(report)
        return report

    # -- stages ----------------------------------------------------------------------------------

    def _windows(self, reference: str) -> list[list[int]]:
        s = self.settings
        passer = logit_pass(reference, 8, "float" if self.hf else None)
        try:
            tokens, bos = passer.tokenize(read_text(s.text))
        finally:
            passer.close()
        found = windows(tokens, s.context, s.kld_tokens, bos)
        if not found:
            raise ConfigError(f"--text {s.text}: too short to score (needs at least 2 tokens)")
        return found

    def _reference_summary(self, reference: str, token_windows: list[list[int]]) -> ReferenceSummary:
        s = self.settings
        size = Path(reference).stat().st_size if Path(reference).is_file() else 0
        identity = json.dumps([reference, size, s.top_k, token_windows])
        path = self.work / f"reference-top{s.top_k}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}.npz"
        if path.is_file():
            return ReferenceSummary.load(str(path))
        self.log(f"reference: summarising {sum(len(w) - 1 for w in token_windows)} positions (top {s.top_k})")
        summary = summarise_reference(reference, token_windows, s.top_k, weights="float" if self.hf else None)
        summary.save(str(path.with_suffix(".partial.npz")))
        path.with_suffix(".partial.npz").replace(path)
        return summary

    def _measure(self, label: str, kind: str, path: str, token_windows: list[list[int]], summary: ReferenceSummary,
                 reference_correct: list[bool] | None) -> VariantResult:  # fmt: skip
        s = self.settings
        stored = self.work / "results" / f"{_slug(label)}.json"
        if stored.is_file():
            result = VariantResult(**json.loads(stored.read_text()))
            if result.path == path:
                return result
        started = time.perf_counter()
        weights = kind if self.hf else None
        facts = hf_facts(path, kind) if self.hf else gguf_facts(path)
        self.log(f"{label}: {facts.bits_per_weight:.2f} bits per weight; divergence over {summary.positions} positions")
        divergence = divergence_statistics(summary, compare_variant(path, token_windows, summary, weights=weights))
        speed = probe_in_subprocess(path, weights) if s.probe else None
        result = VariantResult(
            label=label, type=kind, path=path, bytes=facts.bytes, parameters=facts.parameters,
            bits_per_weight=facts.bits_per_weight, nominal_bits=NOMINAL_BITS.get(kind, WEIGHT_BITS.get(kind)),
            tensor_types=facts.tensor_types,
            divergence={**asdict(divergence), "perplexity_ratio": divergence.perplexity_ratio}, speed=speed,
        )  # fmt: skip
        if s.problems:
            self._accuracy(result, reference_correct)
        result.seconds = time.perf_counter() - started
        stored.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(stored, json.dumps(asdict(result), indent=2))
        return result

    def _accuracy(self, result: VariantResult, reference_correct: list[bool] | None) -> None:
        from selfimprove.engines.llama_cpp import LlamaCppEngine
        from selfimprove.strategies.cot import ChainOfThought
        from selfimprove.tasks.arithmetic import ArithmeticTask

        s = self.settings
        task = ArithmeticTask(level=s.levels, shots=s.shots)
        if self.hf:
            from selfimprove.engines.hf import HFEngine

            engine = HFEngine(model=result.path, device="cpu", batch_size=s.batch_size, weights=result.type)
        else:
            engine = LlamaCppEngine(model=result.path, n_ctx=8192, max_parallel=s.batch_size)
        try:
            outcome = runner.execute(task, ChainOfThought(max_tokens=s.max_tokens), engine, self.store,
                                     limit=s.problems, batch_size=s.batch_size)  # fmt: skip
        finally:
            engine.close()
        rows = self.store.solutions(outcome.run_id)
        correct = [bool(r["correct"]) for r in rows]
        result.run_id = outcome.run_id
        result.accuracy = sum(correct) / len(correct)
        result.interval = wilson_interval(sum(correct), len(correct))
        levels: dict[str, list[bool]] = {}
        for row, ok in zip(rows, correct):
            levels.setdefault(str(row["metadata"].get("level")), []).append(ok)
        result.by_level = {level: [sum(v) / len(v), len(v)] for level, v in sorted(levels.items())}
        if reference_correct is not None and len(reference_correct) == len(correct):
            paired = paired_comparison(reference_correct, correct)
            ids = [r["problem_id"] for r in rows]
            result.flips = {
                "correct_to_wrong": [i for i, a, b in zip(ids, reference_correct, correct) if a and not b],
                "wrong_to_correct": [i for i, a, b in zip(ids, reference_correct, correct) if b and not a],
                "difference": paired.difference, "interval": paired.interval, "p_value": paired.p_value,
            }  # fmt: skip

    def _correct(self, run_id: str) -> list[bool]:
        return [bool(r["correct"]) for r in self.store.solutions(run_id)]

    def _save(self, report: QuantReport) -> None:
        from selfimprove.reports.quantization import render_quantization

        atomic_write_text(self.work / "report.json", json.dumps(asdict(report), indent=2))
        atomic_write_text(self.work / "report.html", render_quantization(report))


def hf_facts(path: str, weights: str) -> GGUFFacts:
    """Size of the checkpoint's weights as saved with its Linear layers quantised to `weights`, and what changed."""
    from selfimprove.engines.hf import load_causal_lm
    from selfimprove.engines.weight_quantization import quantize_weights, state_bytes

    model, _, _ = load_causal_lm(path)
    parameters = int(model.num_parameters())
    linear = sum(1 for module in model.modules() if type(module).__name__ == "Linear")
    quantize_weights(model, weights)
    kinds = {f"Linear ({weights})": linear}
    return GGUFFacts(path, state_bytes(model), parameters, kinds)


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "variant"


def quant_sweep(model: str | None, out: str | Path, settings: QuantSettings | None = None,
                log: Callable[[str], None] = print) -> QuantReport:  # fmt: skip
    """Run the sweep (see the module's docstring) into `out`; re-running resumes."""
    sweep = QuantSweep(model, out, settings, log)
    try:
        return sweep.run()
    finally:
        sweep.store.close()
