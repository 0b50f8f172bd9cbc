"""Healing: continued pretraining of a pruned model on packed text (and pretraining from scratch).

ShortGPT and Gromov et al. show that a depth-pruned model recovers most of its loss with a
short continued-pretraining run; Pruned Yi healed on ~2:1 English:Chinese Cosmopedia +
Wikipedia; Minitron distils from the unpruned parent instead (`secateurs.train.distill`). The same
function pretrains the demo's randomly initialised base model: nothing here assumes a
pretrained start.

Launch (one process, or many under torchrun; see `secateurs.train.launch.launch_command`)::

    python -m secateurs heal --model M --packed P --out O --checkpoint-dir C \
        --log-csv L --config heal.yaml
    torchrun --standalone --nproc_per_node 2 -m secateurs heal ... (same arguments)

Data: `packed_dir/train.parquet` rows of exactly seq_len tokens with position_ids that
restart at 0 at each document (secateurs.data.packing). Documents are kept apart in attention
by passing position_ids without an attention mask (transformers builds a block-diagonal
causal mask from them for sdpa/eager, and flash-attention uses them as cu_seqlens), and
the first token of each document is not a target: the token before it belongs to another
document.

The training loop is `secateurs.train.loop.run_training`, shared with chat fine-tuning;
this module supplies what differs: the packed data and its token budget, the collator,
the trainer factory (`_make_trainer`: plain, or distilling from a teacher) and the
recovery curve.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

from secateurs import settings
from secateurs.io import read_json
from secateurs.train.arguments import (TrainingConfigError, steps_for_budget, tokens_per_step,
                                       training_arguments)
from secateurs.train.callbacks import TENSORBOARD_DIR, tensorboard_available
from secateurs.train.checkpoints import describe_model_dir, run_fingerprint
from secateurs.train.distill import DistillationTrainer
from secateurs.train.loop import StageParts, run_training
from secateurs.train.models import (apply_tokenizer_overrides, attention_implementation,
                                    load_causal_lm, wrap_lora)
from secateurs.train.processes import is_main_process, world_size
from secateurs.train.teacher_logits import TeacherCache

log = logging.getLogger(__name__)

IGNORE_INDEX = -100

# The `heal:` config section. Beyond the workflow's keys: max_steps (overrides token_budget),
# attn_implementation (auto|sdpa|eager|flash_attention_2), max_grad_norm, adam_beta2,
# save_total_limit, warmup_steps (overrides warmup_ratio), deepspeed (a config/deepspeed/
# JSON), disable_tqdm, dataloader_num_workers. The Pruned Yi recipe as a config:
#   {method: lora, lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: [q_proj, k_proj,
#    v_proj, o_proj, gate_proj, up_proj, down_proj]}} with the data packed at seq_len 8192.
def heal_config(config: dict) -> dict:
    """The `heal:` section with the schema's defaults filled in."""
    cfg = settings.complete("heal", config)
    if cfg["token_budget"] is None and not cfg["max_steps"]:
        raise TrainingConfigError("heal config: give token_budget (tokens to train on) or max_steps")
    return cfg


# ----------------------------------------------------------------------------- data


def load_packed_dataset(packed_dir: str | os.PathLike):
    """The packed training rows as a datasets.Dataset, and the packer's meta.json."""
    packed_dir = Path(packed_dir)
    meta_path = packed_dir / "meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} is missing: packed_dir must come from secateurs.data.packing "
                                "(train.parquet + meta.json)")
    meta = read_json(meta_path)
    try:
        from secateurs.data.packing import load_packed
    except ImportError:
        from datasets import Dataset

        dataset = Dataset.from_parquet(str(packed_dir / "train.parquet"))
    else:
        dataset = load_packed(packed_dir)
    missing = {"input_ids", "position_ids"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"{packed_dir}/train.parquet lacks columns {sorted(missing)}: repack it "
                         "with secateurs.data.packing")
    return dataset.select_columns(["input_ids", "position_ids"]), meta


class PackedCollator:
    """Stack packed rows; labels = input_ids except document starts and padding.

    No attention_mask is returned on purpose: with position_ids alone transformers detects the
    packed documents and masks attention between them (masking_utils.find_packed_sequence_indices).
    """

    def __init__(self, pad_token_id: int | None = None, eos_token_id: int | None = None):
        # A packer that pads with EOS (pad == eos) must keep EOS as a target: it ends documents.
        self.pad_token_id = pad_token_id if pad_token_id != eos_token_id else None

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        input_ids = torch.tensor([r["input_ids"] for r in rows], dtype=torch.long)
        position_ids = torch.tensor([r["position_ids"] for r in rows], dtype=torch.long)
        labels = input_ids.clone()
        labels[position_ids == 0] = IGNORE_INDEX
        if self.pad_token_id is not None:
            labels[input_ids == self.pad_token_id] = IGNORE_INDEX
        return {"input_ids": input_ids, "position_ids": position_ids, "labels": labels}


class CachedTeacherCollator(PackedCollator):
    """PackedCollator plus each row's cached teacher top-k (secateurs.train.teacher_logits),
    found by the row's index in the packed file (the `row` column heal adds)."""

    def __init__(self, cache, pad_token_id: int | None = None, eos_token_id: int | None = None):
        super().__init__(pad_token_id, eos_token_id)
        self.cache = cache

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = super().__call__(rows)
        batch["teacher_ids"], batch["teacher_logprobs"] = self.cache.rows([r["row"] for r in rows])
        return batch


# ----------------------------------------------------------------------------- model


def _load_student(model_dir, cfg: dict, bf16: bool):
    model = load_causal_lm(model_dir, cfg, bf16=bf16)
    if cfg["method"] in ("lora", "qlora"):
        model = wrap_lora(model, cfg)
    return model


def _load_teacher(teacher_dir, cfg: dict, bf16: bool):
    dtype = torch.bfloat16 if bf16 else torch.float32
    return AutoModelForCausalLM.from_pretrained(
        teacher_dir, use_safetensors=True, dtype=dtype,
        attn_implementation=attention_implementation(cfg["attn_implementation"]))


# ----------------------------------------------------------------------------- the stage


def heal_fingerprint(model_dir, packed_dir, config: dict, teacher_dir=None,
                     world_size: int | None = None, teacher_logits=None) -> dict:
    """The run's identity (secateurs.train.checkpoints.run_fingerprint) from its settings and inputs;
    `world_size` defaults to the processes the config asks for."""
    cfg = heal_config(config)
    world = world_size or cfg["num_processes"] * cfg["num_nodes"]
    mode = distill_mode(cfg)
    return run_fingerprint(cfg, {"model": describe_model_dir(model_dir),
                                 "packed": read_json(Path(packed_dir) / "meta.json"),
                                 "teacher": describe_model_dir(teacher_dir) if mode == "online" else None,
                                 "teacher_cache": _cache_sha(teacher_logits) if mode == "cached" else None,
                                 "world_size": world})


def distill_mode(cfg: dict) -> str | None:
    """None (no distillation), "online" or "cached" (heal.distill.mode)."""
    return cfg["distill"]["mode"] if cfg["distill"]["enabled"] else None


def _cache_sha(teacher_logits) -> str | None:
    path = Path(teacher_logits or "") / "meta.json"
    return read_json(path)["sha256"] if teacher_logits and path.exists() else None


def heal(model_dir, packed_dir, out_dir, *, checkpoint_dir, log_csv, config: dict,
         teacher_dir=None, heldout: dict | None = None, recovery_csv=None,
         teacher_logits=None) -> dict:
    """Continue pretraining `model_dir` on `packed_dir` for config's token budget; write out_dir.

    Resumes from the last complete checkpoint in `checkpoint_dir` when its config matches.
    Returns a summary dict (also written beside the CSV in `log_csv`). With `heldout`
    ({language: held-out parquet}) and `recovery_csv`, the recovery curve
    (secateurs.train.recovery) is measured at `recovery.milestones` points and written there.
    Distillation reads the teacher from `teacher_dir` (online) or its cached top-k from
    `teacher_logits` (cached; `teacher_dir`, when given, is checked against the cache).
    The loop itself is `secateurs.train.loop.run_training`; this supplies healing's parts.
    """
    prepare = partial(_healing_parts, model_dir=model_dir, packed_dir=packed_dir, out_dir=out_dir,
                      checkpoint_dir=checkpoint_dir, teacher_dir=teacher_dir, heldout=heldout,
                      recovery_csv=recovery_csv, teacher_logits=teacher_logits)
    return run_training(config, read_settings=heal_config, prepare=prepare, model_dir=model_dir,
                        out_dir=out_dir, checkpoint_dir=checkpoint_dir, log_csv=log_csv)


def _healing_parts(cfg: dict, *, model_dir, packed_dir, out_dir, checkpoint_dir, teacher_dir,
                   heldout, recovery_csv, teacher_logits=None) -> StageParts:
    """Healing's data, tokenizer, identity and trainer factory (no model loaded here)."""
    mode = distill_mode(cfg)
    if mode == "online" and not teacher_dir:
        raise TrainingConfigError("heal config distill.mode is online but no teacher_dir was "
                                  "given: pass the unpruned model directory")
    dataset, meta = load_packed_dataset(packed_dir)
    cache = _open_cache(teacher_logits, packed_dir, teacher_dir, cfg) if mode == "cached" else None
    if cache is not None:
        dataset = dataset.add_column("row", list(range(len(dataset))))
    seq_len = int(meta["seq_len"])
    per_step = tokens_per_step(batch_size=cfg["batch_size"], seq_len=seq_len,
                               gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
                               num_processes=world_size())
    max_steps = (int(cfg["max_steps"]) if cfg["max_steps"] else
                 steps_for_budget(cfg["token_budget"], batch_size=cfg["batch_size"], seq_len=seq_len,
                                  gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
                                  num_processes=world_size()))
    if len(dataset) < cfg["batch_size"] * world_size():
        raise ValueError(f"{packed_dir} holds {len(dataset)} sequences, fewer than one batch "
                         f"({cfg['batch_size']} x {world_size()} processes): lower batch_size")
    epochs = max_steps * per_step / max(1, len(dataset) * seq_len)
    if epochs > 1:
        log.warning("token budget %d is %.2f passes over %s (%d tokens): data repeats",
                    max_steps * per_step, epochs, packed_dir, len(dataset) * seq_len)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    apply_tokenizer_overrides(tokenizer, cfg)
    recovery = _RecoveryCurve(heldout, recovery_csv, tokenizer, cfg, checkpoint_dir, max_steps, seq_len)
    facts = {"distill": mode is not None, "distill_mode": mode,
             "teacher_cache": _cache_summary(cache), "max_steps": max_steps, "tokens_per_step": per_step,
             "seq_len": seq_len, "epochs": round(epochs, 4),
             "tensorboard_dir": (str(Path(checkpoint_dir) / TENSORBOARD_DIR)
                                 if tensorboard_available() else None)}
    return StageParts(
        label=Path(out_dir).name,  # "healed"; the demo's pretraining: "base"
        tokenizer=tokenizer,
        fingerprint=heal_fingerprint(model_dir, packed_dir, cfg, teacher_dir, world_size(),
                                     teacher_logits),
        make_trainer=lambda callbacks: _make_trainer(model_dir, dataset, meta, cfg, checkpoint_dir,
                                                     max_steps, callbacks,
                                                     teacher_dir if mode == "online" else None, cache),
        callbacks=recovery.callbacks,
        summary=lambda rows: {**facts, "recovery_seconds": recovery.seconds()},
        publish=recovery.publish)


class _RecoveryCurve:
    """Healing's recovery curve in a run: its callback (built once the resumed step is
    known), its seconds in the summary, its CSV published beside the log."""

    def __init__(self, heldout, recovery_csv, tokenizer, cfg, checkpoint_dir, max_steps, seq_len):
        self.callback = None
        self._build = partial(_recovery_callback, heldout, recovery_csv, tokenizer, cfg,
                              checkpoint_dir, max_steps, seq_len)
        self.recovery_csv = recovery_csv

    def callbacks(self, resumed_step: int) -> list:
        self.callback = self._build(resumed_step)
        return [self.callback] if self.callback else []

    def seconds(self) -> float | None:
        return round(self.callback.seconds, 2) if self.callback else None

    def publish(self, summary: dict) -> None:
        if not self.callback:
            return
        self.callback.publish(self.recovery_csv)
        log.info("recovery curve: %.1f s of %.1f s healing (%.1f%%)", self.callback.seconds,
                 summary["seconds"], 100 * self.callback.seconds / max(summary["seconds"], 1e-9))


def _recovery_callback(heldout, recovery_csv, tokenizer, cfg, checkpoint_dir, max_steps,
                       seq_len, resumed_step):
    """The recovery-curve callback, or None when no held-out files or milestones are given."""
    if not heldout or not recovery_csv or not cfg["recovery"]["milestones"]:
        return None
    from secateurs.train.recovery import RecoveryCallback

    return RecoveryCallback(heldout, tokenizer, Path(checkpoint_dir) / "recovery.csv",
                            max_steps=max_steps, settings=cfg["recovery"], seq_len=seq_len,
                            resumed_step=resumed_step, main_process=is_main_process())


def _open_cache(teacher_logits, packed_dir, teacher_dir, cfg):
    """The cached teacher top-k, refused when it was built for other data, teacher or k."""
    if not teacher_logits:
        raise TrainingConfigError("heal config distill.mode is cached but no teacher cache was "
                                  "given: build it with rule teacher_logits (python -m secateurs "
                                  "teacher-logits) and pass its directory, or set distill.mode: online")
    cache = TeacherCache(teacher_logits)
    cache.check(packed_dir=packed_dir, teacher_dir=teacher_dir, top_k=cfg["distill"]["top_k"])
    return cache


def _cache_summary(cache) -> dict | None:
    if cache is None:
        return None
    keys = ("top_k", "bytes", "bytes_per_token", "seconds", "mean_top_k_mass")
    return {key: cache.meta[key] for key in keys}


def _make_trainer(model_dir, dataset, meta, cfg, checkpoint_dir, max_steps, callbacks, teacher_dir,
                  cache=None):
    # drop_last: every optimizer step is exactly tokens_per_step, so the token budget and the
    # tokens seen after a resume are exact (a short last batch would shift both).
    args = training_arguments(cfg, checkpoint_dir, max_steps=max_steps, dataloader_drop_last=True)
    model = _load_student(model_dir, cfg, args.bf16)
    pads = (meta.get("pad_token_id"), meta.get("eos_token_id"))
    collator = CachedTeacherCollator(cache, *pads) if cache is not None else PackedCollator(*pads)
    common = dict(model=model, args=args, train_dataset=dataset, data_collator=collator,
                  callbacks=callbacks)
    if teacher_dir is None and cache is None:
        return Trainer(**common)
    distill = cfg["distill"]
    if cache is not None:
        log.info("distilling from the cached teacher top-%d in %s (alpha %s, temperature %s, "
                 "tail bin %s)", cache.top_k, cache.dir, distill["alpha"], distill["temperature"],
                 distill["tail"])
        return DistillationTrainer(**common, teacher=None, alpha=distill["alpha"],
                                   temperature=distill["temperature"], tail=distill["tail"])
    log.info("distilling from teacher %s online, top_k %s (alpha %s, temperature %s)", teacher_dir,
             distill["top_k"], distill["alpha"], distill["temperature"])
    return DistillationTrainer(**common, teacher=_load_teacher(teacher_dir, cfg, args.bf16),
                               top_k=distill["top_k"], alpha=distill["alpha"],
                               temperature=distill["temperature"], tail=distill["tail"])
