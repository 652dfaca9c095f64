"""Strategy `deepconf`: confidence-filtered, confidence-weighted voting, with early stopping of hesitant traces
(DeepConf: Fu, Wang, Tian, Zhao 2025, "Deep Think with Confidence", arXiv:2508.15260; measures in core/confidence.py).

Each trace's confidence is its lowest group confidence: the least confident window of `window` tokens, token
confidence being minus the mean of the `confidence_top_k` top log-probabilities at each position.

- `offline`: draw `samples` traces, keep the `keep_percent` most confident, vote among them with each trace's
  confidence as its weight.
- `online` (default): draw `warmup` traces in full; the threshold is the confidence that `keep_percent` of them
  reach (the paper's s = percentile(100 - eta) of the warm-up confidences). Warm-up traces below it do not vote.
  Then draw `batch` traces per round with the engine told to end a trace as soon as a window's mean confidence
  falls below the threshold (finish_reason "low_confidence"; such a trace does not vote, and its tokens are the
  ones the early stop saved the rest of), until the leader's weighted share of the vote reaches `consensus` or
  `samples` traces were drawn.
The plain majority vote over every completed trace is kept beside it (`extra["majority_answer"]`), and sample
ids continue across rounds, so a resumed run asks for exactly the traces it lacks with the same threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from selfimprove.core.confidence import lowest_group_confidence
from selfimprove.core.errors import ConfigError, EngineError
from selfimprove.core.types import Problem, Prompt, SampleRecord, Sampling, Solution
from selfimprove.core.validation import require_range, require_sampling_ranges
from selfimprove.engines.base import Engine
from selfimprove.strategies.base import records_for, registry
from selfimprove.strategies.decoding import RepetitionControls, settings_identity
from selfimprove.strategies.voting import majority_vote, weighted_vote
from selfimprove.tasks.base import Task

MODES = ("online", "offline")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def most_confident(records: Sequence[SampleRecord], keep_percent: float) -> list[SampleRecord]:
    """The `keep_percent` most confident records (at least one), in their original order."""
    keep = max(1, math.ceil(len(records) * keep_percent / 100))
    chosen = sorted(range(len(records)), key=lambda i: -(records[i].confidence or 0.0))[:keep]
    return [records[i] for i in sorted(chosen)]


@registry.register("deepconf")
@dataclass
class DeepConf(RepetitionControls):
    samples: int = 16
    """The most traces per problem (the paper's budget B)."""
    mode: str = "online"
    """online (warm-up, threshold, early stop, consensus stop) or offline (filter a fixed set of traces)."""
    warmup: int = 8
    """online: traces drawn in full first, to set the threshold (the paper's N_init)."""
    batch: int = 4
    """online: traces per round after the warm-up."""
    keep_percent: float = 90.0
    """The share of traces kept (offline) or expected to pass the threshold (online): the paper's eta, 90
    (conservative) or 10 (aggressive)."""
    consensus: float = 0.95
    """online: stop once the leading answer holds this share of the confidence-weighted vote (the paper's tau)."""
    window: int = 32
    """Tokens per confidence group (the paper used 2048 for traces of thousands of tokens)."""
    confidence_top_k: int = 5
    """Top log-probabilities per token that token confidence averages (the paper's runs asked vLLM for 20)."""
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 40
    max_tokens: int = 256
    seed: int = 0

    name = "deepconf"

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r} (-S mode=...): expected one of {', '.join(MODES)}")
        require_range("keep_percent", self.keep_percent, 0, 100, low_excluded=True)
        require_range("consensus", self.consensus, 0, 1, low_excluded=True)
        require_range("window", self.window, 1)
        require_range("confidence_top_k", self.confidence_top_k, 1, 20)
        if self.mode == "online":
            require_range("warmup", self.warmup, 1, self.samples)
        require_range("batch", self.batch, 1)

    def describe(self) -> dict:
        return {"strategy": self.name, **settings_identity(self)}

    def _sampling(self, task: Task) -> Sampling:
        return self.sampled(task, top_logprobs=self.confidence_top_k, confidence_window=self.window)

    def _draw(
        self, engine: Engine, task: Task, problems: Sequence[Problem], ids: dict[str, tuple[int, ...]], sampling
    ) -> dict[str, list[SampleRecord]]:
        """Traces `ids[problem]` of each problem, with each record's confidence filled in."""
        asked = [p for p in problems if ids[p.id]]
        prompts = [Prompt(task.format_prompt(p), problem_id=p.id, step="sample", sample_ids=ids[p.id]) for p in asked]
        outputs = engine.generate(prompts, self.samples, sampling)
        drawn = {}
        for problem, prompt, completions in zip(asked, prompts, outputs):
            if any(c.top_logprobs is None for c in completions):
                raise EngineError(f"deepconf needs top log-probabilities: engine {engine.name!r} returned none")
            records = records_for(task, problem, "sample", prompt.sample_ids, completions)
            for record, completion in zip(records, completions):
                record.confidence = lowest_group_confidence(completion.top_logprobs, self.window)
            drawn[problem.id] = records
        return drawn

    def solve(self, problems: Sequence[Problem], task: Task, engine: Engine) -> list[Solution]:
        sampling = self._sampling(task)
        first = self.samples if self.mode == "offline" else self.warmup
        traces = self._draw(engine, task, problems, {p.id: tuple(range(first)) for p in problems}, sampling)
        thresholds: dict[str, float] = {}
        for p in problems:
            known = [r.confidence for r in traces[p.id] if r.confidence is not None]
            thresholds[p.id] = percentile(known, 100 - self.keep_percent) if known else 0.0
        if self.mode == "online":
            active = [p for p in problems if not self._settled(traces[p.id], thresholds[p.id])]
            while active:
                ids = {p.id: tuple(range(len(traces[p.id]), min(len(traces[p.id]) + self.batch, self.samples)))
                       for p in active}  # fmt: skip
                by_threshold: dict[float, list[Problem]] = {}
                for p in active:  # one engine call per distinct threshold (it is part of the Sampling)
                    by_threshold.setdefault(thresholds[p.id], []).append(p)
                for threshold, group in by_threshold.items():
                    stopping = replace(sampling, stop_below_confidence=max(threshold, 1e-9))
                    for pid, records in self._draw(engine, task, group, ids, stopping).items():
                        traces[pid].extend(records)
                active = [
                    p
                    for p in active
                    if len(traces[p.id]) < self.samples and not self._settled(traces[p.id], thresholds[p.id])
                ]
        return [self._solution(p, task, traces[p.id], thresholds[p.id]) for p in problems]

    def _voters(self, records: Sequence[SampleRecord], threshold: float) -> list[SampleRecord]:
        """The traces that vote: offline the most confident; online the completed ones at or above the threshold."""
        if self.mode == "offline":
            return most_confident(records, self.keep_percent)
        return [r for r in records if r.finish_reason != "low_confidence" and (r.confidence or 0.0) >= threshold]

    def _settled(self, records: Sequence[SampleRecord], threshold: float) -> bool:
        voters = self._voters(records, threshold)
        vote = weighted_vote([r.answer for r in voters], [r.confidence or 0.0 for r in voters])
        return vote.answer is not None and vote.share >= self.consensus

    def _solution(self, problem: Problem, task: Task, records: list[SampleRecord], threshold: float) -> Solution:
        voters = self._voters(records, threshold)
        vote = weighted_vote([r.answer for r in voters], [r.confidence or 0.0 for r in voters])
        completed = [r for r in records if r.finish_reason != "low_confidence"]
        majority = majority_vote([r.answer for r in completed])
        return Solution(
            problem_id=problem.id,
            answer=vote.answer,
            correct=task.grade(problem, vote.answer),
            samples=records,
            votes=majority_vote([r.answer for r in voters]).counts,
            confidence=vote.share,
            extra={
                "vote": "DeepConf vote",
                "threshold": threshold,
                "voters": len(voters),
                "samples_used": len(records),
                "stopped_early": sum(r.finish_reason == "low_confidence" for r in records),
                "weighted_votes": vote.counts,
                "majority_answer": majority.answer,
                "majority_correct": task.grade(problem, majority.answer),
            },
        )
