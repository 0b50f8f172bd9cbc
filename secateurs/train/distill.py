"""Knowledge distillation from the unpruned model while healing (Minitron).

Minitron (Muralidharan et al. 2024, "Compact Language Models via Pruning and Knowledge
Distillation") heals a pruned model by matching the original model's next-token
distribution: loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE, with both
distributions softened at temperature T (Hinton et al. 2015; the T^2 keeps the gradient
scale independent of T).

The teacher's distribution comes from one of two places (`heal.distill.mode`):

- `cached`: `secateurs.train.teacher_logits` ran the teacher once over the packed data and
  kept its top-k log-probabilities per position; the collator reads them with each batch
  and the teacher is never loaded while training;
- `online`: the frozen teacher runs beside the student at every step (its top-k taken on
  the fly, or the whole vocabulary with `top_k: null`).

With top-k targets the teacher's k entries are renormalised into a distribution (zero
elsewhere) and compared with the student's softmax over the whole vocabulary: the KL of
that truncated teacher, which pushes the student's mass onto the teacher's likely tokens.
The same k gives the same loss online and cached, up to the cache's float16 rounding.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from transformers import Trainer

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
TARGET_KEYS = ("teacher_ids", "teacher_logprobs")  # a batch's cached teacher top-k


def check_weights(alpha: float, temperature: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distill.alpha={alpha}: must be in [0, 1]")
    if temperature <= 0:
        raise ValueError(f"distill.temperature={temperature}: must be > 0")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, *, alpha: float, temperature: float) -> tuple[torch.Tensor, dict]:
    """alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE over the positions with a label,
    the KL over the whole vocabulary.

    Logits are [batch, seq, vocab] for positions predicting the *next* token, so labels are
    shifted by one like the model's own causal LM loss. Returns the loss and its parts.
    """
    check_weights(alpha, temperature)
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(f"teacher vocabulary ({teacher_logits.shape[-1]}) differs from the "
                         f"student's ({student_logits.shape[-1]}): distill from the model the "
                         "student was pruned from, with the same tokenizer")
    keep = labels[:, 1:] != IGNORE_INDEX
    student, ce = _student_and_ce(student_logits, labels, keep)
    teacher = teacher_logits[:, :-1][keep].float()
    kl = F.kl_div(F.log_softmax(student / temperature, dim=-1),
                  F.log_softmax(teacher / temperature, dim=-1),
                  log_target=True, reduction="batchmean") * temperature ** 2
    return alpha * kl + (1.0 - alpha) * ce, {"kl": kl.detach(), "ce": ce.detach()}


def topk_distillation_loss(student_logits: torch.Tensor, teacher_ids: torch.Tensor,
                           teacher_logprobs: torch.Tensor, labels: torch.Tensor, *,
                           alpha: float, temperature: float) -> tuple[torch.Tensor, dict]:
    """The same loss with the teacher given as its top-k (ids and log-probabilities
    [batch, seq, k], aligned with the logits' positions), renormalised over those k."""
    check_weights(alpha, temperature)
    if int(teacher_ids.max()) >= student_logits.shape[-1]:
        raise ValueError(f"teacher token id {int(teacher_ids.max())} is outside the student's "
                         f"vocabulary ({student_logits.shape[-1]}): distill from the model the "
                         "student was pruned from, with the same tokenizer")
    keep = labels[:, 1:] != IGNORE_INDEX
    student, ce = _student_and_ce(student_logits, labels, keep)
    ids = teacher_ids[:, :-1][keep]
    teacher = F.log_softmax(teacher_logprobs[:, :-1][keep].float() / temperature, dim=-1)
    student_at_ids = F.log_softmax(student / temperature, dim=-1).gather(-1, ids)
    kl = (teacher.exp() * (teacher - student_at_ids)).sum(-1).mean() * temperature ** 2
    return alpha * kl + (1.0 - alpha) * ce, {"kl": kl.detach(), "ce": ce.detach()}


def _student_and_ce(student_logits, labels, keep):
    student = student_logits[:, :-1][keep].float()
    return student, F.cross_entropy(student, labels[:, 1:][keep])


def teacher_top_k(teacher_logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, log-probabilities) of the teacher's k most likely next tokens per position,
    log-probabilities over the whole vocabulary (what the cache stores)."""
    values, ids = torch.log_softmax(teacher_logits.float(), dim=-1).topk(k, dim=-1)
    return ids, values


class DistillationTrainer(Trainer):
    """A Trainer whose loss distils from the teacher: online (`teacher` given) or from the
    cached top-k each batch carries (`teacher=None`; secateurs.train.teacher_logits).

    An online teacher is kept out of the optimizer and out of DeepSpeed's engine (it is not
    the trainer's model), put in eval mode and moved to the student's device on first use.
    The loss is a per-micro-batch mean, so the Trainer divides it by the accumulation steps.
    """

    loss_is_scaled_for_ga = False

    def __init__(self, *args, teacher: torch.nn.Module | None = None, top_k: int | None = None,
                 alpha: float = 0.5, temperature: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        check_weights(alpha, temperature)
        self.teacher = teacher
        if teacher is not None:
            teacher.eval().requires_grad_(False)
        self.top_k = top_k
        self.alpha, self.temperature = float(alpha), float(temperature)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        cached = {key: inputs[key] for key in TARGET_KEYS if key in inputs}
        model_inputs = {k: v for k, v in inputs.items() if k != "labels" and k not in TARGET_KEYS}
        outputs = model(**model_inputs, use_cache=False)
        weights = dict(alpha=self.alpha, temperature=self.temperature)
        if self.teacher is None:
            if len(cached) != len(TARGET_KEYS):
                raise ValueError("distillation from a cache needs each batch to carry "
                                 f"{TARGET_KEYS} (secateurs.train.heal.CachedTeacherCollator)")
            loss, parts = topk_distillation_loss(outputs.logits, cached["teacher_ids"],
                                                 cached["teacher_logprobs"], labels, **weights)
        else:
            teacher_logits = self._teacher_logits(model_inputs, outputs.logits.device)
            if self.top_k:
                ids, logprobs = teacher_top_k(teacher_logits, self.top_k)
                loss, parts = topk_distillation_loss(outputs.logits, ids, logprobs, labels, **weights)
            else:
                loss, parts = distillation_loss(outputs.logits, teacher_logits, labels, **weights)
        self._last_parts = parts
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _teacher_logits(self, model_inputs: dict, device) -> torch.Tensor:
        if next(self.teacher.parameters()).device != device:
            self.teacher.to(device)
        return self.teacher(**model_inputs, use_cache=False).logits
