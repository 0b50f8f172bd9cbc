"""Chat fine-tuning: trl SFTTrainer on conversations, loss on assistant tokens only.

Pruned Yi's second stage fine-tunes the healed model on SlimOrca in ChatML; AEZAKMI
(QLoRA r=16, alpha=32, all projections, lr 5e-5, seq 1400, constant schedule, sample
packing, no loss on inputs) is the same stage with another config. Formatting goes through
the tokenizer's chat template; trl 1.16 computes `assistant_masks` from the template's
`{% generation %}` markers (it refuses a template without them), so a template without
markers is replaced by `secateurs.chatml.CHATML_TEMPLATE`, whose marker also covers the
`<|im_end|>` that ends each answer (the model must learn to stop). When the tokenizer lacks
`<|im_start|>`/`<|im_end|>` they are added and the embeddings resized; the chat model's
generation config stops at `<|im_end|>`.

`prompt_format: yayi` (or `base`) swaps ChatML for another format, with its own
end-of-turn token as stop token (secateurs.train.templates).

Over-long conversations are dropped and counted before trl sees them, because trl would
truncate them silently (keep_start); `truncation: keep_start` opts in to trl's truncation.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from transformers import AutoTokenizer

from secateurs.train import stage as T
from secateurs.data.chat import read_chat_jsonl
from secateurs.chatml import CHATML_TEMPLATE, IM_END, IM_START
from secateurs import settings
from secateurs.train.templates import apply_prompt_format, end_of_turn_ids
from secateurs.io import read_json, write_json

log = logging.getLogger(__name__)

def chat_config(config: dict) -> dict:
    cfg = settings.complete("chat", config)
    if cfg["truncation"] not in ("drop", "keep_start"):
        raise T.TrainingConfigError(f"chat config truncation={cfg['truncation']!r}: use drop or keep_start")
    return cfg


# ----------------------------------------------------------------------------- ChatML


def has_generation_markers(template: str | None) -> bool:
    return bool(template) and "{% generation %}" in template.replace("{%- generation %}", "{% generation %}")


def ensure_chatml(tokenizer, model=None) -> list[str]:
    """Make the tokenizer ChatML-ready in place; return the tokens it had to add.

    Added tokens grow the embedding matrix (mean-initialised rows, transformers' default),
    which a LoRA run must then train and save (`modules_to_save`).
    """
    missing = [t for t in (IM_START, IM_END) if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
        log.info("added %s to the tokenizer (%d tokens now)", missing, len(tokenizer))
    if not has_generation_markers(tokenizer.chat_template):
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return missing


def stop_token_ids(tokenizer) -> list[int]:
    """Generation stops at <|im_end|> (end of the assistant turn) or at the base EOS."""
    ids = [tokenizer.convert_tokens_to_ids(IM_END)]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


# ----------------------------------------------------------------------------- data


def load_conversations(chat_jsonl, tokenizer, max_length: int | None, truncation: str):
    """The conversations as a datasets.Dataset, over-long ones dropped (count returned)."""
    from datasets import Dataset

    rows = read_chat_jsonl(chat_jsonl)
    if not rows:
        raise ValueError(f"{chat_jsonl} holds no conversations: check chat_data's stats")
    too_long = 0
    if max_length and truncation == "drop":
        lengths = [len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)
                       ["input_ids"]) for r in rows]
        kept = [r for r, n in zip(rows, lengths) if n <= max_length]
        too_long = len(rows) - len(kept)
        rows = kept
        if too_long:
            log.warning("dropped %d conversations longer than max_length=%d tokens", too_long, max_length)
        if not rows:
            raise ValueError(f"every conversation in {chat_jsonl} is longer than max_length={max_length}")
    return Dataset.from_list([{"messages": r["messages"]} for r in rows]), too_long


# ----------------------------------------------------------------------------- trainer


def build_sft_trainer(model_dir, chat_jsonl, *, checkpoint_dir, config: dict, callbacks=None):
    """The SFTTrainer chat_sft runs (exposed so tests can inspect its prepared dataset)."""
    from trl import SFTConfig, SFTTrainer

    cfg = chat_config(config)
    method = T.check_method(cfg)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    args = T.training_arguments(
        cfg, checkpoint_dir, args_class=SFTConfig,
        max_length=cfg["max_length"], packing=bool(cfg["packing"]),
        padding_free=bool(cfg["padding_free"]) and not cfg["packing"],
        assistant_only_loss=True, dataset_num_proc=None,
        include_num_input_tokens_seen="non_padding")
    model = T.load_causal_lm(model_dir, cfg, bf16=args.bf16)
    added = apply_prompt_format(tokenizer, cfg["prompt_format"], model)
    T.apply_tokenizer_overrides(tokenizer, cfg)
    model.generation_config.eos_token_id = end_of_turn_ids(tokenizer, cfg["prompt_format"])
    peft_config = None
    if method in ("lora", "qlora"):
        peft_config = T.lora_config(cfg)
        if added:  # the new rows must be trained and saved with the adapter
            peft_config.modules_to_save = sorted(set(peft_config.modules_to_save or [])
                                                 | {"embed_tokens", "lm_head"})
    dataset, too_long = load_conversations(chat_jsonl, tokenizer, cfg["max_length"], cfg["truncation"])
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=callbacks or [])
    trainer.secateurs_info = {"too_long": too_long, "added_tokens": added, "conversations": len(dataset)}
    return trainer, tokenizer


def chat_fingerprint(model_dir, chat_jsonl, config: dict, world_size: int | None = None) -> dict:
    """The run's identity (secateurs.train.stage.run_fingerprint) from its settings and inputs;
    `world_size` defaults to the processes the config asks for."""
    cfg = chat_config(config)
    world = world_size or cfg["num_processes"] * cfg["num_nodes"]
    return T.run_fingerprint(cfg, {"model": T.describe_model_dir(model_dir),
                                   "data_sha256": T.file_sha256(chat_jsonl), "world_size": world})


def chat_sft(model_dir, chat_jsonl, out_dir, *, checkpoint_dir, log_csv, config: dict) -> dict:
    """Fine-tune `model_dir` on `chat_jsonl` (prepare_chat_data's output); write the chat model.

    Resumes from the last complete checkpoint in `checkpoint_dir` when the config matches.
    LoRA/QLoRA runs write the merged model, with the adapter in `out_dir/adapter`.
    """
    started = time.perf_counter()
    cfg = chat_config(config)
    fingerprint = chat_fingerprint(model_dir, chat_jsonl, cfg, T.world_size())
    resume = T.resume_checkpoint(checkpoint_dir, fingerprint) if T.is_main_process() else None
    resume = T.agree_on_resume(resume)
    csv_cb, callbacks = T.logging_callbacks(checkpoint_dir, T.checkpoint_step(resume),
                                           preemption=cfg["checkpoint_on_sigterm"],
                                           label="chat")
    trainer, tokenizer = build_sft_trainer(model_dir, chat_jsonl, checkpoint_dir=checkpoint_dir,
                                           config=cfg, callbacks=callbacks)
    staging = Path(checkpoint_dir) / "final-staging"
    if T.is_finished_checkpoint(resume):
        state = read_json(Path(resume) / "trainer_state.json")
        train_loss, steps = None, state["global_step"]
        tokens_seen = int(state.get("num_input_tokens_seen", 0))
        if T.is_main_process():
            T.publish_model(T.stage_from_checkpoint(resume, staging), tokenizer, out_dir,
                            base_model_dir=model_dir, config_overrides=T.config_overrides(cfg),
                            generation_eos=end_of_turn_ids(tokenizer, cfg["prompt_format"]))
    else:
        result = trainer.train(resume_from_checkpoint=resume)
        T.check_finished(trainer)
        T.save_trained(trainer, tokenizer, out_dir, base_model_dir=model_dir, staging=staging,
                       config_overrides=T.config_overrides(cfg),
                       generation_eos=end_of_turn_ids(tokenizer, cfg["prompt_format"]))
        train_loss, steps = float(result.training_loss), trainer.state.global_step
        tokens_seen = int(trainer.state.num_input_tokens_seen)
    summary = {"method": cfg["method"], "steps": steps, "tokens_seen": tokens_seen,
               "train_loss": T.loss_over_all_steps(csv_cb.rows, steps,
                                                   T.checkpoint_step(resume), train_loss),
               "run_loss": train_loss,
               "first_loss": csv_cb.rows[0]["loss"] if csv_cb.rows else None,
               "final_loss": csv_cb.rows[-1]["loss"] if csv_cb.rows else None,
               "resumed_from_step": T.checkpoint_step(resume), **trainer.secateurs_info,
               "seconds": round(time.perf_counter() - started, 2)}
    if T.is_main_process():
        csv_cb.publish(log_csv, summary)
        write_json(summary, Path(checkpoint_dir) / "summary.json")
    T.remove_checkpoints(checkpoint_dir, cfg)
    return summary


# ----------------------------------------------------------------------------- samples


def sample_chat(model_dir, prompts: list, out_json, *, max_new_tokens: int = 128,
                system: str | None = None, seed: int = 0) -> list[dict]:
    """The chat model answers each prompt through its chat template; answers saved as JSON.

    Greedy decoding (reproducible across reruns) that stops at <|im_end|> or EOS. `prompts` are strings or message lists.
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True).eval()
    ensure_chatml(tokenizer)
    stops = stop_token_ids(tokenizer)  # also for a base model whose config stops at EOS only
    answers = []
    for prompt in prompts:
        messages = list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)
        new = output[0, inputs["input_ids"].shape[1]:]
        stopped = bool(len(new)) and int(new[-1]) in stops
        answers.append({"messages": messages, "answer": tokenizer.decode(new, skip_special_tokens=True),
                        "new_tokens": int(len(new)), "stopped": stopped})
    write_json(answers, out_json)
    return answers
