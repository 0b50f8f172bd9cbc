"""Training settings that only a CUDA machine can run, refused before any job starts.

QLoRA's 4-bit NF4 base and bitsandbytes' 8-bit/paged optimizers (Dettmers et al. 2022,
2023) run on CUDA only and need the `bitsandbytes` package; `attn_implementation:
flash_attention_2` needs CUDA and `flash-attn`. The training stage itself finds out only
after the jobs before it have run, the base model among them (69 GB for AEZAKMI's Yi-34B),
so the workflow asks here when a run starts (the Snakefile's `onstart`, via
secateurs.config.check_machine), before any job and any download.

Where the jobs run decides what is checked:

- this machine (Snakemake's local executor): CUDA and the packages must be here, whatever
  `resources.<rule>.gpu` says, since locally that number only schedules jobs;
- a cluster (`--profile profiles/slurm`): the nodes cannot be seen from here, so a
  GPU-only setting needs its rule to ask for GPUs (`resources.<rule>.gpu` or `gres`),
  and the training job checks CUDA and the packages again on its node when it starts
  (secateurs.train.models.check_method, secateurs.train.arguments.check_optimizer).

A dry run (`snakemake -n`) runs no job and checks nothing here, so every recipe can be
planned on any machine.
"""

from __future__ import annotations

import importlib.util
from typing import Callable

# bitsandbytes' optimizers, as transformers names them (TrainingArguments.optim)
BNB_OPTIMIZERS = {"adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit"}
# the rule that runs each training section
TRAINING_RULES = {"heal": "heal", "chat": "chat_sft"}
# pip name -> module name
PACKAGES = {"bitsandbytes": "bitsandbytes", "flash-attn": "flash_attn"}


def gpu_only_settings(section: str, settings: dict) -> list[tuple[str, str]]:
    """(`key: value`, pip package it needs) for each CUDA-only setting of a training section."""
    found = []
    if settings.get("method") == "qlora":
        found.append((f"{section}.method: qlora", "bitsandbytes"))
    if settings.get("optimizer") in BNB_OPTIMIZERS:
        found.append((f"{section}.optimizer: {settings['optimizer']}", "bitsandbytes"))
    if settings.get("attn_implementation") == "flash_attention_2":
        found.append((f"{section}.attn_implementation: flash_attention_2", "flash-attn"))
    return found


def gpu_only_problems(config: dict, *, local: bool, cuda: bool | None = None,
                      installed: Callable[[str], bool] | None = None) -> list[str]:
    """What keeps the training stages' CUDA-only settings from running, one line each.

    `config` is the completed workflow config; `local` whether Snakemake runs the jobs on
    this machine. `cuda` and `installed` (pip name -> bool) describe this machine and are
    probed when not given.
    """
    problems = []
    for section, rule in TRAINING_RULES.items():
        settings = config[section]
        if not settings["enabled"]:
            continue
        needs = gpu_only_settings(section, settings)
        if not needs:
            continue
        keys = ", ".join(f"`{key}`" for key, _ in needs)
        if not local:
            asked = (config.get("resources") or {}).get(rule) or {}
            if not asked.get("gpu") and "gpu" not in str(asked.get("gres") or ""):
                problems.append(
                    f"config {keys} need a CUDA GPU, but rule {rule} asks the cluster for none, "
                    f"so it would run on a node without one. Fix: set resources.{rule}.gpu: 1 "
                    "(or a gres with GPUs).")
            continue
        cuda = _cuda_available() if cuda is None else cuda
        if not cuda:
            problems.append(
                f"config {keys} need a CUDA GPU, and this machine, where Snakemake runs rule "
                f"{rule}, has none (resources.{rule}.gpu only schedules jobs here). Fix: run on "
                "a CUDA machine or on a GPU cluster (--profile profiles/slurm), or here use "
                f"{section}.method: lora, {section}.optimizer: adamw_torch and "
                f"{section}.attn_implementation: auto.")
            continue
        installed = installed or _installed
        missing = sorted({package for _, package in needs if not installed(package)})
        if missing:
            problems.append(
                f"config {keys} need {' and '.join(missing)}, which this Python does not have. "
                f"Fix: pip install {' '.join(missing)}.")
    return problems


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _installed(package: str) -> bool:
    return importlib.util.find_spec(PACKAGES.get(package, package)) is not None
