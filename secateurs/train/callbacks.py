"""What a training run reports while it runs: the CSV log, TensorBoard, progress, SIGTERM.

- `CsvLogCallback`: one row per logging step (loss, learning rate, tokens seen, tokens/s)
  in the checkpoint directory, so it survives a kill and reads as one run after a resume;
  published beside the run's summary (`summary_path`);
- `loss_over_all_steps`: the summary's training loss across a resume;
- TensorBoard events under the checkpoint directory, when tensorboard is installed;
- `ProgressCallback`: a short line to the terminal (the rule's log keeps the rest);
- `PreemptionCallback`: SIGTERM (SLURM preemption, a time limit) checkpoints and stops.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import os
import shutil
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from secateurs.io import atomic_output, write_json
from secateurs.train.processes import is_main_process, world_size
from secateurs.workflow.log import progress

log = logging.getLogger(__name__)

LOG_COLUMNS = ["step", "tokens_seen", "loss", "learning_rate", "tokens_per_second"]
CSV_NAME = "log.csv"
TENSORBOARD_DIR = "tensorboard"


def logging_callbacks(checkpoint_dir: str | os.PathLike, resumed_step: int,
                      preemption: bool = True, label: str = "train") -> tuple[CsvLogCallback, list]:
    """The CSV log (returned separately, to publish), TensorBoard, terminal progress
    lines (named `label`) and SIGTERM handling."""
    csv_cb = CsvLogCallback(Path(checkpoint_dir) / CSV_NAME, resumed_step=resumed_step)
    tb = tensorboard_callback(checkpoint_dir)
    extra = [PreemptionCallback()] if preemption else []
    return csv_cb, [csv_cb, ProgressCallback(label)] + ([tb] if tb is not None else []) + extra


# ----------------------------------------------------------------------------- CSV log


class CsvLogCallback(TrainerCallback):
    """One CSV row per logging step: step, tokens_seen, loss, learning_rate, tokens_per_second.

    The live CSV sits in checkpoint_dir (it survives a kill); on resume, rows past the
    resumed step (logged after the last checkpoint, then lost with the kill) are dropped so
    the final log reads as one run. `publish` copies it atomically to the rule's output.
    tokens/s is measured between logging calls on this process's wall clock, over the
    tokens every process consumed (Trainer's `num_input_tokens_seen` is gathered).
    """

    def __init__(self, path: str | os.PathLike, resumed_step: int = 0):
        self.path = Path(path)
        self._last_time: float | None = None
        self._last_tokens = 0
        self.rows: list[dict] = []
        if is_main_process():
            self.rows = [r for r in _read_csv(self.path) if r["step"] <= resumed_step]
            _write_csv(self.path, self.rows)

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time = time.perf_counter()
        self._last_tokens = state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen
        elapsed = max(now - (self._last_time or now), 1e-9)
        row = {"step": state.global_step, "tokens_seen": int(tokens), "loss": float(logs["loss"]),
               "learning_rate": float(logs.get("learning_rate", float("nan"))),
               "tokens_per_second": round((tokens - self._last_tokens) / elapsed, 2)}
        self._last_time, self._last_tokens = now, tokens
        self.rows.append(row)
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, LOG_COLUMNS).writerow(row)

    def publish(self, out_csv: str | os.PathLike, summary: dict | None = None) -> None:
        """Copy the log to `out_csv`; `summary` (what ran) goes beside it as
        `summary_path(out_csv)`, which the report reads instead of the last logged row."""
        with atomic_output(out_csv) as tmp:
            shutil.copyfile(self.path, tmp)
        if summary is not None:
            write_json(summary, summary_path(out_csv))


def summary_path(log_csv: str | os.PathLike) -> Path:
    """Where a stage's run summary sits: beside its CSV log (heal.csv -> heal.json)."""
    return Path(log_csv).with_suffix(".json")


def loss_over_all_steps(rows: list[dict], final_step: int, resumed_step: int = 0,
                        run_loss: float | None = None) -> float | None:
    """Mean training loss over every step 1..final_step, across a resume.

    Each logged `loss` is the mean over the steps since the previous logged row, so the
    rows up to the resumed step give the steps before the resume exactly; `run_loss`
    (Trainer's `training_loss`) covers the steps this process ran. Without it (a finished
    checkpoint published as is) the logged rows are all there is.
    """
    if not final_step:
        return None
    def weighted(upto):
        total, prev = 0.0, 0
        for r in rows:
            if r["step"] > upto:
                break
            total, prev = total + r["loss"] * (r["step"] - prev), r["step"]
        return total, prev
    if run_loss is None:
        total, last = weighted(final_step)
        return total / last if last else None
    before, _ = weighted(resumed_step)
    return (before + run_loss * (final_step - resumed_step)) / final_step


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("step")]
    return [{"step": int(r["step"]), "tokens_seen": int(r["tokens_seen"]), "loss": float(r["loss"]),
             "learning_rate": float(r["learning_rate"]),
             "tokens_per_second": float(r["tokens_per_second"])} for r in rows]


def _write_csv(path: Path, rows: list[dict]) -> None:
    with atomic_output(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


# ----------------------------------------------------------------------------- TensorBoard


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_callback(checkpoint_dir: str | os.PathLike):
    """TensorBoard events under checkpoint_dir/tensorboard, when tensorboard is installed."""
    if not tensorboard_available():
        return None
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    if not is_main_process():
        return None
    return TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(Path(checkpoint_dir) / TENSORBOARD_DIR)))


# ----------------------------------------------------------------------------- SIGTERM


class PreemptionCallback(TrainerCallback):
    """On SIGTERM (SLURM preemption, scancel, time limit), checkpoint at the end of the
    current optimizer step and stop; `check_finished` then fails the job so nothing
    half-trained is published, and the rerun resumes from that checkpoint.

    Not transformers' `enable_jit_checkpoint`: in 5.23 it may save at the start of a step
    after that step's batch was counted, so the resumed run counts one batch twice.
    Processes agree on the flag (all_reduce MAX at each step end) so every rank saves at
    the same step; the launcher forwards SIGTERM to all of them.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        log.warning("SIGTERM: saving a checkpoint at the end of this step, then stopping")
        self.requested = True

    def on_train_begin(self, args, state, control, **kwargs):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handler)

    def on_step_end(self, args, state, control, **kwargs):
        if self._agreed():
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _agreed(self) -> bool:
        import torch.distributed as dist

        if world_size() == 1 or not dist.is_initialized():
            return self.requested
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else "cpu"
        flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


# ----------------------------------------------------------------------------- progress


class ProgressCallback(TrainerCallback):
    """A short line to the terminal every PROGRESS_SECONDS or 10% of the steps: step,
    tokens, last logged loss and the time left (the rule's log keeps everything else)."""

    def __init__(self, label: str):
        self.label = label
        self._start: float | None = None
        self._start_step = 0
        self._last_time = 0.0
        self._last_tenth = -1
        self._loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = self._last_time = time.perf_counter()
        self._start_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self._loss = float(logs["loss"])

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not state.max_steps:
            return
        now = time.perf_counter()
        tenth = state.global_step * 10 // state.max_steps
        if (now - self._last_time < PROGRESS_SECONDS and tenth == self._last_tenth
                and state.global_step < state.max_steps):
            return
        self._last_time, self._last_tenth = now, tenth
        progress(progress_line(self.label, state.global_step, state.max_steps,
                               state.num_input_tokens_seen, self._loss,
                               now - (self._start or now), state.global_step - self._start_step))


PROGRESS_SECONDS = 10.0


def progress_line(label: str, step: int, max_steps: int, tokens: int | None,
                  loss: float | None, elapsed: float, steps_done: int) -> str:
    """'heal: step 30/59 (51%), 61,440 tokens, loss 3.214, ETA 1m05s'."""
    parts = [f"{label}: step {step}/{max_steps} ({step / max_steps:.0%})"]
    if tokens:
        parts.append(f"{int(tokens):,} tokens")
    if loss is not None:
        parts.append(f"loss {loss:.3f}")
    if steps_done > 0 and step < max_steps:
        left = elapsed / steps_done * (max_steps - step)
        parts.append(f"ETA {int(left // 60)}m{int(left % 60):02d}s")
    return ", ".join(parts)
