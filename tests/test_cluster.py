"""secateurs.workflow.cluster: rule resources, and the sbatch line snakemake-executor-plugin-slurm makes of them.

The sbatch lines come from the installed plugin's own functions (`get_submit_command`,
`set_gres_string`), given a job that carries only what they read: its resources and
threads. So a change in how the plugin reads resources shows up here.
"""

from __future__ import annotations

import pytest

from secateurs.workflow.cluster import rule_resources, training_resources
from secateurs.train.checks import check_training_gpus
from secateurs.train.launch import multi_node
from secateurs.train.launch import launch_command


def config(heal=None, resources=None):
    return {"heal": {"num_processes": 1, **(heal or {})}, "chat": {"num_processes": 1},
            "resources": resources or {}}


class Resources(dict):
    """Snakemake's job resources as the plugin reads them: .get() and attributes."""

    __getattr__ = dict.__getitem__


class Job:
    def __init__(self, resources: dict, threads: int = 2):
        self.resources, self.threads = Resources(resources), threads


def sbatch_line(resources: dict) -> str:
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = Job(resources)
    params = {"run_uuid": "uuid", "slurm_logfile": "log", "comment_str": "heal",
              "account": "", "partition": "-p gpu", "workdir": "/work"}
    return get_submit_command(job, params) + set_gres_string(job)


def test_rule_resources_take_config_overrides():
    got = rule_resources({"resources": {"mix": {"mem_mb": 9000, "slurm_partition": "big"}}}, "mix")
    assert got == {"mem_mb": 9000, "runtime": 60, "cpus_per_task": 1, "gpu": 0,
                   "slurm_partition": "big"}


def test_the_demo_announces_what_a_laptop_has():
    """Without `resources:` a training rule asks for what the demo uses (about 1 GB, 2
    cores), not for a cluster node; recipes size their own."""
    assert rule_resources({}, "heal", "gpu") == {"mem_mb": 4000, "runtime": 120,
                                                 "cpus_per_task": 2, "gpu": 0}


def test_one_node_asks_a_gpu_per_process_unless_told():
    assert training_resources(config({"num_processes": 4}), "heal", "heal")["gpu"] == 4
    assert training_resources(config(), "heal", "heal")["gpu"] == 0  # the CPU demo
    told = config({"num_processes": 2}, {"heal": {"gpu": 0}})  # DDP on CPU nodes
    assert training_resources(told, "heal", "heal")["gpu"] == 0


def test_several_nodes_get_one_task_and_the_gpus_on_each_node():
    got = training_resources(config({"num_processes": 4, "num_nodes": 2},
                                    {"heal": {"gpu_model": "a100", "mem_mb": 200000}}),
                             "heal", "heal")
    assert got["nodes"] == 2 and got["tasks"] == 2 and got["mpi"] == "srun"
    assert got["gres"] == "gpu:a100:4" and "gpu" not in got and "gpu_model" not in got
    line = sbatch_line(got)
    assert "--nodes=2" in line and "--ntasks=2" in line and "--mem 200000" in line
    assert "--gres=gpu:a100:4" in line  # per node: SLURM cannot put 6 on one and 2 on another
    assert "--gpus" not in line and "--ntasks-per-gpu" not in line


def test_one_node_sbatch_line_asks_for_all_gpus():
    line = sbatch_line(training_resources(config({"num_processes": 4}), "heal", "heal"))
    assert "--gpus=4" in line and "--nodes" not in line


def test_cpu_nodes_get_no_gres():
    got = training_resources(config({"num_nodes": 2}, {"heal": {"gpu": 0}}), "heal", "heal")
    line = sbatch_line(got)
    assert "gres" not in got and "--gres" not in line and "--gpus" not in line
    assert "--nodes=2" in line and "--ntasks=2" in line


def test_launch_line_for_several_nodes():
    line = launch_command(4, ["heal", "--model", "m"], num_nodes=2, rendezvous="node1:29400",
                          run_id="77")
    assert line[:7] == ["srun", "--nodes", "2", "--ntasks", "2", "--ntasks-per-node", "1"]
    torchrun = line[line.index("torch.distributed.run") + 1:]
    assert torchrun[:10] == ["--nnodes", "2", "--nproc_per_node", "4", "--rdzv_backend", "c10d",
                             "--rdzv_endpoint", "node1:29400", "--rdzv_id", "77"]
    assert line[-4:] == ["secateurs", "heal", "--model", "m"]
    assert "--standalone" not in line
    with pytest.raises(ValueError, match="rendezvous"):
        launch_command(4, ["heal"], num_nodes=2)


def test_several_nodes_outside_slurm_say_so(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(RuntimeError, match=r"heal.num_nodes` = 2.*SLURM.*Fix: set heal.num_nodes: 1"):
        multi_node("heal", 2)
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    got = multi_node("heal", 2)
    host, port = got["rendezvous"].rsplit(":", 1)
    assert got["run_id"] == "12" and got["num_nodes"] == 2 and host and int(port) > 0


def test_idle_gpus_are_a_config_error():
    problems = check_training_gpus(config(resources={"heal": {"gpu": 8}}))
    assert len(problems) == 1
    assert "resources.heal.gpu` = 8" in problems[0] and "heal.num_processes: 8" in problems[0]
    assert check_training_gpus(config({"num_processes": 8}, {"heal": {"gpu": 8}})) == []
