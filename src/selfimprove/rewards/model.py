"""Reward models as scorers: a sequence-classification checkpoint with one output (what TRL's RewardTrainer
saves) scoring prompt + response, and an ensemble of them whose members' rewards are aggregated.

A response is scored as the trainer saw it: the prompt's text, then the response, then the end token.
All responses to one prompt go through the model in one forward pass (`batch_size` at a time). A member
trained here carries `reward.json` with the mean and standard deviation of its rewards on its training
responses; its scores are standardised with them so that members trained apart share a scale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from selfimprove.core.errors import ConfigError, ModelNotFoundError
from selfimprove.rewards.aggregate import aggregate, disagreement, require_aggregator

CALIBRATION = "reward.json"
ENSEMBLE = "ensemble.json"


@dataclass(frozen=True)
class RewardScore:
    """One response's reward; for an ensemble, every member's too."""

    value: float
    members: tuple[float, ...] = ()
    steps: tuple[float, ...] = ()
    """A process reward's per-step probabilities of being right."""

    @property
    def disagreement(self) -> float:
        return disagreement(self.members)


@runtime_checkable
class RewardScorer(Protocol):
    def score(self, prompt: str | list[dict], responses: Sequence[str]) -> list[RewardScore]:
        """Each response's reward; `prompt` is text or chat messages."""
        ...

    def describe(self) -> dict:
        """What identifies the scores (for a run's id)."""
        ...


@dataclass
class RewardModel:
    """One reward model from a checkpoint folder (or hub name)."""

    path: str
    batch_size: int = 32
    """Responses per forward pass."""
    max_length: int = 1024
    """Longest prompt + response in tokens; longer ones lose their start (the end, where the reward is read, stays)."""
    device: str = "cpu"
    standardise: bool = True
    """Use reward.json's mean and standard deviation where the folder has one."""
    _loaded: Any = field(default=None, init=False, repr=False)

    def describe(self) -> dict:
        return {"reward_model": str(self.path), "fingerprint": fingerprint(Path(self.path))}

    def score(self, prompt: str | list[dict], responses: Sequence[str]) -> list[RewardScore]:
        return [RewardScore(value) for value in self.score_texts([prompt] * len(responses), responses)]

    def score_texts(self, prompts: Sequence[str | list[dict]], responses: Sequence[str]) -> list[float]:
        """The reward of each (prompt, response), standardised where the model's calibration says how."""
        import torch

        model, tokenizer, mean, std = self._model()
        eos = tokenizer.eos_token or ""
        texts = [render_prompt(prompt, tokenizer) + response + eos for prompt, response in zip(prompts, responses)]
        unique = list(dict.fromkeys(texts))  # n samples often repeat one another: each text is scored once
        rewards: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(unique), self.batch_size):
                batch = tokenizer(
                    unique[start : start + self.batch_size],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    add_special_tokens=True,
                ).to(self.device)
                logits = model(**batch).logits.squeeze(-1).float()
                rewards.extend(((logits - mean) / std).tolist())
        by_text = dict(zip(unique, rewards))
        return [by_text[text] for text in texts]

    def _model(self) -> tuple[Any, Any, float, float]:
        if self._loaded is None:
            self._loaded = load_sequence_scorer(self.path, self.device) + self._calibration()
        return self._loaded

    def _calibration(self) -> tuple[float, float]:
        file = Path(self.path) / CALIBRATION
        if not (self.standardise and file.is_file()):
            return 0.0, 1.0
        record = json.loads(file.read_text())
        return float(record["reward_mean"]), max(float(record["reward_std"]), 1e-6)


@dataclass
class RewardEnsemble:
    """K reward models whose standardised rewards are aggregated (mean, min, uncertainty, median)."""

    members: list[RewardModel]
    aggregator: str = "mean"
    uncertainty_weight: float = 1.0

    def __post_init__(self) -> None:
        require_aggregator(self.aggregator, self.uncertainty_weight)
        if not self.members:
            raise ConfigError("a reward ensemble needs at least one member")

    def describe(self) -> dict:
        described = {"members": [m.describe() for m in self.members], "aggregator": self.aggregator}
        if self.aggregator == "uncertainty":
            described["uncertainty_weight"] = self.uncertainty_weight
        return described

    def score(self, prompt: str | list[dict], responses: Sequence[str]) -> list[RewardScore]:
        per_member = [member.score_texts([prompt] * len(responses), responses) for member in self.members]
        return [self.combine([column[i] for column in per_member]) for i in range(len(responses))]

    def combine(self, members: Sequence[float]) -> RewardScore:
        return RewardScore(aggregate(members, self.aggregator, self.uncertainty_weight), tuple(members))


def load_reward(
    path: str | Path,
    aggregator: str = "mean",
    uncertainty_weight: float = 1.0,
    batch_size: int = 32,
    step_reduce: str = "min",
) -> Any:
    """A folder written by `reward train` (an ensemble when it holds ensemble.json, whatever K), a process
    reward model (process.json; its steps reduced by `step_reduce`), or any reward-model checkpoint."""
    folder = Path(path).expanduser()
    from selfimprove.rewards.process import ProcessRewardModel, is_process_model

    if is_process_model(folder):
        return ProcessRewardModel(str(folder), reduce=step_reduce, batch_size=batch_size)
    manifest = folder / ENSEMBLE
    if manifest.is_file():
        names = json.loads(manifest.read_text())["members"]
        members = [RewardModel(str(folder / name), batch_size=batch_size) for name in names]
        return RewardEnsemble(members, aggregator, uncertainty_weight)
    if aggregator != "mean":
        raise ConfigError(f"{folder} is one reward model, not an ensemble: aggregator {aggregator!r} needs members")
    return RewardModel(str(folder), batch_size=batch_size)


def render_prompt(prompt: str | list[dict], tokenizer: Any) -> str:
    """A prompt as the text a response follows: text as it is; chat messages through the tokenizer's chat
    template (ready for the assistant's turn), or as "role: content" lines where it has none."""
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m.get('role', 'user')}: {m.get('content') or ''}\n" for m in prompt) + "assistant:"


def load_sequence_scorer(path: str, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) of a one-output sequence classifier, right-padded."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if (Path(path) / ENSEMBLE).is_file():
        raise ConfigError(f"{path} holds an ensemble ({ENSEMBLE}), not one model: load it with load_reward()")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    except OSError as exc:
        raise ModelNotFoundError(f"could not load a reward model from {path!r}: {exc}") from exc
    if model.config.num_labels != 1:
        raise ConfigError(f"{path} has {model.config.num_labels} outputs; a reward model has one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "left"
    return model.to(device).eval(), tokenizer


def fingerprint(folder: Path) -> str:
    """A short hash of what identifies the weights: reward.json where training wrote one, else the files' sizes."""
    calibration = folder / CALIBRATION
    if calibration.is_file():
        return hashlib.sha256(calibration.read_bytes()).hexdigest()[:16]
    if not folder.is_dir():
        return "hub"
    sizes = sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.is_file())
    return hashlib.sha256(json.dumps(sizes).encode()).hexdigest()[:16]
