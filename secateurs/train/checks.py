"""The training stage's config checks that a schema cannot express: GPUs a rule would
hold idle, and distillation without pruning or with a teacher cache of the whole vocabulary.
CUDA-only settings are checked when a run starts, on the machine that runs the jobs
(secateurs.train.hardware, called from the Snakefile's onstart).
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
    distill = config["heal"]["distill"]
    if distill["enabled"] and distill["mode"] == "cached" and distill["top_k"] is None:
        problems.append("config key `heal.distill.top_k` is null with `heal.distill.mode: cached`: "
                        "a teacher cache keeps the top k entries per position, not the whole "
                        "vocabulary. Fix: set heal.distill.top_k (64 is typical), or "
                        "heal.distill.mode: online for the whole-vocabulary KL.")
    return problems
