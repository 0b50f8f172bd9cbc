"""Cluster resources of the workflow's rules, as snakemake-executor-plugin-slurm reads them.

Rules ask for `mem_mb`, `runtime` (minutes), `cpus_per_task` and `gpu`; the config's
`resources:` section overrides any of them per rule and adds what a site needs
(`gpu_model`, `gres`, `slurm_partition`, `slurm_account`, `slurm_extra`, ...). Locally
Snakemake only schedules by them; on SLURM the plugin turns them into the sbatch line.

Training on several nodes needs a different shape of allocation, built here so that the
rules stay declarations. With plugin 2.8:

- `nodes: N` and `tasks: N` give `--nodes=N --ntasks=N`: one task per node, each of which
  becomes one torchrun (secateurs.train.launch) that starts `num_processes` ranks;
- GPUs go through `gres: gpu[:model]:P`, which SLURM counts per node, because `gpu: G`
  becomes `--gpus=G` for the whole job and SLURM may then place 6 on one node and 2 on the
  other;
- `mpi: srun` makes the jobstep plugin run the rule on the first node as it is, instead of
  inside `srun -n1` (one task on one node), so the rule's own srun reaches every node;
- `tasks_per_gpu: 0` keeps the plugin from reading `tasks` as `--ntasks-per-gpu` on a GPU
  job (it falls back to `tasks` for that flag when `tasks_per_gpu` is unset).
"""

from __future__ import annotations

# What a rule asks for when the config's `resources:` says nothing: sized for the demo on
# a laptop (it uses about 1 GB and 2 cores), so a local run announces what it really uses.
# A real model's recipe sets its rules' memory, time, CPUs and GPUs in `resources:`.
BASELINE = {
    "light": {"mem_mb": 2000, "runtime": 60, "cpus_per_task": 1, "gpu": 0},
    "gpu": {"mem_mb": 4000, "runtime": 120, "cpus_per_task": 2, "gpu": 0},
}


def configured(config: dict, rule_name: str) -> dict:
    """What the config's `resources: {rule: ...}` says for one rule (may be nothing)."""
    return (config.get("resources") or {}).get(rule_name) or {}


def rule_resources(config: dict, rule_name: str, kind: str = "light") -> dict:
    """A rule's resources: the kind's defaults, overridden by config `resources: {rule: }`."""
    return {**BASELINE[kind], **configured(config, rule_name)}


def training_resources(config: dict, rule_name: str, section: str) -> dict:
    """A training rule's resources for `num_processes` per node on `num_nodes` nodes.

    GPUs per node: the config's `resources: {rule: {gpu: G}}` when it names them (0 for CPU
    nodes), else one per process once there are several. Several nodes: the shape the
    module docstring explains, with `mem_mb` and `cpus_per_task` per node.
    """
    merged = rule_resources(config, rule_name, "gpu")
    processes = int(config[section].get("num_processes") or 1)
    nodes = int(config[section].get("num_nodes") or 1)
    if "gpu" not in configured(config, rule_name) and processes > 1:
        merged["gpu"] = processes
    if nodes <= 1:
        return merged
    per_node = int(merged.pop("gpu") or 0)
    model = merged.pop("gpu_model", None)
    if "gres" not in merged and per_node:
        merged["gres"] = f"gpu:{model}:{per_node}" if model else f"gpu:{per_node}"
    merged.update(nodes=nodes, tasks=nodes, mpi="srun", tasks_per_gpu=0)
    return merged
