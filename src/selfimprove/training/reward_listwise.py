"""Listwise reward training: TRL's RewardTrainer with the Plackett–Luce loss in place of Bradley–Terry.

TRL trains on pairs only. Everything but the loss is TRL's and transformers': model creation, padding,
PEFT, the training loop and its checkpoints. What changes is the data's shape (a prompt with k ranked
responses instead of chosen/rejected), its collation (the k responses of each list are flattened into one
batch of sequences) and the loss (`rewards/losses.py: plackett_luce_loss`, equal to Bradley–Terry on pairs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl import RewardTrainer

from selfimprove.rewards.losses import plackett_luce_loss


@dataclass
class RankedListCollator:
    """Lists of tokenised responses -> one right-padded batch of every response, plus each list's ranks."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        sequences = [torch.tensor(ids) for example in examples for ids in example["response_ids"]]
        longest = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), longest), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            input_ids[row, : len(sequence)] = sequence
            attention_mask[row, : len(sequence)] = 1
        widest = max(len(example["ranks"]) for example in examples)
        ranks = torch.zeros((len(examples), widest), dtype=torch.long)
        list_mask = torch.zeros((len(examples), widest), dtype=torch.bool)
        for row, example in enumerate(examples):
            ranks[row, : len(example["ranks"])] = torch.tensor(example["ranks"])
            list_mask[row, : len(example["ranks"])] = True
        return {"input_ids": input_ids, "attention_mask": attention_mask, "ranks": ranks, "list_mask": list_mask}


class ListwiseRewardTrainer(RewardTrainer):
    """A RewardTrainer over rows of {"prompt", "responses", "ranks"} (rank 0 the best; ties allowed)."""

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
        if "response_ids" in dataset.column_names:
            return dataset
        eos = processing_class.eos_token or ""

        def tokenize(example: dict[str, Any]) -> dict[str, Any]:
            texts = [example["prompt"] + response + eos for response in example["responses"]]
            return {"response_ids": [processing_class(text)["input_ids"] for text in texts]}

        dataset = dataset.map(tokenize, remove_columns=["prompt", "responses"], desc=f"Tokenizing {dataset_name}")
        if args.max_length is not None:
            dataset = dataset.filter(
                lambda example: all(len(ids) <= args.max_length for ids in example["response_ids"])
            )
        return dataset

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            self._signature_columns = ["response_ids", "ranks"]

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ):  # noqa: E501 - transformers' signature
        ranks, list_mask = inputs.pop("ranks"), inputs.pop("list_mask")
        outputs = model(**inputs, use_cache=False)
        flat = outputs.logits.squeeze(-1)
        rewards = torch.zeros(list_mask.shape, dtype=flat.dtype, device=flat.device).masked_scatter(list_mask, flat)
        loss = plackett_luce_loss(rewards, ranks, list_mask)
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean(flat**2)
        mode = "train" if self.model.training else "eval"
        with torch.no_grad():
            best = torch.where(list_mask & (ranks == 0), rewards, torch.full_like(rewards, float("-inf"))).amax(dim=1)
            rest = torch.where(list_mask & (ranks > 0), rewards, torch.full_like(rewards, float("-inf"))).amax(dim=1)
            self._metrics[mode]["accuracy"].append((best > rest).float().mean().item())
        return (loss, outputs) if return_outputs else loss
