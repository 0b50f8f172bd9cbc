"""Training settings the reference recipes need: fractional epochs, constant schedule, the
optimizer by name, max_position_embeddings/model_max_length written into the trained model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoTokenizer

from secateurs import settings
from secateurs.train.sft import chat_sft
from secateurs.train.arguments import TrainingConfigError, training_arguments

CONVERSATIONS = [[{"role": "user", "content": f"Question {i}?"},
                  {"role": "assistant", "content": f"Answer {i}."}] for i in range(4)]


def cfg(**over) -> dict:
    base = {"method": "full", "learning_rate": 1e-3, "batch_size": 2, "max_length": 64,
            "lr_scheduler": "constant", "warmup_ratio": 0.0, "save_steps": 100, "logging_steps": 1,
            "seed": 42, "bf16": False, "disable_tqdm": True, "optimizer": "adamw_torch"}
    return {**base, **over}


@pytest.fixture()
def chat_jsonl(tmp_path) -> Path:
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in CONVERSATIONS))
    return path


def test_fractional_epochs_constant_lr_and_overrides(tiny_llama_dir, chat_jsonl, tmp_path):
    """1.5 epochs of 2 batches = 3 steps, at one learning rate; the overrides are saved."""
    out = tmp_path / "chat"
    summary = chat_sft(tiny_llama_dir, chat_jsonl, out, checkpoint_dir=tmp_path / "ck",
                       log_csv=tmp_path / "log.csv",
                       config=cfg(num_train_epochs=1.5, max_position_embeddings=96, model_max_length=80))
    assert summary["steps"] == 3
    rates = {float(r["learning_rate"]) for r in csv.DictReader((tmp_path / "log.csv").open())}
    assert rates == {1e-3}
    assert AutoConfig.from_pretrained(tiny_llama_dir).max_position_embeddings != 96
    assert AutoConfig.from_pretrained(out).max_position_embeddings == 96
    assert AutoTokenizer.from_pretrained(out).model_max_length == 80


def test_overrides_reach_a_merged_lora_model(tiny_llama_dir, chat_jsonl, tmp_path):
    out = tmp_path / "chat"
    chat_sft(tiny_llama_dir, chat_jsonl, out, checkpoint_dir=tmp_path / "ck", log_csv=tmp_path / "l.csv",
             config=cfg(method="lora", max_steps=1, max_position_embeddings=96, model_max_length=80))
    assert (out / "adapter" / "adapter_config.json").exists()
    assert AutoConfig.from_pretrained(out).max_position_embeddings == 96
    assert AutoTokenizer.from_pretrained(out).model_max_length == 80


def test_optimizer_by_name(tmp_path):
    arguments = training_arguments(settings.complete("chat", cfg(optimizer="adafactor")), tmp_path)
    assert arguments.optim == "adafactor"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_bitsandbytes_optimizer_refused_on_cpu(tmp_path):
    with pytest.raises(TrainingConfigError, match="adamw_bnb_8bit.*CUDA"):
        training_arguments(settings.complete("chat", cfg(optimizer="adamw_bnb_8bit")), tmp_path)


@pytest.mark.parametrize("recipe, section, beta2", [
    ("aezakmi-qlora", "chat", 0.999), ("yayi-sft", "chat", 0.999),   # axolotl's / HF Trainer's default
    ("pruned-yi", "heal", 0.999),                                    # its healing code: HF's default
    ("pruned-yi", "chat", 0.999), ("falcon2-5.5b", "heal", 0.95)])   # the schema's defaults
def test_recipes_reach_the_optimizer_with_their_sources_betas(tmp_path, recipe, section, beta2):
    """adam_beta2 as each recipe's source trained (issue 21): 0.999, the PyTorch/transformers
    default that axolotl (AEZAKMI), YaYi's Trainer and Pruned Yi's healing script keep; 0.95
    stays healing's default (Llama pretraining) and was silently chat's too before."""
    import yaml

    from workflow import REPO

    config = yaml.safe_load((REPO / "config" / "recipes" / f"{recipe}.yaml").read_text(encoding="utf-8"))
    stage = {k: v for k, v in settings.complete(section, config[section]).items()
             if k not in ("data", "enabled", "max_examples", "recovery", "cleaning")}
    stage.update(optimizer="adamw_torch", method="full", deepspeed=None, bf16=False)  # CPU here
    arguments = training_arguments(stage, tmp_path)
    assert (arguments.adam_beta1, arguments.adam_beta2) == (0.9, beta2)


def test_chat_and_heal_defaults_differ_on_purpose():
    assert settings.complete("chat", {})["adam_beta2"] == 0.999
    assert settings.complete("heal", {})["adam_beta2"] == 0.95
    assert settings.complete("demo.pretrain", {})["adam_beta2"] == 0.95
@pytest.mark.parametrize("key,value", [("lr_scheduler", "cosine_with_min_lr"), ("optimizer", "lion"),
                                       ("method", "dora")])
def test_values_the_schema_refuses_are_refused_here_too(key, value, tmp_path):
    """The trainer's choices are the schema's (its one definition), so a library call cannot
    run a value the workflow's validation refuses (cosine_with_min_lr slipped through once)."""
    from secateurs.train.models import check_method

    config = settings.complete("chat", cfg(**{key: value}))
    with pytest.raises(TrainingConfigError, match=f"{key}={value!r}"):
        check_method(config) if key == "method" else training_arguments(config, tmp_path)
