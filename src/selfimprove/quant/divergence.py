"""KL divergence of a quantised model to its reference, computed streaming from a compact reference summary.

The reference's full next-token distribution is not kept (262,144 floats a position for Gemma 3; llama.cpp's
`--kl-divergence` base file is ~11 GiB). Per position we keep its `k` likeliest tokens' log-probabilities, the
log of the probability mass left over (the tail), the observed next token's log-probability and the top token.
A variant's KL is then that of the two distributions coarsened to those k tokens plus one "everything else"
bin:

    KL_k(P || Q) = sum_{i in top-k(P)} p_i log(p_i / q_i) + p_tail log(p_tail / q_tail)

By the data-processing inequality KL_k <= KL (the full one), with equality when k covers the vocabulary or when
Q spreads its tail like P does; at k = 32 the likely tokens carry almost all of P's mass, so the bound is tight
(`tests/test_quantization.py` checks both cases on a small vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TAIL_FLOOR = 1e-30  # a tail mass below this counts as none (its term vanishes as p log p -> 0)


def log_softmax(logits: Any) -> np.ndarray:
    """Rows of logits as log-probabilities, in float64."""
    rows = np.asarray(logits, dtype=np.float64)
    shifted = rows - rows.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass
class ReferenceSummary:
    """What is kept of the reference, per scored position."""

    top_ids: np.ndarray  # [positions, k] int64, likeliest first
    top_logprobs: np.ndarray  # [positions, k] float64
    tail_logprob: np.ndarray  # [positions] float64: log of the mass outside the top k (-inf when none)
    next_logprob: np.ndarray  # [positions] float64: the observed next token's log-probability
    next_ids: np.ndarray  # [positions] int64: the observed next tokens

    @property
    def positions(self) -> int:
        return len(self.next_ids)

    def save(self, path: str) -> None:
        np.savez(path, **{name: getattr(self, name) for name in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: str) -> ReferenceSummary:
        with np.load(path) as data:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    @classmethod
    def concatenate(cls, parts: list[ReferenceSummary]) -> ReferenceSummary:
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__})


def summarise(logprobs: np.ndarray, next_ids: Any, k: int) -> ReferenceSummary:
    """The reference summary of rows of log-probabilities whose observed next tokens are `next_ids`."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    next_ids = np.asarray(next_ids, dtype=np.int64)
    k = min(k, logprobs.shape[-1])
    part = np.argpartition(-logprobs, k - 1, axis=-1)[:, :k]
    order = np.argsort(-np.take_along_axis(logprobs, part, axis=-1), axis=-1, kind="stable")
    top_ids = np.take_along_axis(part, order, axis=-1)
    top = np.take_along_axis(logprobs, top_ids, axis=-1)
    return ReferenceSummary(
        top_ids=top_ids.astype(np.int64),
        top_logprobs=top,
        tail_logprob=_tail(top),
        next_logprob=logprobs[np.arange(len(next_ids)), next_ids],
        next_ids=next_ids,
    )


def _tail(top_logprobs: np.ndarray) -> np.ndarray:
    mass = 1.0 - np.exp(top_logprobs).sum(axis=-1)
    with np.errstate(divide="ignore"):
        return np.where(mass > TAIL_FLOOR, np.log(np.maximum(mass, TAIL_FLOOR)), -np.inf)


@dataclass
class Comparison:
    """A variant against the reference, per position."""

    kl: np.ndarray
    same_top: np.ndarray  # bool: the variant's likeliest token is the reference's
    next_logprob: np.ndarray  # the variant's log-probability of the observed next token


def compare(reference: ReferenceSummary, logprobs: np.ndarray, offset: int = 0) -> Comparison:
    """Rows of the variant's log-probabilities for positions offset .. offset + len(rows) of the reference."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    span = slice(offset, offset + len(logprobs))
    ids, p_log = reference.top_ids[span], reference.top_logprobs[span]
    q_log = np.take_along_axis(logprobs, ids, axis=-1)
    kl = (np.exp(p_log) * (p_log - q_log)).sum(axis=-1)
    p_tail = reference.tail_logprob[span]
    q_tail = _tail(q_log)
    has_tail = np.isfinite(p_tail)
    q_tail_safe = np.where(np.isfinite(q_tail), q_tail, np.log(TAIL_FLOOR))
    kl = kl + np.where(has_tail, np.exp(np.where(has_tail, p_tail, 0.0)) * (p_tail - q_tail_safe), 0.0)
    rows = np.arange(len(logprobs))
    return Comparison(
        kl=np.maximum(kl, 0.0),  # rounding can leave -1e-17 where the two are equal
        same_top=logprobs.argmax(axis=-1) == ids[:, 0],
        next_logprob=logprobs[rows, reference.next_ids[span]],
    )


def exact_kl(reference_logprobs: np.ndarray, variant_logprobs: np.ndarray) -> np.ndarray:
    """The full-vocabulary KL per position (for checking the streamed one on a small vocabulary)."""
    p = np.asarray(reference_logprobs, dtype=np.float64)
    q = np.asarray(variant_logprobs, dtype=np.float64)
    return (np.exp(p) * (p - q)).sum(axis=-1)


@dataclass
class DivergenceStats:
    positions: int
    kl_mean: float
    kl_median: float
    kl_p99: float
    same_top_rate: float
    perplexity: float
    reference_perplexity: float

    @property
    def perplexity_ratio(self) -> float:
        return self.perplexity / self.reference_perplexity


def divergence_statistics(reference: ReferenceSummary, parts: list[Comparison]) -> DivergenceStats:
    kl = np.concatenate([c.kl for c in parts])
    same = np.concatenate([c.same_top for c in parts])
    nll = -np.concatenate([c.next_logprob for c in parts])
    return DivergenceStats(
        positions=len(kl),
        kl_mean=float(kl.mean()),
        kl_median=float(np.median(kl)),
        kl_p99=float(np.percentile(kl, 99)),
        same_top_rate=float(same.mean()),
        perplexity=float(np.exp(nll.mean())),
        reference_perplexity=float(np.exp(-reference.next_logprob[: len(kl)].mean())),
    )
