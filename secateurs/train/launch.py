"""Running a training stage from a workflow rule: in-process, or under torchrun.

One process (the CPU demo, one GPU) calls the stage function directly, so tracebacks and
logs stay in the rule's log. Several processes (`num_processes` in the stage's config,
one per GPU of the job's allocation) run `python -m secateurs heal|chat` under torchrun inside the
same job, which is how a SLURM job with `gpu=N` trains on all N GPUs (with DeepSpeed when
the config names a ZeRO file). Several nodes (`num_nodes`, SLURM only) add srun, which
starts one torchrun per node of the job's allocation; they meet at a port of the node
that runs the rule. The same code path serves all of these; only the launcher differs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

from secateurs import settings
from secateurs.io import write_json
from secateurs.train.checkpoints import checkpoint_dir_for
from secateurs.train.processes import is_main_process

log = logging.getLogger(__name__)

SECTIONS = {"heal": "heal", "chat-sft": "chat"}
COMMANDS = {"heal": "heal", "chat-sft": "chat"}  # `python -m secateurs <command>`


def train_stage(stage: str, *, model: str, out: str, log_csv: str, config: dict,
                checkpoint_dir: str | os.PathLike | None = None,
                checkpoint_root: str | os.PathLike | None = None, packed: str | None = None,
                data: str | None = None, teacher: str | None = None,
                summary_json: str | None = None, heldout: dict | None = None,
                recovery_csv: str | None = None, teacher_logits: str | None = None) -> dict | None:
    """Run `heal` or `chat-sft` with `config["num_processes"]` processes on each of
    `config["num_nodes"]` nodes.

    Checkpoints go to `checkpoint_dir`, or to the run's own folder under `checkpoint_root`
    named by its fingerprint (what the workflow does: the same run resumes, another starts
    fresh, and a setting that does not change the result keeps the folder)."""
    config = settings.complete(SECTIONS[stage], config)
    if checkpoint_dir is None:
        checkpoint_dir = checkpoint_dir_for(checkpoint_root, _fingerprint(
            stage, model, config, packed, data, teacher, teacher_logits))
    processes = int(config["num_processes"])
    nodes = int(config["num_nodes"])
    if (processes <= 1 and nodes <= 1) or "WORLD_SIZE" in os.environ:
        # one process, or one rank that a launcher started: train here
        try:
            summary = _in_process(stage, model=model, out=out, checkpoint_dir=checkpoint_dir,
                                  log_csv=log_csv, config=config, packed=packed, data=data,
                                  teacher=teacher, heldout=heldout,
                                  recovery_csv=recovery_csv, teacher_logits=teacher_logits)
        finally:
            end_process_group()
        if summary_json and is_main_process():
            write_json(summary, summary_json)
        return summary
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    config_file = checkpoint_dir / f"{stage}-config.json"
    config_file.write_text(json.dumps({SECTIONS[stage]: config}, indent=2, default=str))
    args = [COMMANDS[stage], "--model", model, "--out", out, "--checkpoint-dir",
            str(checkpoint_dir), "--log-csv", log_csv, "--config", str(config_file)]
    args += ["--packed", packed] if packed else ["--data", data]
    args += ["--teacher", teacher] if teacher else []
    args += ["--teacher-logits", teacher_logits] if teacher_logits else []
    args += ["--summary-json", summary_json] if summary_json else []
    args += [f"--heldout={lang}={path}" for lang, path in (heldout or {}).items()]
    args += ["--recovery-csv", recovery_csv] if recovery_csv else []
    command = launch_command(processes, args, **multi_node(SECTIONS[stage], nodes))
    log.info("launching %d x %d processes: %s", nodes, processes, " ".join(command))
    subprocess.run(command, check=True)
    return None


def launch_command(num_processes: int, stage_args: list[str] | None = None, *,
                   deepspeed_config: str | None = None, num_nodes: int = 1,
                   rendezvous: str | None = None, run_id: str | None = None,
                   srun: bool = True) -> list[str]:
    """The command line that runs a training stage on `num_processes` processes per node.

    One process runs plain `python -m secateurs heal|chat`; more use torchrun (one node):
    accelerate's `--cpu` mode silently runs one process and refuses DeepSpeed (STACK.md), and
    torchrun behaves the same on CPU and GPU. DeepSpeed is selected by the stage's config
    (`deepspeed: config/deepspeed/zero2.json`) or `--deepspeed` here, and the HF Trainer
    initialises it inside each process. `--standalone` picks a free rendezvous port, so two
    jobs on one node do not collide. Example::

        launch_command(2, ["heal", "--model", m, "--packed", p, "--out", o, "--checkpoint-dir", c,
                           "--log-csv", l, "--config", "heal.yaml"],
                       deepspeed_config="config/deepspeed/zero2.json")

    Several nodes (`num_nodes` > 1, inside a SLURM allocation of that many nodes): `srun`
    starts one torchrun per node, and the torchruns meet at `rendezvous` (host:port of the
    node that runs the rule) under `run_id` (the SLURM job id), giving a world of
    num_nodes x num_processes ranks. `srun=False` leaves out the srun prefix: the line one
    node runs, which is what a test can start twice on one machine.
    """
    stage_args = list(stage_args or [])
    if deepspeed_config:
        stage_args += ["--deepspeed", str(deepspeed_config)]
    train = ["-m", "secateurs", *stage_args]
    if num_nodes <= 1 and num_processes <= 1:
        return [sys.executable, *train]
    runner = [sys.executable, "-m", "torch.distributed.run"]
    per_node = ["--nproc_per_node", str(int(num_processes))]
    if num_nodes <= 1:
        return [*runner, "--standalone", *per_node, *train]
    if not rendezvous or not run_id:
        raise ValueError("num_nodes > 1 needs a rendezvous host:port and a run id")
    torchrun = [*runner, "--nnodes", str(int(num_nodes)), *per_node, "--rdzv_backend", "c10d",
                "--rdzv_endpoint", rendezvous, "--rdzv_id", str(run_id), *train]
    if not srun:
        return torchrun
    # --overlap: still places the tasks where a profile runs the rule itself in an srun step
    return ["srun", "--nodes", str(int(num_nodes)), "--ntasks", str(int(num_nodes)),
            "--ntasks-per-node", "1", "--kill-on-bad-exit=1", "--overlap", *torchrun]


def _in_process(stage: str, *, model, out, checkpoint_dir, log_csv, config, packed, data,
                teacher, heldout=None, recovery_csv=None, teacher_logits=None) -> dict:
    log_placement()
    if stage == "heal":
        from secateurs.train.heal import heal

        return heal(model, packed, out, checkpoint_dir=checkpoint_dir, log_csv=log_csv,
                    config=config, teacher_dir=teacher, heldout=heldout,
                    recovery_csv=recovery_csv, teacher_logits=teacher_logits)
    from secateurs.train.sft import chat_sft

    return chat_sft(model, data, out, checkpoint_dir=checkpoint_dir, log_csv=log_csv, config=config)


def _fingerprint(stage, model, config, packed, data, teacher, teacher_logits=None) -> dict:
    if stage == "heal":
        from secateurs.train.heal import heal_fingerprint

        return heal_fingerprint(model, packed, config, teacher, teacher_logits=teacher_logits)
    from secateurs.train.sft import chat_fingerprint

    return chat_fingerprint(model, data, config)


def log_placement() -> None:
    """Which rank runs where: the rule's log then shows a multi-node job used every node."""
    log.info("rank %s of %s (local rank %s) on node %s", os.environ.get("RANK", "0"),
             os.environ.get("WORLD_SIZE", "1"), os.environ.get("LOCAL_RANK", "0"),
             os.environ.get("SLURMD_NODENAME") or socket.gethostname())


def end_process_group() -> None:
    """Leave the process group before the interpreter exits.

    A rank that exits with the group alive tears gloo's/NCCL's worker threads down during
    interpreter shutdown, where C++ std::terminate aborts it ("terminate called without an
    active exception", SIGABRT), and the other torchrun agent then waits out its exit
    barrier (300 s). Destroying the group first ends the threads cleanly."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def multi_node(section: str, nodes: int) -> dict:
    """launch_command's multi-node arguments: rendezvous here, run id = the SLURM job.

    The rule runs on the first node of its allocation (the batch host), so that node serves
    the rendezvous, on a port free there. Outside SLURM there is no allocation to spread
    over, and the error says so instead of waiting for nodes that never come.
    """
    if nodes <= 1:
        return {}
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        raise RuntimeError(
            f"config key `{section}.num_nodes` = {nodes}: training on several nodes needs a "
            "SLURM allocation of that many nodes (run with --profile profiles/slurm), and this "
            f"job is not in one (no SLURM_JOB_ID). Fix: set {section}.num_nodes: 1 here")
    return {"num_nodes": nodes, "rendezvous": f"{socket.gethostname()}:{free_port()}",
            "run_id": job}


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]
