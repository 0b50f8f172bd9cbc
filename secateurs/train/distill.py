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

With top-k targets there are two ways to make a distribution of the teacher's k entries
(`heal.distill.tail`):

- tail bucket (the default): k + 1 bins, the k tokens and one bin for the rest of the
  vocabulary, which holds 1 - (the top-k's probability); the stored log-probabilities are
  over the whole vocabulary, so that mass is known. The student is binned the same way
  (its own probability of the k tokens, and the rest), and the KL is taken between the two
  binned distributions: a lower bound of the whole-vocabulary KL, exact where the teacher
  has no tail. The student keeps the teacher's share of mass outside the top-k;
- renormalised: the k entries alone, renormalised to sum to one, against the student's
  softmax over the whole vocabulary. This asks the student to put *no* mass outside the
  teacher's top-k (on SmolLM2 those k = 64 hold 90% of the teacher's probability), a bias
  that showed as slightly worse held-out bits per byte than cross-entropy alone
  (bench/RESULTS.md).

A temperature T != 1 tempers the binned (or renormalised) log-probabilities of both sides:
the cache holds log-probabilities at T = 1, and the tempered mass of a tail is not known
from them. The same k gives the same loss online and cached, up to the cache's float16
rounding.
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
                           alpha: float, temperature: float, tail: bool = True) -> tuple[torch.Tensor, dict]:
    """The same loss with the teacher given as its top-k (ids and log-probabilities over the
    whole vocabulary, [batch, seq, k], aligned with the logits' positions): with the rest of
    the vocabulary as one more bin (`tail`), or renormalised over the k."""
    check_weights(alpha, temperature)
    if int(teacher_ids.max()) >= student_logits.shape[-1]:
        raise ValueError(f"teacher token id {int(teacher_ids.max())} is outside the student's "
                         f"vocabulary ({student_logits.shape[-1]}): distill from the model the "
                         "student was pruned from, with the same tokenizer")
    keep = labels[:, 1:] != IGNORE_INDEX
    student, ce = _student_and_ce(student_logits, labels, keep)
    ids = teacher_ids[:, :-1][keep]
    teacher = teacher_logprobs[:, :-1][keep].float()
    if tail:
        teacher, student_bins = _with_tail(teacher), _with_tail(
            F.log_softmax(student, dim=-1).gather(-1, ids))
        teacher = F.log_softmax(teacher / temperature, dim=-1)
        student_bins = F.log_softmax(student_bins / temperature, dim=-1)
    else:
        teacher = F.log_softmax(teacher / temperature, dim=-1)
        student_bins = F.log_softmax(student / temperature, dim=-1).gather(-1, ids)
    kl = (teacher.exp() * (teacher - student_bins)).sum(-1).mean() * temperature ** 2
    return alpha * kl + (1.0 - alpha) * ce, {"kl": kl.detach(), "ce": ce.detach()}


TAIL_FLOOR = 1e-6  # least tail mass: float16 rounding can make a top-k sum past one


def _with_tail(logprobs: torch.Tensor) -> torch.Tensor:
    """[n, k] log-probabilities over the whole vocabulary -> [n, k + 1] with the log of the
    remaining mass appended (log(1 - sum p), computed as log(-expm1(logsumexp)))."""
    covered = torch.logsumexp(logprobs, dim=-1, keepdim=True).clamp(max=0.0)
    rest = torch.log((-torch.expm1(covered)).clamp(min=TAIL_FLOOR))
    return torch.cat([logprobs, rest], dim=-1)


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
                 alpha: float = 0.5, temperature: float = 1.0, tail: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        check_weights(alpha, temperature)
        self.teacher = teacher
        if teacher is not None:
            teacher.eval().requires_grad_(False)
        self.top_k = top_k
        self.alpha, self.temperature, self.tail = float(alpha), float(temperature), bool(tail)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        cached = {key: inputs[key] for key in TARGET_KEYS if key in inputs}
        model_inputs = {k: v for k, v in inputs.items() if k != "labels" and k not in TARGET_KEYS}
        outputs = model(**model_inputs, use_cache=False)
        weights = dict(alpha=self.alpha, temperature=self.temperature)
        topk_weights = dict(weights, tail=self.tail)
        if self.teacher is None:
            if len(cached) != len(TARGET_KEYS):
                raise ValueError("distillation from a cache needs each batch to carry "
                                 f"{TARGET_KEYS} (secateurs.train.heal.CachedTeacherCollator)")
            loss, parts = topk_distillation_loss(outputs.logits, cached["teacher_ids"],
                                                 cached["teacher_logprobs"], labels, **topk_weights)
        else:
            teacher_logits = self._teacher_logits(model_inputs, outputs.logits.device)
            if self.top_k:
                ids, logprobs = teacher_top_k(teacher_logits, self.top_k)
                loss, parts = topk_distillation_loss(outputs.logits, ids, logprobs, labels,
                                                     **topk_weights)
            else:
                loss, parts = distillation_loss(outputs.logits, teacher_logits, labels, **weights)
        self._last_parts = parts
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _teacher_logits(self, model_inputs: dict, device) -> torch.Tensor:
        if next(self.teacher.parameters()).device != device:
            self.teacher.to(device)
        return self.teacher(**model_inputs, use_cache=False).logits
