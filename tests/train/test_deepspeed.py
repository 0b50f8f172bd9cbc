"""DeepSpeed ZeRO configs and the multi-process launch: two ZeRO-2 steps under torchrun with
two processes on CPU (DeepSpeed's CPU accelerator with gloo, see STACK.md)."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from secateurs.train.launch import launch_command
from train_helpers import two_rank_heal_args

REPO = Path(__file__).resolve().parents[2]
DS_DIR = REPO / "config" / "deepspeed"


@pytest.mark.parametrize("name,stage", [("zero2.json", 2), ("zero2_offload.json", 2), ("zero3.json", 3)])
def test_deepspeed_configs_leave_sizes_to_the_trainer(name, stage):
    config = json.loads((DS_DIR / name).read_text())
    assert config["zero_optimization"]["stage"] == stage
    # "auto" lets the HF Trainer fill batch sizes, accumulation and clipping from the stage
    # config, so one JSON serves every model and process count; bf16 "auto" per STACK.md
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert config[key] == "auto"
    assert config["bf16"]["enabled"] == "auto"
    if stage == 3:  # the final save must gather full weights into model.safetensors
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_launch_command_single_and_multi_process():
    single = launch_command(1, ["heal", "--model", "m"])
    assert single[1:] == ["-m", "secateurs", "heal", "--model", "m"]
    multi = launch_command(4, ["heal"], deepspeed_config="config/deepspeed/zero3.json")
    assert multi[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4"]
    assert multi[-2:] == ["--deepspeed", "config/deepspeed/zero3.json"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed")
def test_two_zero2_steps_under_torchrun(tiny_tokenizer_dir, tmp_path):
    args, env = two_rank_heal_args(tiny_tokenizer_dir, tmp_path)
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    cmd = launch_command(2, args, deepspeed_config=str(DS_DIR / "zero2.json"))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    # two optimizer steps, each 2 rows x 32 tokens on each of the 2 processes
    assert summary["steps"] == 2 and summary["tokens_seen"] == 2 * 2 * 2 * 32
    assert (ckpt / "checkpoint-1" / "global_step1").is_dir()  # a DeepSpeed engine checkpoint
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["tokens_seen"]) for r in rows] == [128, 256]
    assert not (out / "training_args.bin").exists()
    AutoModelForCausalLM.from_pretrained(out)
