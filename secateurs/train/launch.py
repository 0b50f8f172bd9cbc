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
from pathlib import Path

from secateurs import settings
from secateurs.io import write_json
from secateurs.train.stage import checkpoint_dir_for, is_main_process, launch_command

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
