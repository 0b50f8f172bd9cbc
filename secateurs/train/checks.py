"""The training stage's config checks that a schema cannot express: GPUs a rule would
hold idle, distillation without pruning, and CUDA-only settings on a machine without
CUDA. The stage checks its method and optimizer again where it runs
(secateurs.train.stage.check_method/check_optimizer).
"""

from __future__ import annotations

from secateurs.workflow.cluster import configured


TRAINING_RULES = {"heal": "heal", "chat_sft": "chat"}


def check_training_gpus(config: dict) -> list[str]:
    """GPUs a training rule asks for that no process would use.

    One training process drives one GPU (DDP/DeepSpeed data parallelism, not a device map),
    so `gpu: 8` with one process would hold seven idle GPUs for the whole job.
    """
    problems = []
    for rule, section in TRAINING_RULES.items():
        gpus = configured(config, rule).get("gpu")
        processes = int(config[section]["num_processes"])
        if isinstance(gpus, int) and gpus > processes:
            problems.append(
                f"config key `resources.{rule}.gpu` = {gpus} but `{section}.num_processes` = "
                f"{processes}: each training process uses one GPU, so {gpus - processes} would "
                f"sit idle. Fix: set {section}.num_processes: {gpus} (GPUs per node)")
    return problems


def check_distillation(config: dict) -> list[str]:
    """Distillation needs a pruned student: without pruning, teacher and student are one model."""
    problems = []
    if not config["prune"]["enabled"] and config["heal"]["distill"]["enabled"]:
        problems.append("config key `heal.distill.enabled` is true but `prune.enabled` is false: "
                        "distillation teaches the pruned student from the unpruned base, and "
                        "without pruning they are the same model. Fix: set heal.distill.enabled: "
                        "false, or enable pruning.")
    return problems


GPU_ONLY_OPTIMIZERS = {"adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit"}


def check_gpu_only_settings(config: dict) -> list[str]:
    """QLoRA and bitsandbytes' optimizers run on CUDA only: refuse them before any job when
    their rule would run here (no `resources.<rule>.gpu`) and this machine has no GPU.

    A rule given GPUs runs on a cluster node, whose GPUs cannot be seen from here; the
    training stage checks again there (secateurs.train.stage.check_method/check_optimizer).
    """
    problems = []
    for rule, section in TRAINING_RULES.items():
        if not config[section]["enabled"]:
            continue
        section_settings = config[section]
        needs = [f"{section}.method: qlora"] if section_settings["method"] == "qlora" else []
        if section_settings["optimizer"] in GPU_ONLY_OPTIMIZERS:
            needs.append(f"{section}.optimizer: {section_settings['optimizer']}")
        if needs and not configured(config, rule).get("gpu") and not _cuda_available():
            problems.append(
                f"config key{'s' if len(needs) > 1 else ''} `{'`, `'.join(needs)}` "
                f"need{'' if len(needs) > 1 else 's'} a CUDA "
                f"GPU (bitsandbytes), and rule {rule} would run on this machine, which has none. "
                f"Fix: run on a GPU machine, give the rule GPUs (resources.{rule}.gpu: 1, on "
                "a cluster), or use method: lora and optimizer: adamw_torch here.")
    return problems


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
