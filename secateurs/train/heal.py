"""Healing: continued pretraining of a pruned model on packed text (and pretraining from scratch).

ShortGPT and Gromov et al. show that a depth-pruned model recovers most of its loss with a
short continued-pretraining run; Pruned Yi healed on ~2:1 English:Chinese Cosmopedia +
Wikipedia; Minitron distils from the unpruned parent instead (`secateurs.train.distill`). The same
function pretrains the demo's randomly initialised base model: nothing here assumes a
pretrained start.

Launch (one process, or many under torchrun; see `secateurs.train.stage.launch_command`)::

    python -m secateurs heal --model M --packed P --out O --checkpoint-dir C \
        --log-csv L --config heal.yaml
    torchrun --standalone --nproc_per_node 2 -m secateurs heal ... (same arguments)

Data: `packed_dir/train.parquet` rows of exactly seq_len tokens with position_ids that
restart at 0 at each document (secateurs.data.packing). Documents are kept apart in attention
by passing position_ids without an attention mask (transformers builds a block-diagonal
causal mask from them for sdpa/eager, and flash-attention uses them as cu_seqlens), and
the first token of each document is not a target: the token before it belongs to another
document.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

from secateurs import settings
from secateurs.io import read_json, write_json
from secateurs.train import stage as T
from secateurs.train.distill import DistillationTrainer
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
        raise T.TrainingConfigError("heal config: give token_budget (tokens to train on) or max_steps")
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
    model = T.load_causal_lm(model_dir, cfg, bf16=bf16)
    if cfg["method"] in ("lora", "qlora"):
        model = T.wrap_lora(model, cfg)
    return model


def _load_teacher(teacher_dir, cfg: dict, bf16: bool):
    dtype = torch.bfloat16 if bf16 else torch.float32
    return AutoModelForCausalLM.from_pretrained(
        teacher_dir, use_safetensors=True, dtype=dtype,
        attn_implementation=T.attention_implementation(cfg["attn_implementation"]))


# ----------------------------------------------------------------------------- main


def heal_fingerprint(model_dir, packed_dir, config: dict, teacher_dir=None,
                     world_size: int | None = None, teacher_logits=None) -> dict:
    """The run's identity (secateurs.train.stage.run_fingerprint) from its settings and inputs;
    `world_size` defaults to the processes the config asks for."""
    cfg = heal_config(config)
    world = world_size or cfg["num_processes"] * cfg["num_nodes"]
    mode = distill_mode(cfg)
    return T.run_fingerprint(cfg, {"model": T.describe_model_dir(model_dir),
                                   "packed": read_json(Path(packed_dir) / "meta.json"),
                                   "teacher": T.describe_model_dir(teacher_dir) if mode == "online" else None,
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
    Returns a summary dict (also the last row of the CSV in `log_csv`). With `heldout`
    ({language: held-out parquet}) and `recovery_csv`, the recovery curve
    (secateurs.train.recovery) is measured at `recovery.milestones` points and written there.
    Distillation reads the teacher from `teacher_dir` (online) or its cached top-k from
    `teacher_logits` (cached; `teacher_dir`, when given, is checked against the cache).
    """
    started = time.perf_counter()
    cfg = heal_config(config)
    T.check_method(cfg)
    mode = distill_mode(cfg)
    distill = mode is not None
    if mode == "online" and not teacher_dir:
        raise T.TrainingConfigError("heal config distill.mode is online but no teacher_dir was "
                                    "given: pass the unpruned model directory")

    # ---- data
    dataset, meta = load_packed_dataset(packed_dir)
    cache = _open_cache(teacher_logits, packed_dir, teacher_dir, cfg) if mode == "cached" else None
    if cache is not None:
        dataset = dataset.add_column("row", list(range(len(dataset))))
    seq_len = int(meta["seq_len"])
    per_step = T.tokens_per_step(batch_size=cfg["batch_size"], seq_len=seq_len,
                                 gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
                                 num_processes=T.world_size())
    max_steps = (int(cfg["max_steps"]) if cfg["max_steps"] else
                 T.steps_for_budget(cfg["token_budget"], batch_size=cfg["batch_size"], seq_len=seq_len,
                                    gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
                                    num_processes=T.world_size()))
    if len(dataset) < cfg["batch_size"] * T.world_size():
        raise ValueError(f"{packed_dir} holds {len(dataset)} sequences, fewer than one batch "
                         f"({cfg['batch_size']} x {T.world_size()} processes): lower batch_size")
    epochs = max_steps * per_step / max(1, len(dataset) * seq_len)
    if epochs > 1:
        log.warning("token budget %d is %.2f passes over %s (%d tokens): data repeats",
                    max_steps * per_step, epochs, packed_dir, len(dataset) * seq_len)

    # ---- resume
    fingerprint = heal_fingerprint(model_dir, packed_dir, cfg, teacher_dir, T.world_size(),
                                   teacher_logits)
    resume = T.resume_checkpoint(checkpoint_dir, fingerprint) if T.is_main_process() else None
    resume = T.agree_on_resume(resume)
    csv_cb, callbacks = T.logging_callbacks(checkpoint_dir, T.checkpoint_step(resume),
                                           preemption=cfg["checkpoint_on_sigterm"],
                                           label=Path(out_dir).name)  # "healed"; demo: "base"

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    T.apply_tokenizer_overrides(tokenizer, cfg)
    recovery = _recovery_callback(heldout, recovery_csv, tokenizer, cfg, checkpoint_dir,
                                  max_steps, seq_len, T.checkpoint_step(resume))
    callbacks += [recovery] if recovery else []
    staging = Path(checkpoint_dir) / "final-staging"
    if T.is_finished_checkpoint(resume):
        # ---- already finished (killed after the last checkpoint): publish it as is
        state = read_json(Path(resume) / "trainer_state.json")
        tokens_seen, train_loss, steps = int(state.get("num_input_tokens_seen", 0)), None, state["global_step"]
        if T.is_main_process():
            T.publish_model(T.stage_from_checkpoint(resume, staging), tokenizer, out_dir,
                            base_model_dir=model_dir, config_overrides=T.config_overrides(cfg))
    else:
        trainer = _make_trainer(model_dir, dataset, meta, cfg, checkpoint_dir, max_steps, callbacks,
                                teacher_dir if mode == "online" else None, cache)
        # ---- train
        result = trainer.train(resume_from_checkpoint=resume)
        T.check_finished(trainer)
        # ---- save
        T.save_trained(trainer, tokenizer, out_dir, base_model_dir=model_dir, staging=staging,
                       config_overrides=T.config_overrides(cfg))
        tokens_seen, train_loss = int(trainer.state.num_input_tokens_seen), float(result.training_loss)
        steps = trainer.state.global_step
    summary = {
        "method": cfg["method"], "distill": distill, "distill_mode": mode,
        "teacher_cache": _cache_summary(cache), "steps": steps,
        "max_steps": max_steps, "tokens_seen": tokens_seen,
        "tokens_per_step": per_step, "seq_len": seq_len, "epochs": round(epochs, 4),
        "train_loss": T.loss_over_all_steps(csv_cb.rows, steps, T.checkpoint_step(resume),
                                            train_loss),
        "run_loss": train_loss,
        "final_loss": csv_cb.rows[-1]["loss"] if csv_cb.rows else None,
        "resumed_from_step": T.checkpoint_step(resume), "seconds": round(time.perf_counter() - started, 2),
        "recovery_seconds": round(recovery.seconds, 2) if recovery else None,
        "tensorboard_dir": (str(Path(checkpoint_dir) / T.TENSORBOARD_DIR)
                            if T.tensorboard_available() else None),
    }
    if T.is_main_process():
        csv_cb.publish(log_csv, summary)
        if recovery:
            recovery.publish(recovery_csv)
            log.info("recovery curve: %.1f s of %.1f s healing (%.1f%%)", recovery.seconds,
                     summary["seconds"], 100 * recovery.seconds / max(summary["seconds"], 1e-9))
        write_json(summary, Path(checkpoint_dir) / "summary.json")
    T.remove_checkpoints(checkpoint_dir, cfg)
    log.info("healed %s -> %s: %d steps, %d tokens", model_dir, out_dir, steps, tokens_seen)
    return summary


def _recovery_callback(heldout, recovery_csv, tokenizer, cfg, checkpoint_dir, max_steps,
                       seq_len, resumed_step):
    """The recovery-curve callback, or None when no held-out files or milestones are given."""
    if not heldout or not recovery_csv or not cfg["recovery"]["milestones"]:
        return None
    from secateurs.train.recovery import RecoveryCallback

    return RecoveryCallback(heldout, tokenizer, Path(checkpoint_dir) / "recovery.csv",
                            max_steps=max_steps, settings=cfg["recovery"], seq_len=seq_len,
                            resumed_step=resumed_step, main_process=T.is_main_process())


def _open_cache(teacher_logits, packed_dir, teacher_dir, cfg):
    """The cached teacher top-k, refused when it was built for other data, teacher or k."""
    if not teacher_logits:
        raise T.TrainingConfigError("heal config distill.mode is cached but no teacher cache was "
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
    args = T.training_arguments(cfg, checkpoint_dir, max_steps=max_steps, dataloader_drop_last=True)
    model = _load_student(model_dir, cfg, args.bf16)
    pads = (meta.get("pad_token_id"), meta.get("eos_token_id"))
    collator = CachedTeacherCollator(cache, *pads) if cache is not None else PackedCollator(*pads)
    common = dict(model=model, args=args, train_dataset=dataset, data_collator=collator,
                  callbacks=callbacks)
    if teacher_dir is None and cache is None:
        return Trainer(**common)
    distill = cfg["distill"]
    if cache is not None:
        log.info("distilling from the cached teacher top-%d in %s (alpha %s, temperature %s)",
                 cache.top_k, cache.dir, distill["alpha"], distill["temperature"])
        return DistillationTrainer(**common, teacher=None, alpha=distill["alpha"],
                                   temperature=distill["temperature"])
    log.info("distilling from teacher %s online, top_k %s (alpha %s, temperature %s)", teacher_dir,
             distill["top_k"], distill["alpha"], distill["temperature"])
    return DistillationTrainer(**common, teacher=_load_teacher(teacher_dir, cfg, args.bf16),
                               top_k=distill["top_k"], alpha=distill["alpha"],
                               temperature=distill["temperature"])
