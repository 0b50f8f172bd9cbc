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

The training loop is `secateurs.train.loop.run_training`, shared with healing; this module
supplies what differs: the prompt-formatted tokenizer and conversations (no model needed,
so a finished run publishes without loading one) and the SFTTrainer factory.
"""

from __future__ import annotations

import logging
from functools import partial

from transformers import AutoTokenizer

from secateurs import settings
from secateurs.data.chat import read_chat_jsonl
from secateurs.io import write_json
from secateurs.train.arguments import TrainingConfigError, training_arguments
from secateurs.chatml import CHATML_TEMPLATE, IM_END, IM_START
from secateurs.train.checkpoints import describe_model_dir, file_sha256, run_fingerprint
from secateurs.train.loop import StageParts, run_training
from secateurs.train.models import apply_tokenizer_overrides, check_method, load_causal_lm, lora_config
from secateurs.train.processes import world_size
from secateurs.train.templates import apply_prompt_format, end_of_turn_ids

log = logging.getLogger(__name__)

TRUNCATIONS = tuple(settings.section("chat")["properties"]["truncation"]["enum"])  # the schema's


def chat_config(config: dict) -> dict:
    """The `chat:` section with the schema's defaults filled in."""
    cfg = settings.complete("chat", config)
    if cfg["truncation"] not in TRUNCATIONS:
        raise TrainingConfigError(f"chat config truncation={cfg['truncation']!r}: use one of "
                                  f"{', '.join(TRUNCATIONS)}")
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


# ----------------------------------------------------------------------------- the stage


def chat_fingerprint(model_dir, chat_jsonl, config: dict, world_size: int | None = None) -> dict:
    """The run's identity (secateurs.train.checkpoints.run_fingerprint) from its settings and
    inputs; `world_size` defaults to the processes the config asks for."""
    cfg = chat_config(config)
    world = world_size or cfg["num_processes"] * cfg["num_nodes"]
    return run_fingerprint(cfg, {"model": describe_model_dir(model_dir),
                                 "data_sha256": file_sha256(chat_jsonl), "world_size": world})


def chat_sft(model_dir, chat_jsonl, out_dir, *, checkpoint_dir, log_csv, config: dict) -> dict:
    """Fine-tune `model_dir` on `chat_jsonl` (prepare_chat_data's output); write the chat model.

    Resumes from the last complete checkpoint in `checkpoint_dir` when the config matches.
    LoRA/QLoRA runs write the merged model, with the adapter in `out_dir/adapter`.
    The loop itself is `secateurs.train.loop.run_training`; this supplies the chat's parts.
    """
    prepare = partial(_chat_parts, model_dir=model_dir, chat_jsonl=chat_jsonl,
                      checkpoint_dir=checkpoint_dir)
    return run_training(config, read_settings=chat_config, prepare=prepare, model_dir=model_dir,
                        out_dir=out_dir, checkpoint_dir=checkpoint_dir, log_csv=log_csv)


def _chat_parts(cfg: dict, *, model_dir, chat_jsonl, checkpoint_dir) -> StageParts:
    """The chat's data, tokenizer, identity and trainer factory (no model loaded here)."""
    tokenizer, dataset, info = prepare_chat_data(model_dir, chat_jsonl, cfg)
    return StageParts(
        label="chat", tokenizer=tokenizer,
        fingerprint=chat_fingerprint(model_dir, chat_jsonl, cfg, world_size()),
        make_trainer=lambda callbacks: _make_trainer(model_dir, dataset, tokenizer, cfg,
                                                     checkpoint_dir, callbacks, info),
        generation_eos=end_of_turn_ids(tokenizer, cfg["prompt_format"]),
        summary=lambda rows: {"first_loss": rows[0]["loss"] if rows else None, **info})


def prepare_chat_data(model_dir, chat_jsonl, cfg: dict):
    """The tokenizer in the chat's prompt format and the conversations it will train on, with
    what preparing them did (`too_long`, `added_tokens`, `conversations`). Needs no model:
    a finished run publishes this tokenizer without loading one."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    added = apply_prompt_format(tokenizer, cfg["prompt_format"])
    apply_tokenizer_overrides(tokenizer, cfg)
    dataset, too_long = load_conversations(chat_jsonl, tokenizer, cfg["max_length"], cfg["truncation"])
    return tokenizer, dataset, {"too_long": too_long, "added_tokens": added,
                                "conversations": len(dataset)}


def build_sft_trainer(model_dir, chat_jsonl, *, checkpoint_dir, config: dict, callbacks=None):
    """The SFTTrainer chat_sft runs (exposed so tests can inspect its prepared dataset)."""
    cfg = chat_config(config)
    check_method(cfg)
    tokenizer, dataset, info = prepare_chat_data(model_dir, chat_jsonl, cfg)
    trainer = _make_trainer(model_dir, dataset, tokenizer, cfg, checkpoint_dir, callbacks or [], info)
    return trainer, tokenizer


def _make_trainer(model_dir, dataset, tokenizer, cfg, checkpoint_dir, callbacks, info):
    """trl's SFTTrainer on the prepared conversations: loads the model, grows its embeddings
    for the prompt format's added tokens, and stops generation at the end of a turn."""
    from trl import SFTConfig, SFTTrainer

    args = training_arguments(
        cfg, checkpoint_dir, args_class=SFTConfig,
        max_length=cfg["max_length"], packing=bool(cfg["packing"]),
        padding_free=bool(cfg["padding_free"]) and not cfg["packing"],
        assistant_only_loss=True, dataset_num_proc=None,
        include_num_input_tokens_seen="non_padding")
    model = load_causal_lm(model_dir, cfg, bf16=args.bf16)
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))  # mean-initialised rows for added tokens
    model.generation_config.eos_token_id = end_of_turn_ids(tokenizer, cfg["prompt_format"])
    peft_config = None
    if cfg["method"] in ("lora", "qlora"):
        peft_config = lora_config(cfg)
        if info["added_tokens"]:  # the new rows must be trained and saved with the adapter
            peft_config.modules_to_save = sorted(set(peft_config.modules_to_save or [])
                                                 | {"embed_tokens", "lm_head"})
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=callbacks)
    trainer.secateurs_info = info
    return trainer


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
