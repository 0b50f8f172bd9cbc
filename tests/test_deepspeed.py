"""DeepSpeed ZeRO configs and the multi-process launch: two ZeRO-2 steps under torchrun with
two processes on CPU (DeepSpeed's CPU accelerator with gloo, see STACK.md)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from secateurs.training import launch_command
from test_heal import heal_cfg, make_packed_dir

REPO = Path(__file__).resolve().parents[1]
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
    assert single[1:] == ["-m", "secateurs.train_cli", "heal", "--model", "m"]
    multi = launch_command(4, ["heal"], deepspeed_config="config/deepspeed/zero3.json")
    assert multi[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4"]
    assert multi[-2:] == ["--deepspeed", "config/deepspeed/zero3.json"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed")
def test_two_zero2_steps_under_torchrun(tiny_tokenizer_dir, tmp_path):
    from secateurs.demo.model import init_llama

    init_llama(tiny_tokenizer_dir, tmp_path / "model", hidden_size=64, num_hidden_layers=2,
               num_attention_heads=4, intermediate_size=128)
    packed = make_packed_dir(tiny_tokenizer_dir, tmp_path / "packed")
    (tmp_path / "heal.json").write_text(json.dumps(
        {"heal": heal_cfg(token_budget=2 * 2 * 2 * 32, batch_size=2, save_steps=1)}))
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    cmd = launch_command(2, ["heal", "--model", str(tmp_path / "model"), "--packed", str(packed),
                             "--out", str(out), "--checkpoint-dir", str(ckpt),
                             "--log-csv", str(tmp_path / "log.csv"), "--config", str(tmp_path / "heal.json"),
                             "--summary-json", str(tmp_path / "summary.json")],
                         deepspeed_config=str(DS_DIR / "zero2.json"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
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
