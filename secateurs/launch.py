"""Running a training stage from a workflow rule: in-process, or under torchrun.

One process (the CPU demo, one GPU) calls the stage function directly, so tracebacks and
logs stay in the rule's log. Several processes (`num_processes` in the stage's config,
one per GPU of the job's allocation) run `secateurs.train_cli` under torchrun inside the
same job, which is how a SLURM job with `gpu=N` trains on all N GPUs (with DeepSpeed when
the config names a ZeRO file). The same code path serves both; only the launcher differs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

from secateurs.training import launch_command

log = logging.getLogger(__name__)

SECTIONS = {"heal": "heal", "chat-sft": "chat"}


def train_stage(stage: str, *, model: str, out: str, checkpoint_dir: str | os.PathLike,
                log_csv: str, config: dict, packed: str | None = None, data: str | None = None,
                teacher: str | None = None) -> dict | None:
    """Run `heal` or `chat-sft` with `config["num_processes"]` processes."""
    processes = int(config.get("num_processes") or 1)
    if processes <= 1:
        return _in_process(stage, model=model, out=out, checkpoint_dir=checkpoint_dir,
                           log_csv=log_csv, config=config, packed=packed, data=data,
                           teacher=teacher)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    config_file = checkpoint_dir / f"{stage}-config.json"
    config_file.write_text(json.dumps({SECTIONS[stage]: config}, indent=2, default=str))
    args = [stage, "--model", model, "--out", out, "--checkpoint-dir", str(checkpoint_dir),
            "--log-csv", log_csv, "--config", str(config_file)]
    args += ["--packed", packed] if packed else ["--data", data]
    args += ["--teacher", teacher] if teacher else []
    command = launch_command(processes, args)
    log.info("launching %d processes: %s", processes, " ".join(command))
    subprocess.run(command, check=True)
    return None


def _in_process(stage: str, *, model, out, checkpoint_dir, log_csv, config, packed, data,
                teacher) -> dict:
    if stage == "heal":
        from secateurs.heal import heal

        return heal(model, packed, out, checkpoint_dir=checkpoint_dir, log_csv=log_csv,
                    config=config, teacher_dir=teacher)
    from secateurs.sft import chat_sft

    return chat_sft(model, data, out, checkpoint_dir=checkpoint_dir, log_csv=log_csv, config=config)
