"""Knowledge distillation from the unpruned model while healing (Minitron).

Minitron (Muralidharan et al. 2024, "Compact Language Models via Pruning and Knowledge
Distillation") heals a pruned model by matching the original model's next-token
distribution: loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE, with both
distributions softened at temperature T (Hinton et al. 2015; the T^2 keeps the gradient
scale independent of T). The teacher is frozen and runs in the same process, so a pruned
model and its parent (same tokenizer, same vocabulary) are all it needs.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from transformers import Trainer

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, *, alpha: float, temperature: float) -> tuple[torch.Tensor, dict]:
    """alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE over the positions with a label.

    Logits are [batch, seq, vocab] for positions predicting the *next* token, so labels are
    shifted by one like the model's own causal LM loss. Returns the loss and its parts.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distill.alpha={alpha}: must be in [0, 1]")
    if temperature <= 0:
        raise ValueError(f"distill.temperature={temperature}: must be > 0")
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(f"teacher vocabulary ({teacher_logits.shape[-1]}) differs from the "
                         f"student's ({student_logits.shape[-1]}): distill from the model the "
                         "student was pruned from, with the same tokenizer")
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    student = student_logits[:, :-1][keep].float()
    teacher = teacher_logits[:, :-1][keep].float()
    ce = F.cross_entropy(student, targets[keep])
    kl = F.kl_div(F.log_softmax(student / temperature, dim=-1),
                  F.log_softmax(teacher / temperature, dim=-1),
                  log_target=True, reduction="batchmean") * temperature ** 2
    loss = alpha * kl + (1.0 - alpha) * ce
    return loss, {"kl": kl.detach(), "ce": ce.detach()}


class DistillationTrainer(Trainer):
    """A Trainer whose loss is `distillation_loss` against a frozen teacher.

    The teacher is kept out of the optimizer and out of DeepSpeed's engine (it is not the
    trainer's model), put in eval mode and moved to the student's device on first use.
    The loss is a per-micro-batch mean, so the Trainer divides it by the accumulation steps.
    """

    loss_is_scaled_for_ga = False

    def __init__(self, *args, teacher: torch.nn.Module, alpha: float = 0.5, temperature: float = 1.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval()
        for param in self.teacher.parameters():
            param.requires_grad_(False)
        self.alpha, self.temperature = float(alpha), float(temperature)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**model_inputs, use_cache=False)
        device = outputs.logits.device
        if next(self.teacher.parameters()).device != device:
            self.teacher.to(device)
        with torch.no_grad():
            teacher_logits = self.teacher(**model_inputs, use_cache=False).logits
        loss, parts = distillation_loss(outputs.logits, teacher_logits, labels,
                                        alpha=self.alpha, temperature=self.temperature)
        self._last_parts = parts
        return (loss, outputs) if return_outputs else loss
