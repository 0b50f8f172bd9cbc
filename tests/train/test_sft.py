"""chat_sft: trl SFT with assistant-only loss on ChatML, token addition, stop token, LoRA merge."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedTokenizerFast

from secateurs.chatml import IM_END, IM_START
from secateurs.train.sft import build_sft_trainer, chat_sft, ensure_chatml
from train_helpers import labelled_spans

CONVERSATIONS = [
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Name a river."},
     {"role": "assistant", "content": "The Yangtze."},
     {"role": "user", "content": "And a city?"},
     {"role": "assistant", "content": "Berlin, the capital."}],
    [{"role": "user", "content": "What is a triangle?"},
     {"role": "assistant", "content": "A shape with three sides."}],
    [{"role": "user", "content": "长江有多长？"}, {"role": "assistant", "content": "约六千三百公里。"}],
]



def sft_cfg(**over) -> dict:
    cfg = {"method": "full", "learning_rate": 3e-3, "max_steps": 6, "batch_size": 2,
           "gradient_accumulation_steps": 1, "max_length": 128, "packing": False,
           "lr_scheduler": "constant", "warmup_ratio": 0.0, "save_steps": 3, "logging_steps": 1,
           "seed": 0, "bf16": False, "disable_tqdm": True}
    cfg.update(over)
    return cfg


@pytest.fixture(scope="module")
def chat_jsonl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("chat") / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": m}, ensure_ascii=False) + "\n"
                            for m in CONVERSATIONS * 4))
    return path


def test_labels_cover_exactly_the_assistant_turns(tiny_llama_dir, chat_jsonl, tmp_path):
    trainer, tokenizer = build_sft_trainer(tiny_llama_dir, chat_jsonl, checkpoint_dir=tmp_path,
                                           config=sft_cfg())
    rows = [r for r in trainer.train_dataset if len(r["input_ids"]) > 40]
    assert rows, "the multi-turn conversation is in the prepared dataset"
    row = rows[0]
    spans = labelled_spans(tokenizer, row["input_ids"], row["labels"])
    assert spans == [f"The Yangtze.{IM_END}", f"Berlin, the capital.{IM_END}"]
    text = tokenizer.decode(row["input_ids"])
    assert text.startswith(f"{IM_START}system\nYou are terse.{IM_END}\n{IM_START}user\n")


def test_packed_batches_keep_assistant_only_labels(tiny_llama_dir, chat_jsonl, tmp_path):
    trainer, tokenizer = build_sft_trainer(tiny_llama_dir, chat_jsonl, checkpoint_dir=tmp_path,
                                           config=sft_cfg(packing=True, max_length=96))
    rows = [r for r in trainer.train_dataset if len(r["seq_lengths"]) > 1]
    assert rows, "bfd packing put several conversations in one row"
    row = rows[0]
    spans = labelled_spans(tokenizer, row["input_ids"], row["labels"])
    assert spans and all(s.endswith(IM_END) for s in spans)
    assert not any("user" in s for s in spans)


def test_chat_sft_trains_and_stops_at_im_end(tiny_llama_dir, chat_jsonl, tmp_path):
    out, log_csv = tmp_path / "chat", tmp_path / "chat.csv"
    summary = chat_sft(tiny_llama_dir, chat_jsonl, out, checkpoint_dir=tmp_path / "ckpt",
                       log_csv=log_csv, config=sft_cfg(max_steps=8, save_steps=100))
    assert summary["steps"] == 8
    losses = [float(r["loss"]) for r in csv.DictReader(log_csv.open())]
    assert len(losses) == 8 and sum(losses[-2:]) < sum(losses[:2])
    tokenizer = AutoTokenizer.from_pretrained(out)
    generation = GenerationConfig.from_pretrained(out)
    assert tokenizer.convert_tokens_to_ids(IM_END) in generation.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(CONVERSATIONS[1][:1], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


def _plain_tokenizer(out: Path) -> Path:
    """A tokenizer without ChatML tokens or chat template (like a base model's)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([m["content"] for c in CONVERSATIONS for m in c] * 20,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>").save_pretrained(out)
    return out


def test_missing_chatml_tokens_are_added_and_embeddings_resized(tmp_path, chat_jsonl):
    from secateurs.demo.model import init_llama

    init_llama(_plain_tokenizer(tmp_path / "tok"), tmp_path / "base", hidden_size=32,
               num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "base")
    assert IM_END not in tokenizer.get_vocab()
    before = len(tokenizer)
    summary = chat_sft(tmp_path / "base", chat_jsonl, tmp_path / "chat", checkpoint_dir=tmp_path / "ck",
                       log_csv=tmp_path / "l.csv", config=sft_cfg(max_steps=2))
    assert summary["added_tokens"] == [IM_START, IM_END]
    chat_tok = AutoTokenizer.from_pretrained(tmp_path / "chat")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "chat")
    assert len(chat_tok) == before + 2
    assert model.get_input_embeddings().weight.shape[0] >= before + 2
    assert "{% generation %}" in chat_tok.chat_template
    assert chat_tok.convert_tokens_to_ids(IM_END) in GenerationConfig.from_pretrained(tmp_path / "chat").eos_token_id


def test_ensure_chatml_keeps_a_tokenizer_that_has_it(tiny_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    size, template = len(tokenizer), tokenizer.chat_template
    assert ensure_chatml(tokenizer) == []
    assert len(tokenizer) == size and tokenizer.chat_template == template


def test_overlong_conversations_are_dropped_and_counted(tiny_llama_dir, chat_jsonl, tmp_path):
    trainer, _ = build_sft_trainer(tiny_llama_dir, chat_jsonl, checkpoint_dir=tmp_path,
                                   config=sft_cfg(max_length=40))
    assert trainer.secateurs_info["too_long"] > 0
    assert all(len(r["input_ids"]) <= 40 for r in trainer.train_dataset)


def test_sample_chat_saves_answers(tiny_llama_dir, tmp_path):
    from secateurs.train.sft import sample_chat

    answers = sample_chat(tiny_llama_dir, ["Name a river.", [{"role": "user", "content": "Hi"}]],
                          tmp_path / "samples.json", max_new_tokens=5, system="Be brief.")
    saved = json.loads((tmp_path / "samples.json").read_text())
    assert saved == answers and len(saved) == 2
    assert saved[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert all(0 < a["new_tokens"] <= 5 and isinstance(a["answer"], str) for a in saved)


AEZAKMI_LIKE = {"method": "lora", "learning_rate": 5e-5, "max_length": 1400, "packing": True,
                "lr_scheduler": "constant", "warmup_ratio": 0.0,
                "lora": {"r": 16, "alpha": 32, "dropout": 0.05,
                         "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"]}}


def test_lora_sft_with_added_tokens_merges_and_keeps_adapter(tmp_path, chat_jsonl):
    """The AEZAKMI recipe's shape (LoRA on all projections, packing, constant lr) on a base
    tokenizer without ChatML: the new token rows travel with the adapter and the merge."""
    from peft import PeftModel
    from secateurs.demo.model import init_llama

    init_llama(_plain_tokenizer(tmp_path / "tok"), tmp_path / "base", hidden_size=32,
               num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    summary = chat_sft(tmp_path / "base", chat_jsonl, tmp_path / "chat", checkpoint_dir=tmp_path / "ck",
                       log_csv=tmp_path / "l.csv",
                       config=sft_cfg(**{**AEZAKMI_LIKE, "learning_rate": 3e-3, "max_steps": 3}))
    assert summary["steps"] == 3 and summary["added_tokens"] == [IM_START, IM_END]
    out = tmp_path / "chat"
    assert (out / "adapter" / "adapter_config.json").exists()
    tokenizer = AutoTokenizer.from_pretrained(out)
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert merged.get_input_embeddings().weight.shape[0] == len(tokenizer)
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    base.resize_token_embeddings(len(tokenizer))
    with_adapter = PeftModel.from_pretrained(base, out / "adapter").eval()
    ids = tokenizer.apply_chat_template(CONVERSATIONS[1], return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, with_adapter(ids).logits, rtol=1e-4, atol=1e-4)


def test_sft_rerun_resumes_from_checkpoint(tiny_llama_dir, chat_jsonl, tmp_path):
    import shutil

    cfg = sft_cfg(max_steps=4, save_steps=2, keep_checkpoints=True)
    chat_sft(tiny_llama_dir, chat_jsonl, tmp_path / "a", checkpoint_dir=tmp_path / "ck",
             log_csv=tmp_path / "a.csv", config=cfg)
    shutil.rmtree(tmp_path / "ck" / "checkpoint-4")
    summary = chat_sft(tiny_llama_dir, chat_jsonl, tmp_path / "b", checkpoint_dir=tmp_path / "ck",
                       log_csv=tmp_path / "b.csv", config=cfg)
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 4
    assert [r["step"] for r in csv.DictReader((tmp_path / "b.csv").open())] == ["1", "2", "3", "4"]


def test_a_finished_chat_run_publishes_without_loading_the_model(tiny_llama_dir, chat_jsonl, tmp_path):
    """A run killed after its last checkpoint, before publishing, publishes that checkpoint
    on the rerun and loads no model (issue 21: chat_sft loaded the model before checking;
    heal did not). The base weights are made unloadable at the same size, which the run's
    fingerprint reads, so only a load of them can fail the rerun."""
    import shutil

    from safetensors.torch import load_file

    base = tmp_path / "base"
    shutil.copytree(tiny_llama_dir, base)
    cfg = sft_cfg(max_steps=2, save_steps=2, keep_checkpoints=True)
    chat_sft(base, chat_jsonl, tmp_path / "a", checkpoint_dir=tmp_path / "ck",
             log_csv=tmp_path / "a.csv", config=cfg)
    for weights in base.glob("*.safetensors"):
        weights.write_bytes(b"\0" * weights.stat().st_size)
    summary = chat_sft(base, chat_jsonl, tmp_path / "b", checkpoint_dir=tmp_path / "ck",
                       log_csv=tmp_path / "b.csv", config=cfg)
    assert summary["steps"] == 2 and summary["resumed_from_step"] == 2 and summary["run_loss"] is None
    assert summary["added_tokens"] == [] and summary["conversations"] == len(CONVERSATIONS) * 4
    published, trained = load_file(tmp_path / "b" / "model.safetensors"), load_file(tmp_path / "a" / "model.safetensors")
    assert published.keys() == trained.keys()
    assert all(torch.equal(published[k], trained[k]) for k in trained)
    assert (AutoTokenizer.from_pretrained(tmp_path / "b").chat_template
            == AutoTokenizer.from_pretrained(tmp_path / "a").chat_template)
    assert (GenerationConfig.from_pretrained(tmp_path / "b").eos_token_id
            == GenerationConfig.from_pretrained(tmp_path / "a").eos_token_id)
    assert [r["step"] for r in csv.DictReader((tmp_path / "b.csv").open())] == ["1", "2"]
