"""Resume: a rerun continues from the last complete checkpoint and ends where an
uninterrupted run ends (same steps, same tokens, same weights); a kill mid-run (SIGKILL)
resumes the same way."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from secateurs.train.heal import heal
from secateurs.train.checkpoints import resume_checkpoint, run_fingerprint
from train_helpers import heal_cfg, make_packed_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packed_dir(tiny_tokenizer_dir, tmp_path_factory) -> Path:
    return make_packed_dir(tiny_tokenizer_dir, tmp_path_factory.mktemp("packed") / "packed")


def test_resume_from_middle_matches_uninterrupted_run(tiny_llama_dir, packed_dir, tmp_path):
    cfg = heal_cfg(token_budget=4 * 4 * 32, save_steps=2, keep_checkpoints=True)
    whole = heal(tiny_llama_dir, packed_dir, tmp_path / "whole", checkpoint_dir=tmp_path / "c1",
                 log_csv=tmp_path / "whole.csv", config=cfg)
    heal(tiny_llama_dir, packed_dir, tmp_path / "part", checkpoint_dir=tmp_path / "c2",
         log_csv=tmp_path / "part.csv", config=cfg)
    # pretend the job died after checkpoint-2: drop the later checkpoint and the output
    shutil.rmtree(tmp_path / "c2" / "checkpoint-4")
    shutil.rmtree(tmp_path / "part")
    resumed = heal(tiny_llama_dir, packed_dir, tmp_path / "part", checkpoint_dir=tmp_path / "c2",
                   log_csv=tmp_path / "part.csv", config=cfg)
    assert resumed["resumed_from_step"] == 2
    assert resumed["steps"] == whole["steps"] == 4
    assert resumed["tokens_seen"] == whole["tokens_seen"] == 4 * 4 * 32
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    rows = list(csv.DictReader((tmp_path / "part.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    # the loss is over all 4 steps, not only the 2 after the resume (issue 14), and the
    # summary sits beside the log for the report
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-3)
    assert resumed["run_loss"] != pytest.approx(whole["train_loss"], rel=1e-3)
    assert json.loads((tmp_path / "part.json").read_text())["tokens_seen"] == 4 * 4 * 32


def test_incomplete_checkpoint_is_skipped(tmp_path):
    fingerprint = run_fingerprint({"lr": 1}, {"x": 1})
    assert resume_checkpoint(tmp_path, fingerprint) is None
    good, torn = tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"
    good.mkdir()
    (good / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    torn.mkdir()
    (torn / "trainer_state.json").write_text('{"global_st')  # killed while writing
    assert resume_checkpoint(tmp_path, fingerprint) == str(good)
    assert not torn.exists()


KILL_SCRIPT = """
import json, sys
from secateurs.train.heal import heal
args = json.loads(sys.argv[1])
heal(args["model"], args["packed"], args["out"], checkpoint_dir=args["ckpt"], log_csv=args["csv"],
     config=args["config"])
"""


@pytest.mark.slow
def test_sigkill_after_first_checkpoint_then_rerun(tiny_llama_dir, packed_dir, tmp_path):
    ckpt = tmp_path / "ckpt"
    cfg = heal_cfg(token_budget=8 * 4 * 32, save_steps=2)
    args = {"model": str(tiny_llama_dir), "packed": str(packed_dir), "out": str(tmp_path / "out"),
            "ckpt": str(ckpt), "csv": str(tmp_path / "log.csv"), "config": cfg}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, json.dumps(args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (ckpt / "checkpoint-2" / "trainer_state.json").exists():
            assert proc.poll() is None, "heal exited before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (tmp_path / "out").exists()
    done = sorted(int(p.name.split("-")[1]) for p in ckpt.glob("checkpoint-*"))
    assert done and done[-1] < 8, "killed before the end"
    summary = heal(tiny_llama_dir, packed_dir, tmp_path / "out", checkpoint_dir=ckpt,
                   log_csv=tmp_path / "log.csv", config=cfg)
    assert summary["resumed_from_step"] >= 2
    assert summary["steps"] == 8 and summary["tokens_seen"] == 8 * 4 * 32
    steps = [int(r["step"]) for r in csv.DictReader((tmp_path / "log.csv").open())]
    assert steps == list(range(1, 9))
    assert (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_fails_the_job_and_resumes(tiny_llama_dir, packed_dir, tmp_path):
    """SLURM preemption: SIGTERM, then a grace period. The run checkpoints at the next step,
    exits non-zero without writing out_dir, and the rerun finishes the budget."""
    ckpt = tmp_path / "ckpt"
    cfg = heal_cfg(token_budget=16 * 4 * 32, save_steps=100)  # no periodic checkpoint before the end
    args = {"model": str(tiny_llama_dir), "packed": str(packed_dir), "out": str(tmp_path / "out"),
            "ckpt": str(ckpt), "csv": str(tmp_path / "log.csv"), "config": cfg}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, json.dumps(args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (ckpt / "log.csv").exists() or len((ckpt / "log.csv").read_text().splitlines()) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "heal did not start training"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "TrainingInterrupted" in stderr
    assert not (tmp_path / "out").exists()
    saved = [int(p.name.split("-")[1]) for p in ckpt.glob("checkpoint-*")]
    assert len(saved) == 1 and 2 <= saved[0] < 16
    summary = heal(tiny_llama_dir, packed_dir, tmp_path / "out", checkpoint_dir=ckpt,
                   log_csv=tmp_path / "log.csv", config=cfg)
    assert summary["resumed_from_step"] == saved[0]
    assert summary["steps"] == 16 and summary["tokens_seen"] == 16 * 4 * 32
