"""secateurs.train.launch: the heal rule's path to several processes (torchrun inside the job)."""

from __future__ import annotations

import csv
import subprocess

import pytest
from transformers import AutoModelForCausalLM

from secateurs.train.launch import free_port, launch_command, train_stage
from secateurs.io import write_parquet
from train_helpers import heal_cfg, make_packed_dir, two_rank_heal_args
from workflow import REPO


@pytest.mark.slow
def test_two_processes_train_on_twice_the_tokens(tiny_tokenizer_dir, tmp_path, monkeypatch):
    """Two processes (DDP on gloo, CPU) see two rows a step each: twice one process's tokens."""
    from secateurs.demo.model import init_llama

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    init_llama(tiny_tokenizer_dir, tmp_path / "model", hidden_size=64, num_hidden_layers=2,
               num_attention_heads=4, intermediate_size=128)
    packed = make_packed_dir(tiny_tokenizer_dir, tmp_path / "packed")
    config = {**heal_cfg(token_budget=2 * 2 * 2 * 32, batch_size=2, save_steps=1),
              "num_processes": 2}
    write_parquet([{"text": "The river town of Alder sits where two valleys meet."}],
                  tmp_path / "heldout_en.parquet")
    result = train_stage("heal", model=str(tmp_path / "model"), packed=str(packed),
                         out=str(tmp_path / "out"), checkpoint_dir=tmp_path / "ckpt",
                         log_csv=str(tmp_path / "log.csv"), config=config,
                         heldout={"en": str(tmp_path / "heldout_en.parquet")},
                         recovery_csv=str(tmp_path / "recovery.csv"))
    assert result is None  # ran in child processes
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["tokens_seen"]) for r in rows] == [128, 256]
    # the recovery curve crosses the torchrun command line; every rank measures, rank 0 writes
    curve = list(csv.DictReader((tmp_path / "recovery.csv").open()))
    assert [(int(r["step"]), int(r["tokens_seen"])) for r in curve] == [(0, 0), (1, 128), (2, 256)]
    assert (tmp_path / "ckpt" / "heal-config.json").exists()
    AutoModelForCausalLM.from_pretrained(tmp_path / "out")


def test_one_process_runs_in_this_process(tiny_tokenizer_dir, tmp_path):
    from secateurs.demo.model import init_llama

    init_llama(tiny_tokenizer_dir, tmp_path / "model", hidden_size=32, num_hidden_layers=2,
               num_attention_heads=2, intermediate_size=64)
    packed = make_packed_dir(tiny_tokenizer_dir, tmp_path / "packed")
    summary = train_stage("heal", model=str(tmp_path / "model"), packed=str(packed),
                          out=str(tmp_path / "out"), checkpoint_dir=tmp_path / "ckpt",
                          log_csv=str(tmp_path / "log.csv"),
                          config=heal_cfg(token_budget=2 * 32 * 2, batch_size=2, save_steps=10))
    assert summary["steps"] == 2
    assert (tmp_path / "out" / "config.json").exists()


@pytest.mark.slow
def test_two_nodes_meet_at_one_rendezvous(tiny_tokenizer_dir, tmp_path):
    """The line each node runs under srun, started twice here: two torchrun agents (one
    process each) meet at one c10d rendezvous and train as one world of two ranks."""
    args, env = two_rank_heal_args(tiny_tokenizer_dir, tmp_path)
    line = launch_command(1, args, num_nodes=2, rendezvous=f"127.0.0.1:{free_port()}",
                          run_id="two-nodes", srun=False)
    nodes = [subprocess.Popen(line, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["tokens_seen"]) for r in rows] == [128, 256]  # 2 rows x 32 tokens x 2 ranks
    AutoModelForCausalLM.from_pretrained(tmp_path / "out")
