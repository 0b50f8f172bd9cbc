"""Pieces every training stage shares: arguments, budget, resume, logging, launching.

`heal` (continued pretraining, also the demo's pretraining from random init) and
`chat_sft` run the same Hugging Face `Trainer` loop; this module owns what they have in
common so that both resume, log and launch the same way:

- `training_arguments`: a `TrainingArguments` (or trl `SFTConfig`) from a stage's config
  section, with CPU/bf16 decided from the hardware, not from the config alone;
- `steps_for_budget`: optimizer steps from a token budget (Minitron and Sheared-LLaMA
  budget healing in tokens; epochs mean nothing for a packed corpus);
- `resume_checkpoint`: the last *complete* checkpoint in a directory outside the rule's
  outputs, refusing one made under a different config;
- `CsvLogCallback` and TensorBoard events: loss, learning rate, tokens seen, tokens/s;
- `launch_command`: the torchrun command line a rule uses for several processes.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainingArguments

from secateurs import settings
from secateurs.io import atomic_output, read_json, write_json
from secateurs.workflow.log import progress

log = logging.getLogger(__name__)

LOG_COLUMNS = ["step", "tokens_seen", "loss", "learning_rate", "tokens_per_second"]
FINGERPRINT_FILE = "secateurs-run.json"
CSV_NAME = "log.csv"
TENSORBOARD_DIR = "tensorboard"
SCHEDULERS = {"cosine", "linear", "constant", "constant_with_warmup", "cosine_with_min_lr"}


class TrainingConfigError(ValueError):
    """A stage's config section holds a value the trainer cannot use."""


class TrainingInterrupted(RuntimeError):
    """Training stopped before max_steps (SIGTERM: SLURM preemption or a job time limit)."""


class ResumeMismatchError(ValueError):
    """checkpoint_dir holds checkpoints made under a different config or input."""


# ----------------------------------------------------------------------------- hardware


def world_size() -> int:
    """Processes in this run: torchrun/accelerate/deepspeed launchers all export WORLD_SIZE."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def use_bf16(setting: Any) -> bool:
    """Resolve `bf16: auto|true|false`.

    auto = bf16 only on a CUDA device that supports it (Ampere+): on CPU the autocast path
    is slower than fp32 for small models, and on older GPUs bf16 is emulated.
    """
    if setting in (True, "true", "True"):
        return True
    if setting in (False, "false", "False", None):
        return False
    if setting == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    raise TrainingConfigError(f"config key bf16={setting!r}: use auto, true or false")


def attention_implementation(setting: str = "auto") -> str:
    """flash_attention_2 where installed on CUDA, else sdpa.

    Both keep packed documents apart when the batch carries position_ids and no
    attention_mask (transformers' `find_packed_sequence_indices`), so packing never lets
    one document attend to another with either.
    """
    if setting != "auto":
        return setting
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


# ----------------------------------------------------------------------------- budget


def steps_for_budget(token_budget: int, *, batch_size: int, gradient_accumulation_steps: int,
                     seq_len: int, num_processes: int = 1) -> int:
    """Optimizer steps that consume at least `token_budget` tokens (ceil, at least one)."""
    per_step = tokens_per_step(batch_size=batch_size, seq_len=seq_len, num_processes=num_processes,
                               gradient_accumulation_steps=gradient_accumulation_steps)
    if token_budget is None or int(token_budget) <= 0:
        raise TrainingConfigError(f"config key token_budget={token_budget!r}: give a positive "
                                  "number of tokens to train on")
    return max(1, math.ceil(int(token_budget) / per_step))


def tokens_per_step(*, batch_size: int, gradient_accumulation_steps: int, seq_len: int,
                    num_processes: int = 1) -> int:
    return int(batch_size) * int(gradient_accumulation_steps) * int(seq_len) * int(num_processes)


# ----------------------------------------------------------------------------- arguments


def training_arguments(config: dict, checkpoint_dir: str | os.PathLike, *, max_steps: int | None = None,
                       args_class: type = TrainingArguments, deepspeed: str | dict | None = None,
                       **extra: Any) -> TrainingArguments:
    """Build trainer arguments from a stage's config section.

    Checkpoints go to `checkpoint_dir` (outside the rule's outputs, so Snakemake does not
    delete them when a job fails); report_to is "none" because our own callbacks write the
    CSV and the TensorBoard events where we choose.
    """
    scheduler = config["lr_scheduler"]
    if scheduler not in SCHEDULERS:
        raise TrainingConfigError(f"config key lr_scheduler={scheduler!r}: use one of "
                                  f"{sorted(SCHEDULERS)}")
    bf16 = use_bf16(config["bf16"])
    kwargs: dict[str, Any] = dict(
        optim=check_optimizer(config),
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=int(config["batch_size"]),
        gradient_accumulation_steps=int(config["gradient_accumulation_steps"]),
        learning_rate=float(config["learning_rate"]),
        lr_scheduler_type=scheduler,
        # transformers 5 folded warmup_ratio into warmup_steps: a float in [0, 1) is a ratio.
        warmup_steps=_warmup(config),
        weight_decay=float(config["weight_decay"]),
        max_grad_norm=float(config["max_grad_norm"]),
        adam_beta2=float(config["adam_beta2"]),
        logging_steps=int(config["logging_steps"]),
        save_strategy="steps",
        save_steps=int(config["save_steps"]),
        save_total_limit=int(config["save_total_limit"]),
        seed=int(config["seed"]),
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        report_to="none",
        disable_tqdm=bool(config["disable_tqdm"]),
        dataloader_num_workers=int(config["dataloader_num_workers"]),
        include_num_input_tokens_seen="all",
        remove_unused_columns=False,
        # every trainable weight of a decoder-only LM (or its LoRA adapter) takes part in
        # each forward; transformers' default (True without checkpointing) costs DDP an
        # extra pass over the autograd graph every step
        ddp_find_unused_parameters=False,
        deepspeed=deepspeed if deepspeed is not None else config["deepspeed"],
    )
    # transformers 5.23 renamed gradient_checkpointing to activation_checkpointing (the old
    # name mirrors the new one, so trl reading `args.gradient_checkpointing` still works);
    # trl's SFTConfig defaults it to True, so it is always set explicitly here.
    kwargs["activation_checkpointing"] = bool(config["gradient_checkpointing"])
    if kwargs["activation_checkpointing"]:
        kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    if max_steps is not None:
        kwargs["max_steps"] = int(max_steps)
    elif config["max_steps"]:
        kwargs["max_steps"] = int(config["max_steps"])
    else:
        kwargs["num_train_epochs"] = float(config["num_train_epochs"] or 1)
    kwargs.update(extra)
    return args_class(**kwargs)


def _warmup(config: dict) -> float:
    if config["warmup_steps"] is not None:
        return int(config["warmup_steps"])
    ratio = float(config["warmup_ratio"])
    if not 0.0 <= ratio < 1.0:
        raise TrainingConfigError(f"config key warmup_ratio={ratio}: must be in [0, 1)")
    return ratio


# bitsandbytes' optimizers: 8-bit AdamW states (AEZAKMI's adamw_bnb_8bit) and the paged ones
BNB_OPTIMIZERS = {"adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit"}


def check_optimizer(config: dict) -> str:
    """The optimizer name for TrainingArguments.optim, refused here when it cannot run.

    bitsandbytes' optimizers keep their states on CUDA; on CPU transformers would fail
    deep inside the first step, so the stage stops before loading anything.
    """
    name = config["optimizer"]
    if name in BNB_OPTIMIZERS:
        if not torch.cuda.is_available():
            raise TrainingConfigError(f"config key optimizer={name!r} needs a CUDA GPU (bitsandbytes "
                                      "keeps its states there). Fix: use optimizer: adamw_torch here")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise TrainingConfigError(f"config key optimizer={name!r} needs bitsandbytes. Fix: pip "
                                      "install bitsandbytes, or use optimizer: adamw_torch")
    return name


def config_overrides(config: dict) -> dict:
    """Model config fields a stage sets (AEZAKMI lowered Yi-200K's max_position_embeddings to
    4096 to train at all); written into the trained model's config.json."""
    value = config["max_position_embeddings"]
    return {} if value is None else {"max_position_embeddings": int(value)}


def apply_tokenizer_overrides(tokenizer, config: dict) -> None:
    """`model_max_length` saved with the trained model's tokenizer (AEZAKMI: 4096)."""
    if config["model_max_length"] is not None:
        tokenizer.model_max_length = int(config["model_max_length"])


# ----------------------------------------------------------------------------- resume


def run_fingerprint(config: dict, inputs: dict[str, Any]) -> dict:
    """A run's one identity: what changes the result (settings and inputs). It names the
    run's checkpoint directory (`checkpoint_dir_for`) and guards resuming in it."""
    kept = dict(sorted(settings.result_settings(config).items()))
    blob = json.dumps({"config": kept, "inputs": inputs}, sort_keys=True, default=str)
    return {"sha256": hashlib.sha256(blob.encode()).hexdigest(), "config": kept, "inputs": inputs}


def checkpoint_dir_for(root: str | os.PathLike, fingerprint: dict) -> Path:
    """Where a run's checkpoints live: the same run resumes there, any other starts fresh."""
    return Path(root) / fingerprint["sha256"][:12]


def remove_checkpoints(checkpoint_dir: str | os.PathLike, config: dict) -> None:
    """Free a published run's checkpoints (optimizer state is twice the model's size),
    unless the config keeps them."""
    if config["keep_checkpoints"] or not is_main_process():
        return
    for path in [*checkpoints(checkpoint_dir), Path(checkpoint_dir) / "final-staging"]:
        shutil.rmtree(path, ignore_errors=True)
    log.info("removed the checkpoints in %s (the run's summary and logs stay; set "
             "keep_checkpoints: true to keep them)", checkpoint_dir)


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


def checkpoints(checkpoint_dir: str | os.PathLike) -> list[Path]:
    """checkpoint-N subdirectories, oldest first."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


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


def is_finished_checkpoint(path: str | None) -> bool:
    """Whether a checkpoint is the run's last step (its trainer_state says global_step >= max_steps).

    A rerun that finds one publishes it instead of calling Trainer.train(), which in
    transformers 5.23 would take one step more before noticing it is done.
    """
    if not path:
        return False
    state = read_json(Path(path) / "trainer_state.json")
    return state.get("max_steps", 0) > 0 and state["global_step"] >= state["max_steps"]


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


def check_finished(trainer) -> None:
    """Raise TrainingInterrupted when train() returned early (a SIGTERM checkpoint)."""
    state = trainer.state
    if state.max_steps and state.global_step < state.max_steps:
        raise TrainingInterrupted(
            f"training stopped at step {state.global_step} of {state.max_steps} (SIGTERM) after "
            f"saving {trainer.args.output_dir}/checkpoint-{state.global_step}; rerun to resume")


def checkpoint_step(path: str | None) -> int:
    return int(Path(path).name.split("-")[-1]) if path else 0


# ----------------------------------------------------------------------------- logging


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


def logging_callbacks(checkpoint_dir: str | os.PathLike, resumed_step: int,
                      preemption: bool = True, label: str = "train") -> tuple[CsvLogCallback, list]:
    """The CSV log (returned separately, to publish), TensorBoard, terminal progress
    lines (named `label`) and SIGTERM handling."""
    csv_cb = CsvLogCallback(Path(checkpoint_dir) / CSV_NAME, resumed_step=resumed_step)
    tb = tensorboard_callback(checkpoint_dir)
    extra = [PreemptionCallback()] if preemption else []
    return csv_cb, [csv_cb, ProgressCallback(label)] + ([tb] if tb is not None else []) + extra


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


# ----------------------------------------------------------------------------- launching


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


# ----------------------------------------------------------------------------- models

METHODS = {"full", "lora", "qlora"}
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def check_method(config: dict) -> str:
    method = config["method"]
    if method not in METHODS:
        raise TrainingConfigError(f"config key method={method!r}: use one of {sorted(METHODS)}")
    if method == "qlora":
        if not torch.cuda.is_available():
            raise TrainingConfigError("method=qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); "
                                      "use method: lora or full on this machine")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise TrainingConfigError("method=qlora needs bitsandbytes: pip install bitsandbytes, "
                                      "or use method: lora")
    return method


def load_causal_lm(model_dir: str | os.PathLike, config: dict, *, bf16: bool):
    """Load the model to train in the dtype training wants.

    Full fine-tuning keeps fp32 master weights (the Trainer's bf16 autocast does the rest);
    QLoRA loads the base in 4-bit NF4 with bf16 compute (Dettmers et al. 2023).
    safetensors only: pickled weights are refused (DESIGN.md).
    """
    from transformers import AutoModelForCausalLM

    method = check_method(config)
    kwargs: dict[str, Any] = {"use_safetensors": True,
                              "attn_implementation": attention_implementation(
                                  config["attn_implementation"])}
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["dtype"] = torch.bfloat16
    else:
        kwargs["dtype"] = torch.bfloat16 if (bf16 and method == "lora") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs, **config_overrides(config))
    model.config.use_cache = False
    return model


def lora_config(config: dict):
    """peft LoraConfig from `lora: {r, alpha, dropout, target_modules}`; defaults follow the
    Pruned Yi recipe (r=16 on all seven Llama projections)."""
    from peft import LoraConfig

    lora = config["lora"]
    targets = lora["target_modules"]
    return LoraConfig(r=int(lora["r"]), lora_alpha=int(lora["alpha"]),
                      lora_dropout=float(lora["dropout"]),
                      target_modules="all-linear" if targets == "all-linear" else list(targets),
                      modules_to_save=lora.get("modules_to_save"), task_type="CAUSAL_LM")


def wrap_lora(model, config: dict):
    """Attach a LoRA adapter (and prepare a k-bit base for QLoRA)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if config["method"] == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(config["gradient_checkpointing"]))
    elif config["gradient_checkpointing"]:
        model.enable_input_require_grads()
    model = get_peft_model(model, lora_config(config))
    trainable, total = model.get_nb_trainable_parameters()
    log.info("LoRA: %d of %d parameters trainable (%.2f%%)", trainable, total, 100 * trainable / total)
    return model


# ----------------------------------------------------------------------------- saving


def save_trained(trainer, tokenizer, out_dir: str | os.PathLike, *, base_model_dir: str | os.PathLike,
                 staging: str | os.PathLike, generation_eos: list[int] | None = None,
                 config_overrides: dict | None = None) -> None:
    """Write the trained model to `out_dir` as an HF directory, atomically.

    Every process calls this (ZeRO-3 gathers shards collectively inside `save_model`); the
    main process assembles the directory. LoRA runs write the merged model with the adapter
    kept in `out_dir/adapter` (see `secateurs.train.merge`).
    """
    staging = Path(staging)
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))
    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.generation_config.save_pretrained(staging)
    publish_model(staging, tokenizer, out_dir, base_model_dir=base_model_dir,
                  generation_eos=generation_eos, config_overrides=config_overrides)


MODEL_FILE_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "config.json",
                       "generation_config.json", "adapter_config.json")


def stage_from_checkpoint(checkpoint: str | os.PathLike, staging: str | os.PathLike) -> Path:
    """Copy a finished run's last checkpoint's model files to `staging` (main process only).

    Used when a rerun finds the run already at max_steps: Trainer.train() would take one
    step more (transformers 5.23 does not check global_step before its first step), so we
    publish the checkpoint instead. Trainer checkpoints hold the HF weights even under
    DeepSpeed ZeRO-3 (stage3_gather_16bit_weights_on_model_save in our configs).
    """
    staging = Path(staging)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for pattern in MODEL_FILE_PATTERNS:
        for item in Path(checkpoint).glob(pattern):
            shutil.copy2(item, staging / item.name)
    return staging


def publish_model(staging: str | os.PathLike, tokenizer, out_dir: str | os.PathLike, *,
                  base_model_dir: str | os.PathLike, generation_eos: list[int] | None = None,
                  config_overrides: dict | None = None) -> None:
    """Turn a staged save (full weights or a LoRA adapter) into the final `out_dir`.

    `config_overrides` (see `config_overrides`) reach a merged LoRA model too, whose config
    comes from the base directory, not from the trained (overridden) model.
    """
    from transformers import GenerationConfig

    from secateurs.train.merge import ADAPTER_SUBDIR, merge_adapter

    staging = Path(staging)
    (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; models hold safetensors only
    tokenizer.save_pretrained(staging)
    source = next((d for d in (staging, Path(base_model_dir))
                   if (d / "generation_config.json").exists()), None)
    generation = GenerationConfig.from_pretrained(source) if source else GenerationConfig()
    if generation_eos:
        generation.eos_token_id = generation_eos
    if generation.pad_token_id is None and tokenizer.pad_token_id is not None:
        generation.pad_token_id = tokenizer.pad_token_id
    generation.save_pretrained(staging)
    if (staging / "adapter_config.json").exists():
        merge_adapter(base_model_dir, staging, out_dir, config_overrides=config_overrides)
        if not (Path(out_dir) / ADAPTER_SUBDIR).exists():
            raise RuntimeError(f"merge_adapter did not keep the adapter in {out_dir}/{ADAPTER_SUBDIR}")
        enable_kv_cache(Path(out_dir) / "config.json")
    else:
        enable_kv_cache(staging / "config.json")
        with atomic_output(out_dir, directory=True) as tmp:
            for item in staging.iterdir():
                shutil.move(str(item), tmp / item.name)
    shutil.rmtree(staging, ignore_errors=True)


def enable_kv_cache(config_json: str | os.PathLike) -> None:
    """Set `use_cache: true` in a published model's config.json.

    Training turns the KV cache off (`load_causal_lm`: packed documents stay apart only
    without it), and the Trainer saves that config; a published model is for generation,
    where running without the cache recomputes the whole prefix at every token.
    """
    path = Path(config_json)
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    config["use_cache"] = True
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
