"""Trainer arguments from a stage's config section, and the step budget they train for.

- `training_arguments`: a `TrainingArguments` (or trl `SFTConfig`) from a `heal:` or
  `chat:` section, with CPU/bf16 decided from the hardware, not from the config alone;
- `steps_for_budget`: optimizer steps from a token budget (Minitron and Sheared-LLaMA
  budget healing in tokens; epochs mean nothing for a packed corpus);
- `check_optimizer`: an optimizer refused here, before anything loads, when it cannot run.

The values a setting may take (schedulers, optimizers, methods) are read from
`secateurs/schema.yaml`, their one definition, never repeated here.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import torch
from transformers import TrainingArguments

from secateurs import settings


class TrainingConfigError(ValueError):
    """A stage's config section holds a value the trainer cannot use."""


def schema_choices(key: str) -> frozenset:
    """The values schema.yaml allows for the training setting `key` (heal and chat share them)."""
    return frozenset(settings.schema()["$defs"]["training"]["properties"][key]["enum"])


SCHEDULERS = schema_choices("lr_scheduler")
OPTIMIZERS = schema_choices("optimizer")
# bitsandbytes' optimizers: 8-bit AdamW states (AEZAKMI's adamw_bnb_8bit) and the paged ones
BNB_OPTIMIZERS = {"adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit"}


# ----------------------------------------------------------------------------- hardware


def use_bf16(setting: Any) -> bool:
    """Resolve `bf16: auto|true|false`.

    auto = bf16 only on a CUDA device that supports it (Ampere+): on CPU the autocast path
    is slower than fp32 for small models, and on older GPUs bf16 is emulated.
    """
    if setting in (True, "true", "True"):
        return True
    if setting in (False, "false", "False", None):
        return False
    if setting == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    raise TrainingConfigError(f"config key bf16={setting!r}: use auto, true or false")


# ----------------------------------------------------------------------------- budget


def steps_for_budget(token_budget: int, *, batch_size: int, gradient_accumulation_steps: int,
                     seq_len: int, num_processes: int = 1) -> int:
    """Optimizer steps that consume at least `token_budget` tokens (ceil, at least one)."""
    per_step = tokens_per_step(batch_size=batch_size, seq_len=seq_len, num_processes=num_processes,
                               gradient_accumulation_steps=gradient_accumulation_steps)
    if token_budget is None or int(token_budget) <= 0:
        raise TrainingConfigError(f"config key token_budget={token_budget!r}: give a positive "
                                  "number of tokens to train on")
    return max(1, math.ceil(int(token_budget) / per_step))


def tokens_per_step(*, batch_size: int, gradient_accumulation_steps: int, seq_len: int,
                    num_processes: int = 1) -> int:
    return int(batch_size) * int(gradient_accumulation_steps) * int(seq_len) * int(num_processes)


# ----------------------------------------------------------------------------- arguments


def training_arguments(config: dict, checkpoint_dir: str | os.PathLike, *, max_steps: int | None = None,
                       args_class: type = TrainingArguments, deepspeed: str | dict | None = None,
                       **extra: Any) -> TrainingArguments:
    """Build trainer arguments from a stage's config section.

    Checkpoints go to `checkpoint_dir` (outside the rule's outputs, so Snakemake does not
    delete them when a job fails); report_to is "none" because our own callbacks write the
    CSV and the TensorBoard events where we choose.
    """
    kwargs: dict[str, Any] = dict(
        optim=check_optimizer(config),
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=int(config["batch_size"]),
        gradient_accumulation_steps=int(config["gradient_accumulation_steps"]),
        learning_rate=float(config["learning_rate"]),
        lr_scheduler_type=check_scheduler(config),
        # transformers 5 folded warmup_ratio into warmup_steps: a float in [0, 1) is a ratio.
        warmup_steps=_warmup(config),
        weight_decay=float(config["weight_decay"]),
        max_grad_norm=float(config["max_grad_norm"]),
        adam_beta2=float(config["adam_beta2"]),
        logging_steps=int(config["logging_steps"]),
        save_strategy="steps",
        save_steps=int(config["save_steps"]),
        save_total_limit=int(config["save_total_limit"]),
        seed=int(config["seed"]),
        bf16=use_bf16(config["bf16"]),
        use_cpu=not torch.cuda.is_available(),
        report_to="none",
        disable_tqdm=bool(config["disable_tqdm"]),
        dataloader_num_workers=int(config["dataloader_num_workers"]),
        include_num_input_tokens_seen="all",
        remove_unused_columns=False,
        # every trainable weight of a decoder-only LM (or its LoRA adapter) takes part in
        # each forward; transformers' default (True without checkpointing) costs DDP an
        # extra pass over the autograd graph every step
        ddp_find_unused_parameters=False,
        deepspeed=deepspeed if deepspeed is not None else config["deepspeed"],
    )
    # transformers 5.23 renamed gradient_checkpointing to activation_checkpointing (the old
    # name mirrors the new one, so trl reading `args.gradient_checkpointing` still works);
    # trl's SFTConfig defaults it to True, so it is always set explicitly here.
    kwargs["activation_checkpointing"] = bool(config["gradient_checkpointing"])
    if kwargs["activation_checkpointing"]:
        kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    if max_steps is not None:
        kwargs["max_steps"] = int(max_steps)
    elif config["max_steps"]:
        kwargs["max_steps"] = int(config["max_steps"])
    else:
        kwargs["num_train_epochs"] = float(config["num_train_epochs"] or 1)
    kwargs.update(extra)
    return args_class(**kwargs)


def _warmup(config: dict) -> float:
    if config["warmup_steps"] is not None:
        return int(config["warmup_steps"])
    ratio = float(config["warmup_ratio"])
    if not 0.0 <= ratio < 1.0:
        raise TrainingConfigError(f"config key warmup_ratio={ratio}: must be in [0, 1)")
    return ratio


def check_scheduler(config: dict) -> str:
    """The schedule for TrainingArguments.lr_scheduler_type, one the schema allows."""
    scheduler = config["lr_scheduler"]
    if scheduler not in SCHEDULERS:
        raise TrainingConfigError(f"config key lr_scheduler={scheduler!r}: use one of "
                                  f"{sorted(SCHEDULERS)}")
    return scheduler


def check_optimizer(config: dict) -> str:
    """The optimizer name for TrainingArguments.optim, refused here when it cannot run.

    bitsandbytes' optimizers keep their states on CUDA; on CPU transformers would fail
    deep inside the first step, so the stage stops before loading anything.
    """
    name = config["optimizer"]
    if name not in OPTIMIZERS:
        raise TrainingConfigError(f"config key optimizer={name!r}: use one of {sorted(OPTIMIZERS)}")
    if name in BNB_OPTIMIZERS:
        if not torch.cuda.is_available():
            raise TrainingConfigError(f"config key optimizer={name!r} needs a CUDA GPU (bitsandbytes "
                                      "keeps its states there). Fix: use optimizer: adamw_torch here")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise TrainingConfigError(f"config key optimizer={name!r} needs bitsandbytes. Fix: pip "
                                      "install bitsandbytes, or use optimizer: adamw_torch")
    return name
