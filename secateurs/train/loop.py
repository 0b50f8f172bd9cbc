"""The one training loop every stage runs: healing, chat fine-tuning, the demo's pretraining.

`run_training` reads top to bottom as what a run does (settings, data, resume, model,
train, save, summary, clean-up); a stage hands it a `prepare` function that returns the
few parts that differ (`StageParts`: its tokenizer and data, its identity, its trainer
factory, its summary facts and stop tokens). Everything else (resume semantics, logs,
publishing, clean-up) is this module's, so the stages cannot drift apart again.

A run whose last checkpoint is already finished (killed after saving it, before
publishing) is published from that checkpoint without loading a model: the check comes
before the stage's trainer factory, the only step that loads one.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

from secateurs.io import read_json, write_json
from secateurs.train.arguments import check_optimizer
from secateurs.train.callbacks import logging_callbacks, loss_over_all_steps
from secateurs.train.checkpoints import (STAGING_DIR, agree_on_resume, checkpoint_step,
                                         is_finished_checkpoint, remove_checkpoints,
                                         resume_checkpoint)
from secateurs.train.models import check_method, config_overrides
from secateurs.train.processes import is_main_process
from secateurs.train.saving import publish_model, save_trained, stage_from_checkpoint

log = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Training stopped before max_steps (SIGTERM: SLURM preemption or a job time limit)."""


@dataclass
class StageParts:
    """What one stage supplies to `run_training`, all of it built before any model loads."""

    label: str                              # names the progress lines: "healed", "base", "chat"
    tokenizer: Any                          # published with the model
    fingerprint: dict                       # checkpoints.run_fingerprint of settings and inputs
    make_trainer: Callable[[list], Any]     # callbacks -> Trainer; loads the model
    generation_eos: list[int] | None = None  # stop tokens of the published generation config
    # extra callbacks, given the step the run resumes from (heal: the recovery curve)
    callbacks: Callable[[int], list] = field(default=lambda resumed_step: [])
    # the stage's own summary keys, given the CSV log's rows, after training
    summary: Callable[[list[dict]], dict] = field(default=lambda rows: {})
    # the stage's own outputs beside the model, written by the main process after the summary
    publish: Callable[[dict], None] = field(default=lambda summary: None)


class Run(NamedTuple):
    """What training did: the last step, the tokens seen, and the loss of the steps run here
    (None when a finished checkpoint was published without training)."""

    steps: int
    tokens_seen: int
    loss: float | None


def run_training(config: dict, *, read_settings: Callable[[dict], dict],
                 prepare: Callable[[dict], StageParts], model_dir: str | os.PathLike,
                 out_dir: str | os.PathLike, checkpoint_dir: str | os.PathLike,
                 log_csv: str | os.PathLike) -> dict:
    """Train `model_dir` as the stage's parts say; publish the model to `out_dir`, its CSV
    log to `log_csv` and the run's summary beside it; return the summary.

    `read_settings` completes and checks the stage's config section; `prepare` builds the
    stage's data and tokenizer from the settings. Resumes from the last complete checkpoint
    in `checkpoint_dir` when the run's fingerprint matches.
    """
    started = time.perf_counter()

    # ---- settings: refuse what cannot run before reading data or touching checkpoints
    cfg = read_settings(config)
    check_method(cfg)
    check_optimizer(cfg)

    # ---- data, tokenizer, the run's identity: everything but the model
    parts = prepare(cfg)

    # ---- resume: rank 0 finds this run's last complete checkpoint, every rank agrees
    resume = resume_checkpoint(checkpoint_dir, parts.fingerprint) if is_main_process() else None
    resume = agree_on_resume(resume)
    resumed_step = checkpoint_step(resume)
    csv_log, callbacks = logging_callbacks(checkpoint_dir, resumed_step,
                                           preemption=cfg["checkpoint_on_sigterm"],
                                           label=parts.label)
    callbacks += parts.callbacks(resumed_step)
    publishing = dict(base_model_dir=model_dir, generation_eos=parts.generation_eos,
                      config_overrides=config_overrides(cfg))
    staging = Path(checkpoint_dir) / STAGING_DIR

    if is_finished_checkpoint(resume):
        # ---- already finished (killed after its last checkpoint): publish it, load no model
        run = _publish_finished(resume, parts.tokenizer, out_dir, staging, publishing)
    else:
        # ---- model and trainer: the stage's factory, the one step that loads a model
        trainer = parts.make_trainer(callbacks)
        # ---- train
        result = trainer.train(resume_from_checkpoint=resume)
        check_finished(trainer)
        # ---- save
        save_trained(trainer, parts.tokenizer, out_dir, staging=staging, **publishing)
        run = Run(trainer.state.global_step, int(trainer.state.num_input_tokens_seen),
                  float(result.training_loss))

    # ---- summary: what ran, beside the CSV log (the report reads it)
    rows = csv_log.rows
    summary = {"method": cfg["method"], "steps": run.steps, "tokens_seen": run.tokens_seen,
               "train_loss": loss_over_all_steps(rows, run.steps, resumed_step, run.loss),
               "run_loss": run.loss, "final_loss": rows[-1]["loss"] if rows else None,
               "resumed_from_step": resumed_step, **parts.summary(rows),
               "seconds": round(time.perf_counter() - started, 2)}
    if is_main_process():
        csv_log.publish(log_csv, summary)
        write_json(summary, Path(checkpoint_dir) / "summary.json")
        parts.publish(summary)

    # ---- clean up: the checkpoints of a published run, unless the config keeps them
    remove_checkpoints(checkpoint_dir, cfg)
    log.info("trained %s -> %s: %d steps, %d tokens", model_dir, out_dir, run.steps, run.tokens_seen)
    return summary


def _publish_finished(checkpoint: str, tokenizer, out_dir, staging: Path, publishing: dict) -> Run:
    """Publish a finished run's last checkpoint as the model (main process); what it did."""
    state = read_json(Path(checkpoint) / "trainer_state.json")
    if is_main_process():
        publish_model(stage_from_checkpoint(checkpoint, staging), tokenizer, out_dir, **publishing)
    return Run(state["global_step"], int(state.get("num_input_tokens_seen", 0)), None)


def check_finished(trainer) -> None:
    """Raise TrainingInterrupted when train() returned early (a SIGTERM checkpoint)."""
    state = trainer.state
    if state.max_steps and state.global_step < state.max_steps:
        raise TrainingInterrupted(
            f"training stopped at step {state.global_step} of {state.max_steps} (SIGTERM) after "
            f"saving {trainer.args.output_dir}/checkpoint-{state.global_step}; rerun to resume")
