"""Process rewards: a score for every step of a reasoning path, not only for its final answer (Lightman et
al. 2023, "Let's verify step by step"; Wang et al. 2024, Math-Shepherd, for labels made without people).

A path is cut into steps (its lines, or its sentences when it is one line). A process reward model is a
token classifier with two classes (wrong, right) read at the last token of each step; a path's reward is
the steps' probabilities of being right reduced by `min` (the weakest step, Lightman et al.'s choice),
`product`, or `last`.

Step labels can be made automatically where a step can be checked: an arithmetic step "a op b = c" is right
when the arithmetic is (`arithmetic_step_labels`). That is an honest label of the computation, not of
whether the operation was the one the question asked for; the final step, which states the answer, is
labelled by the task's grade (training data comes from the train split, where the grade is known).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.rewards.model import RewardScore, fingerprint, render_prompt

PROCESS = "process.json"
REDUCTIONS = ("min", "product", "last")
_EQUATION = re.compile(r"(-?\d+(?:\.\d+)?)\s*([-+x*×/÷])\s*(-?\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def split_steps(text: str) -> list[str]:
    """The steps of a path: its non-empty lines; a one-line path, its sentences. Each step keeps its leading
    whitespace so that the steps joined again are the text."""
    stripped = text.strip()
    if not stripped:
        return []
    if "\n" in stripped:
        parts = re.split(r"(?<=\n)", text)
    else:
        parts = _SENTENCE_END.split(text)
        parts = [p if i == 0 else " " + p for i, p in enumerate(parts)] if len(parts) > 1 else parts
    return [p for p in parts if p.strip()]


def check_arithmetic(step: str) -> bool | None:
    """True/False where the step holds equations "a op b = c" (all must hold), None where it holds none."""
    found = _EQUATION.findall(step)
    if not found:
        return None
    for a, op, b, c in found:
        x, y, z = Fraction(a), Fraction(b), Fraction(c)
        if op in "x*×":
            value = x * y
        elif op in "/÷":
            if y == 0:
                return False
            value = x / y
        elif op == "+":
            value = x + y
        else:
            value = x - y
        if value != z:
            return False
    return True


def arithmetic_step_labels(steps: Sequence[str], final_correct: bool | None) -> list[bool | None]:
    """Each step's label: its arithmetic where it has some; the last step, the final answer's grade where
    it is known; None (no label, not trained on) for a step that can be checked neither way."""
    labels = [check_arithmetic(step) for step in steps]
    if steps and final_correct is not None:
        labels[-1] = bool(final_correct) and labels[-1] is not False
    return labels


def reduce_steps(probabilities: Sequence[float], how: str) -> float:
    """A path's reward from its steps' probabilities of being right (no steps: 0)."""
    if not probabilities:
        return 0.0
    if how == "min":
        return min(probabilities)
    if how == "product":
        return math.prod(probabilities)
    if how == "last":
        return probabilities[-1]
    raise ConfigError(f"step reduction must be one of {', '.join(REDUCTIONS)}, got {how!r}")


@dataclass
class ProcessRewardModel:
    """A process reward model from a folder written by `process_reward_train` (with process.json)."""

    path: str
    reduce: str = "min"
    """How the steps' probabilities become the path's reward: min, product or last."""
    batch_size: int = 32
    max_length: int = 1024
    device: str = "cpu"
    _loaded: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.reduce not in REDUCTIONS:
            raise ConfigError(f"step reduction must be one of {', '.join(REDUCTIONS)}, got {self.reduce!r}")

    def describe(self) -> dict:
        return {
            "process_reward_model": str(self.path),
            "fingerprint": fingerprint(Path(self.path)),
            "reduce": self.reduce,
        }

    def score(self, prompt: str | list[dict], responses: Sequence[str]) -> list[RewardScore]:
        steps = self.step_probabilities(prompt, responses)
        return [RewardScore(reduce_steps(p, self.reduce), steps=tuple(p)) for p in steps]

    def step_probabilities(self, prompt: str | list[dict], responses: Sequence[str]) -> list[list[float]]:
        """Each response's steps' probabilities of being right."""
        import torch

        model, tokenizer = self._model()
        prefix = render_prompt(prompt, tokenizer)
        unique = list(dict.fromkeys(responses))  # a repeated response is scored once
        encoded = [encode_steps(tokenizer, prefix, split_steps(r), self.max_length) for r in unique]
        out: list[list[float]] = []
        with torch.inference_mode():
            for start in range(0, len(encoded), self.batch_size):
                batch = encoded[start : start + self.batch_size]
                longest = max(len(ids) for ids, _ in batch)
                ids = torch.full((len(batch), longest), tokenizer.pad_token_id, dtype=torch.long)
                mask = torch.zeros((len(batch), longest), dtype=torch.long)
                for row, (tokens, _) in enumerate(batch):
                    ids[row, : len(tokens)] = torch.tensor(tokens)
                    mask[row, : len(tokens)] = 1
                right = model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits.softmax(-1)[
                    ..., 1
                ]
                for row, (_, ends) in enumerate(batch):
                    out.append([float(right[row, end]) for end in ends])
        by_response = dict(zip(unique, out))
        return [by_response[r] for r in responses]

    def _model(self) -> tuple[Any, Any]:
        if self._loaded is None:
            import torch
            from transformers import AutoModelForTokenClassification, AutoTokenizer

            if not (Path(self.path) / PROCESS).is_file():
                raise ConfigError(f"{self.path} is not a process reward model (no {PROCESS})")
            tokenizer = AutoTokenizer.from_pretrained(self.path)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModelForTokenClassification.from_pretrained(self.path, dtype=torch.float32)
            self._loaded = (model.to(self.device).eval(), tokenizer)
        return self._loaded


def encode_steps(tokenizer: Any, prefix: str, steps: Sequence[str], max_length: int) -> tuple[list[int], list[int]]:
    """(token ids of prefix + steps, the index of each step's last token). Steps are encoded one by one, so a
    step's end is a token boundary; a path too long loses its prompt's start (the steps' ends stay inside)."""
    ids = tokenizer(prefix)["input_ids"]
    ends = []
    for step in steps:
        ids = ids + tokenizer(step, add_special_tokens=False)["input_ids"]
        ends.append(len(ids) - 1)
    overflow = max(0, len(ids) - max_length)
    return ids[overflow:], [end - overflow for end in ends if end >= overflow]


def is_process_model(path: str | Path) -> bool:
    return (Path(path) / PROCESS).is_file()


def write_process_manifest(folder: Path, record: dict) -> None:
    (folder / PROCESS).write_text(json.dumps(record, indent=2))
