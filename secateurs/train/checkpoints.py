"""A run's identity and its checkpoints: fingerprint, resume, finished runs, clean-up.

Checkpoints live in a directory outside the rule's outputs (Snakemake deletes a failed
job's outputs), named by the run's fingerprint: the same run resumes there, any other
starts fresh, and a directory holding another run's checkpoints is refused rather than
silently mixed into this one (DESIGN.md: training resumes from its last checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from secateurs import settings
from secateurs.io import read_json, write_json
from secateurs.train.processes import is_main_process, world_size

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "secateurs-run.json"
STAGING_DIR = "final-staging"  # the model being assembled for publishing


class ResumeMismatchError(ValueError):
    """checkpoint_dir holds checkpoints made under a different config or input."""


# ----------------------------------------------------------------------------- identity


def run_fingerprint(config: dict, inputs: dict[str, Any]) -> dict:
    """A run's one identity: what changes the result (settings and inputs). It names the
    run's checkpoint directory (`checkpoint_dir_for`) and guards resuming in it."""
    kept = dict(sorted(settings.result_settings(config).items()))
    blob = json.dumps({"config": kept, "inputs": inputs}, sort_keys=True, default=str)
    return {"sha256": hashlib.sha256(blob.encode()).hexdigest(), "config": kept, "inputs": inputs}


def checkpoint_dir_for(root: str | os.PathLike, fingerprint: dict) -> Path:
    """Where a run's checkpoints live: the same run resumes there, any other starts fresh."""
    return Path(root) / fingerprint["sha256"][:12]


def describe_model_dir(model_dir: str | os.PathLike) -> dict:
    """The model's config.json and weight file sizes: cheap, and changes when the model does."""
    model_dir = Path(model_dir)
    weights = sorted(model_dir.glob("*.safetensors"))
    return {"config": read_json(model_dir / "config.json") if (model_dir / "config.json").exists()
            else None, "weights": {p.name: p.stat().st_size for p in weights}}


def file_sha256(path: str | os.PathLike) -> str:
    """Content hash of a data file (a regenerated but identical file still resumes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- resume


def checkpoints(checkpoint_dir: str | os.PathLike) -> list[Path]:
    """checkpoint-N subdirectories, oldest first."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def checkpoint_step(path: str | None) -> int:
    return int(Path(path).name.split("-")[-1]) if path else 0


def is_complete_checkpoint(path: Path) -> bool:
    """Trainer writes trainer_state.json last (after model, optimizer, scheduler, RNG), so a
    checkpoint killed mid-save lacks it or holds a truncated one."""
    state = path / "trainer_state.json"
    if not state.is_file():
        return False
    try:
        json.loads(state.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def resume_checkpoint(checkpoint_dir: str | os.PathLike, fingerprint: dict) -> str | None:
    """Return the last complete checkpoint to resume from, or None to start fresh.

    Raises ResumeMismatchError when the directory's checkpoints were made under another
    config: resuming them would silently mix two runs. Incomplete checkpoints (killed
    mid-save) are removed so the Trainer's rotation does not count them.
    """
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    found = checkpoints(root)
    stamp = root / FINGERPRINT_FILE
    if found and stamp.exists():
        previous = read_json(stamp)
        if previous.get("sha256") != fingerprint["sha256"]:
            changed = _diff_keys(previous, fingerprint)
            raise ResumeMismatchError(
                f"{root} holds checkpoints of a run with a different config or input "
                f"(differs in: {', '.join(changed) or 'inputs'}). Delete {root} to start over, "
                f"or restore the previous config to resume.")
    elif found:
        raise ResumeMismatchError(
            f"{root} holds checkpoints but no {FINGERPRINT_FILE}, so it cannot be checked "
            f"against this run's config. Delete {root} to start over.")
    write_json(fingerprint, stamp)
    for path in reversed(found):
        if is_complete_checkpoint(path):
            log.info("resuming from %s", path)
            return str(path)
        log.warning("removing incomplete checkpoint %s (killed while saving)", path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def _diff_keys(old: dict, new: dict) -> list[str]:
    keys = set(old.get("config", {})) | set(new.get("config", {}))
    changed = [f"config.{k}" for k in sorted(keys)
               if old.get("config", {}).get(k) != new.get("config", {}).get(k)]
    if old.get("inputs") != new.get("inputs"):
        changed.append("inputs")
    return changed


def agree_on_resume(resume: str | None) -> str | None:
    """Rank 0 decides (and may clean up); the others read its answer after a barrier."""
    if world_size() == 1:
        return resume
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():  # nccl's object broadcast uses the current device
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    box = [resume]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def is_finished_checkpoint(path: str | None) -> bool:
    """Whether a checkpoint is the run's last step (its trainer_state says global_step >= max_steps).

    A rerun that finds one publishes it instead of calling Trainer.train(), which in
    transformers 5.23 would take one step more before noticing it is done.
    """
    if not path:
        return False
    state = read_json(Path(path) / "trainer_state.json")
    return state.get("max_steps", 0) > 0 and state["global_step"] >= state["max_steps"]


# ----------------------------------------------------------------------------- clean-up


def remove_checkpoints(checkpoint_dir: str | os.PathLike, config: dict) -> None:
    """Free a published run's checkpoints (optimizer state is twice the model's size),
    unless the config keeps them."""
    if config["keep_checkpoints"] or not is_main_process():
        return
    for path in [*checkpoints(checkpoint_dir), Path(checkpoint_dir) / STAGING_DIR]:
        shutil.rmtree(path, ignore_errors=True)
    log.info("removed the checkpoints in %s (the run's summary and logs stay; set "
             "keep_checkpoints: true to keep them)", checkpoint_dir)
