"""The YaYi and AEZAKMI recipes' code paths on a tiny Llama, a few steps each.

Each test reads the recipe's `chat:` section as the workflow does (schema defaults filled by
snakemake.utils.validate) and changes only what a tiny model on this machine needs: the
step count and sequence length, and for AEZAKMI on CPU, QLoRA's 4-bit base and the 8-bit
optimizer (bitsandbytes, CUDA only), which the GPU test keeps.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
import subprocess

import pytest
import torch
import yaml
from snakemake.utils import validate
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from secateurs.data.chat import prepare_chat_data
from secateurs.chatml import IM_END
from secateurs.train.sft import build_sft_trainer, chat_sft
from secateurs.train.launch import launch_command
from secateurs.train.templates import YAYI_END, YAYI_TEMPLATE
from workflow import REPO

pytestmark = pytest.mark.slow
RECIPES = REPO / "config" / "recipes"


def recipe(name: str) -> dict:
    config = yaml.safe_load((RECIPES / name).read_text(encoding="utf-8"))
    validate(config, str(REPO / "secateurs" / "schema.yaml"))
    return config


def training(chat: dict, **over) -> dict:
    """The chat section as rule chat_sft passes it (rules/train.smk), tiny-sized."""
    settings = {k: v for k, v in chat.items() if k not in ("data", "max_examples", "enabled")}
    tiny = {"save_steps": 1000, "logging_steps": 1, "disable_tqdm": True, "num_processes": 1,
            "deepspeed": None, "bf16": False if not torch.cuda.is_available() else settings["bf16"]}
    return {**settings, **tiny, **over}


# ----------------------------------------------------------------------------- YaYi

YAYI_SYSTEM = "A chat between a human and an AI assistant named YaYi."
YAYI_INSTRUCTIONS = [{"instruction": f"说出数字{i}。", "input": "", "output": f"{i}。"} for i in range(6)]
YAYI_DIALOGUES = [{"system": YAYI_SYSTEM, "conversations": [
    {"from": "human", "value": "你好"}, {"from": "yayi", "value": "你好！"},
    {"from": "human", "value": f"数字{i}？"}, {"from": "yayi", "value": f"{i}。"}]} for i in range(6)]


@pytest.fixture()
def yayi_data(tmp_path):
    """YaYi's two data formats through chat_data with the recipe's source settings."""
    chat = recipe("yayi-sft.yaml")["chat"]
    source = chat["data"][0]
    instructions = tmp_path / "yayi_train_example.jsonl"
    instructions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in YAYI_INSTRUCTIONS))
    dialogues = tmp_path / "yayi_train_example_multi_rounds.json"
    dialogues.write_text(json.dumps(YAYI_DIALOGUES, ensure_ascii=False))
    sources = [{**source, "path": str(instructions)}, {**source, "path": str(dialogues)}]
    stats = prepare_chat_data(sources, tmp_path / "train.jsonl", tmp_path / "stats.json")
    assert stats["written"] == 12 and stats["dropped"] == {}
    return chat, tmp_path / "train.jsonl"


def generate_answer(model_dir, messages, max_new_tokens=12) -> tuple[list[int], str]:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)  # stops by generation_config
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    return new, tokenizer.decode(new)


def test_yayi_format_end_to_end_chat_data_sft_stop_token(tiny_llama_dir, yayi_data, tmp_path):
    """chat data -> SFT in YaYi's format -> a chat model that answers and stops at <|End|>.
    Rows are up to 256 tokens: each carries the <|System|> block, and YaYi's default system
    prompt alone takes over 100 tokens of the tiny tokenizer."""
    chat, data = yayi_data
    out = tmp_path / "chat"
    # the recipe's settings; a learning rate and step count that teach a tiny model to stop
    summary = chat_sft(tiny_llama_dir, data, out, checkpoint_dir=tmp_path / "ck", log_csv=tmp_path / "l.csv",
                       config=training(chat, max_steps=80, batch_size=4, max_length=256, lr_scheduler="constant",
                                       learning_rate=3e-3, warmup_steps=0, gradient_checkpointing=False))
    assert summary["added_tokens"] == [YAYI_END] and summary["steps"] == 80
    tokenizer = AutoTokenizer.from_pretrained(out)
    end = tokenizer.convert_tokens_to_ids(YAYI_END)
    assert tokenizer.chat_template == YAYI_TEMPLATE
    assert GenerationConfig.from_pretrained(out).eos_token_id[0] == end
    assert AutoModelForCausalLM.from_pretrained(out).get_input_embeddings().weight.shape[0] >= len(tokenizer)
    new, text = generate_answer(out, [{"role": "system", "content": YAYI_SYSTEM},
                                      {"role": "user", "content": "你好"}])
    assert new[-1] == end and len(new) < 12, text  # answered, then stopped at <|End|>


def test_yayi_lora_variant(tiny_llama_dir, yayi_data, tmp_path):
    """The recipe's commented LoRA switch (attention projections, r=16) as written there."""
    chat, data = yayi_data
    text = (RECIPES / "yayi-sft.yaml").read_text(encoding="utf-8")
    block = text.split("# LoRA variant", 1)[1]
    switch = yaml.safe_load("\n".join(m.group(1) for m in re.finditer(r"^  # (\w+: .*)$", block, re.M)))
    assert switch["method"] == "lora" and switch["lora"]["r"] == 16
    out = tmp_path / "chat"
    summary = chat_sft(tiny_llama_dir, data, out, checkpoint_dir=tmp_path / "ck", log_csv=tmp_path / "l.csv",
                       config=training({**chat, **switch}, max_steps=3, batch_size=2, max_length=256))
    assert summary["steps"] == 3 and summary["method"] == "lora"
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 16 and set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj"}
    assert GenerationConfig.from_pretrained(out).eos_token_id[0] == \
        AutoTokenizer.from_pretrained(out).convert_tokens_to_ids(YAYI_END)


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed")
def test_yayi_full_parameter_zero2_under_torchrun(tiny_llama_dir, yayi_data, tmp_path):
    """The recipe's own path: full parameters, DeepSpeed ZeRO-2, several processes (2 here)."""
    chat, data = yayi_data
    assert chat["method"] == "full" and chat["deepspeed"].endswith("zero2.json")
    settings = training(chat, max_steps=2, batch_size=2, max_length=256, num_processes=2,
                        keep_checkpoints=True)  # the test reads the ZeRO checkpoint
    (tmp_path / "chat.json").write_text(json.dumps({"chat": settings}))
    args = ["chat", "--model", str(tiny_llama_dir), "--data", str(data), "--out", str(tmp_path / "out"),
            "--checkpoint-dir", str(tmp_path / "ck"), "--log-csv", str(tmp_path / "log.csv"),
            "--config", str(tmp_path / "chat.json"), "--summary-json", str(tmp_path / "summary.json")]
    cmd = launch_command(2, args, deepspeed_config=str(REPO / chat["deepspeed"]))
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 2
    assert (tmp_path / "ck" / "checkpoint-2" / "global_step2").is_dir()  # a DeepSpeed checkpoint
    out = tmp_path / "out"
    assert AutoTokenizer.from_pretrained(out).chat_template == YAYI_TEMPLATE
    AutoModelForCausalLM.from_pretrained(out)


# ----------------------------------------------------------------------------- AEZAKMI


@pytest.fixture()
def aezakmi_data(tmp_path):
    rows = [{"conversations": [{"from": "system", "value": "A chat with uncensored assistant."},
                               {"from": "human", "value": f"Tell me about the number {i}."},
                               {"from": "gpt", "value": f"The number {i} comes after {i - 1}."}]}
            for i in range(1, 11)]
    chat = recipe("aezakmi-qlora.yaml")["chat"]
    clone = tmp_path / "AEZAKMI_v2"  # laid out like the hub repository: the recipe names its file
    clone.mkdir()
    (clone / chat["data"][0]["data_files"]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    sources = [{**chat["data"][0], "path": str(clone)}]
    prepare_chat_data(sources, tmp_path / "train.jsonl", tmp_path / "stats.json")
    return chat, tmp_path / "train.jsonl"


def test_aezakmi_settings_on_cpu(tiny_llama_dir, aezakmi_data, tmp_path):
    """2.4 epochs of packed rows at a constant 5e-5, LoRA r=16/alpha=32 on all projections,
    seed 42, and max_position_embeddings/model_max_length 4096 in the trained model.
    CPU stands in LoRA for QLoRA and AdamW for 8-bit AdamW (both need bitsandbytes on CUDA)."""
    chat, data = aezakmi_data
    assert (chat["method"], chat["optimizer"], chat["num_train_epochs"]) == ("qlora", "adamw_bnb_8bit", 2.4)
    cpu = {"method": "lora", "optimizer": "adamw_torch", "attn_implementation": None, "max_length": 256}
    settings = training(chat, **cpu)
    trainer, _ = build_sft_trainer(tiny_llama_dir, data, checkpoint_dir=tmp_path / "probe", config=settings)
    rows = len(trainer.train_dataset)
    assert 1 < rows < 10  # packed: several conversations share a row
    out = tmp_path / "chat"
    summary = chat_sft(tiny_llama_dir, data, out, checkpoint_dir=tmp_path / "ck", log_csv=tmp_path / "l.csv",
                       config=settings)
    assert summary["steps"] == math.ceil(2.4 * rows)
    rates = {float(r["learning_rate"]) for r in csv.DictReader((tmp_path / "l.csv").open())}
    assert rates == {5e-5}
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (16, 32) and len(adapter["target_modules"]) == 7
    assert AutoConfig.from_pretrained(out).max_position_embeddings == 4096
    assert AutoTokenizer.from_pretrained(out).model_max_length == 4096
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert GenerationConfig.from_pretrained(out).eos_token_id[0] == tokenizer.convert_tokens_to_ids(IM_END)


@pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None,
                    reason="QLoRA's 4-bit NF4 base and adamw_bnb_8bit need bitsandbytes on a CUDA GPU")
def test_aezakmi_qlora_as_written_on_gpu(tiny_llama_dir, aezakmi_data, tmp_path):
    chat, data = aezakmi_data
    attn = None if importlib.util.find_spec("flash_attn") is None else chat["attn_implementation"]
    settings = training(chat, max_steps=3, max_length=256, attn_implementation=attn)
    assert settings["method"] == "qlora" and settings["optimizer"] == "adamw_bnb_8bit"
    out = tmp_path / "chat"
    summary = chat_sft(tiny_llama_dir, data, out, checkpoint_dir=tmp_path / "ck", log_csv=tmp_path / "l.csv",
                       config=settings)
    assert summary["steps"] == 3
    assert (out / "adapter" / "adapter_config.json").exists()
    assert AutoConfig.from_pretrained(out).max_position_embeddings == 4096
