"""Burns et al.'s auxiliary confidence loss (2023, "Weak-to-strong generalization", eq. 1), for token sequences.

    L = (1 − α) · CE(f, f_w) + α · CE(f, t(f))

f is the student, f_w the weak teacher's label, t(f) the student's own prediction hardened. The paper
hardens a binary classifier's output with a threshold; here the labels are the tokens of the teacher's
solution, so t(f) is the student's arg-max token at each position of that solution (teacher-forced, the
same positions the first term scores). The second term lets a student that is confident where the
teacher is wrong keep its own answer instead of imitating the error. α rises linearly from 0 to its
maximum over the first `warmup` fraction of the steps (the paper: α_max 0.75 for its largest students,
0.5 otherwise, warmed up over the first 20% of training).
"""

from __future__ import annotations

from typing import Any


class ConfidenceLoss:
    """A `compute_loss_func` for transformers' Trainer (and TRL's SFTTrainer); `callback()` keeps α's warm-up
    in step with the trainer."""

    def __init__(self, weight: float, warmup: float = 0.2):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"confidence loss weight must be within 0..1, got {weight}")
        if not 0.0 <= warmup <= 1.0:
            raise ValueError(f"confidence loss warm-up must be within 0..1, got {warmup}")
        self.weight, self.warmup = weight, warmup
        self.progress = 1.0
        """Fraction of training done (set by `callback()`; 1 outside a trainer: α at its maximum)."""

    @property
    def alpha(self) -> float:
        if self.warmup == 0:
            return self.weight
        return self.weight * min(1.0, self.progress / self.warmup)

    def __call__(self, outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        return confidence_loss(outputs.logits, labels, self.alpha, num_items_in_batch)

    def callback(self) -> Any:
        from transformers import TrainerCallback

        loss = self

        class WarmUp(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers' signature
                loss.progress = state.global_step / max(1, state.max_steps)

        return WarmUp()


def confidence_loss(logits: Any, labels: Any, alpha: float, num_items: Any = None) -> Any:
    """Mean over the labeled tokens (labels ≠ −100) of (1 − α)·CE(label) + α·CE(own arg-max), next-token shifted
    as causal language models are trained; divided by `num_items` (the trainer's count over the whole
    accumulated batch) when given."""
    import torch.nn.functional as F

    logits = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    mask = targets != -100
    flat = logits.reshape(-1, logits.shape[-1])
    teacher = F.cross_entropy(flat, targets.reshape(-1).clamp(min=0), reduction="none")
    own = F.cross_entropy(flat, flat.detach().argmax(-1), reduction="none")
    per_token = ((1 - alpha) * teacher + alpha * own) * mask.reshape(-1)
    count = mask.sum() if num_items is None else num_items
    return per_token.sum() / (count.clamp(min=1) if hasattr(count, "clamp") else max(1, int(count)))
