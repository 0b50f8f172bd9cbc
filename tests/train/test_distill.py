"""Distillation (Minitron): the loss's parts, a frozen teacher, and heal() with distill on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from secateurs.train.distill import distillation_loss
from secateurs.train.heal import PackedCollator, heal, load_packed_dataset
from secateurs.prune.layers import delete_layers_in_memory
from train_helpers import heal_cfg, make_packed_dir


def _logits(seed: int, shape=(2, 7, 11)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_alpha_zero_is_cross_entropy_on_shifted_labels():
    student, teacher = _logits(0), _logits(1)
    labels = torch.randint(0, 11, (2, 7), generator=torch.Generator().manual_seed(2))
    labels[0, 3] = -100
    loss, parts = distillation_loss(student, teacher, labels, alpha=0.0, temperature=2.0)
    keep = labels[:, 1:] != -100
    expected = F.cross_entropy(student[:, :-1][keep], labels[:, 1:][keep])
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(parts["ce"], expected)


def test_kl_is_zero_for_identical_models_and_positive_otherwise():
    student, labels = _logits(0), torch.zeros(2, 7, dtype=torch.long)
    _, same = distillation_loss(student, student.clone(), labels, alpha=1.0, temperature=2.0)
    assert same["kl"].abs() < 1e-6
    loss, other = distillation_loss(student, _logits(1), labels, alpha=1.0, temperature=2.0)
    assert other["kl"] > 0.01
    torch.testing.assert_close(loss, other["kl"])


def test_kl_is_teacher_to_student_scaled_by_t_squared():
    student, teacher, t = _logits(0, (1, 3, 5)), _logits(1, (1, 3, 5)), 3.0
    labels = torch.zeros(1, 3, dtype=torch.long)
    _, parts = distillation_loss(student, teacher, labels, alpha=1.0, temperature=t)
    p = F.softmax(teacher[0, :-1] / t, -1)
    q = F.softmax(student[0, :-1] / t, -1)
    expected = (p * (p.log() - q.log())).sum(-1).mean() * t * t
    torch.testing.assert_close(parts["kl"], expected)


def test_mismatched_vocabularies_and_bad_settings_are_refused():
    labels = torch.zeros(2, 7, dtype=torch.long)
    with pytest.raises(ValueError, match="vocabulary"):
        distillation_loss(_logits(0), _logits(1, (2, 7, 12)), labels, alpha=0.5, temperature=1.0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(_logits(0), _logits(1), labels, alpha=1.5, temperature=1.0)


def _drop_layers(model_dir: Path, out: Path, keep: list[int]) -> Path:
    """A depth-pruned student: the teacher with only `keep` layers (what slicing makes)."""
    model = delete_layers_in_memory(AutoModelForCausalLM.from_pretrained(model_dir), keep)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def _kl_to_teacher(student_dir, teacher_dir, packed_dir) -> float:
    dataset, meta = load_packed_dataset(packed_dir)
    batch = PackedCollator(meta["pad_token_id"], meta["eos_token_id"])([dataset[i] for i in range(8)])
    inputs = {k: batch[k] for k in ("input_ids", "position_ids")}
    with torch.no_grad():
        s = AutoModelForCausalLM.from_pretrained(student_dir).eval()(**inputs, use_cache=False).logits
        t = AutoModelForCausalLM.from_pretrained(teacher_dir).eval()(**inputs, use_cache=False).logits
    return float(distillation_loss(s, t, batch["labels"], alpha=1.0, temperature=1.0)[1]["kl"])


def test_heal_with_distillation_moves_student_towards_teacher(tiny_llama_dir, tiny_tokenizer_dir, tmp_path):
    teacher = tiny_llama_dir
    packed = make_packed_dir(tiny_tokenizer_dir, tmp_path / "packed")
    student = _drop_layers(teacher, tmp_path / "pruned", keep=[0, 1, 5])
    teacher_before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(teacher).state_dict().items()}
    before = _kl_to_teacher(student, teacher, packed)
    summary = heal(student, packed, tmp_path / "healed", checkpoint_dir=tmp_path / "ckpt",
                   log_csv=tmp_path / "l.csv", teacher_dir=teacher,
                   config=heal_cfg(token_budget=6 * 4 * 32, learning_rate=3e-4, save_steps=100,
                                   warmup_ratio=0.0, lr_scheduler="constant",
                                   distill={"enabled": True, "mode": "online", "top_k": None,
                                            "alpha": 1.0, "temperature": 1.0}))
    assert summary["distill"] is True and summary["steps"] == 6
    after = _kl_to_teacher(tmp_path / "healed", teacher, packed)
    assert after < 0.6 * before, (before, after)
    teacher_after = AutoModelForCausalLM.from_pretrained(teacher).state_dict()
    assert all(torch.equal(teacher_before[k], teacher_after[k]) for k in teacher_before)


def test_distill_without_teacher_is_refused(tiny_llama_dir, tiny_tokenizer_dir, tmp_path):
    from secateurs.train.arguments import TrainingConfigError

    packed = make_packed_dir(tiny_tokenizer_dir, tmp_path / "packed", copies=2)
    with pytest.raises(TrainingConfigError, match="teacher_dir"):
        heal(tiny_llama_dir, packed, tmp_path / "o", checkpoint_dir=tmp_path / "c", log_csv=tmp_path / "l",
             config=heal_cfg(distill={"enabled": True, "mode": "online"}))


@pytest.mark.slow
def test_demo_workflow_heals_with_distillation_from_its_base(demo_run, tmp_path):
    """The config switch in the workflow: rule teacher_logits caches the unpruned base's
    top-k once, heal reads it (never loading the teacher), and the healed model still beats
    the pruned one (bench/distill.py measures by how much). A rerun with another alpha
    reuses the cache."""
    import json

    from workflow import QUICK, copy_run, snakemake

    work = copy_run(demo_run, tmp_path / "work")
    switch = tmp_path / "distill.yaml"
    switch.write_text("heal:\n  distill: {enabled: true, alpha: 0.2, temperature: 1.0, top_k: 32}\n")
    snakemake(work, "--", "results/eval/healed.json", configfiles=(QUICK, switch))
    log = (work / "logs" / "heal" / "heal.log").read_text()
    assert "distilling from the cached teacher top-32 in results/data/teacher_logits" in log
    summary = json.loads((work / "results" / "train_logs" / "heal.json").read_text())
    assert summary["distill_mode"] == "cached" and summary["teacher_cache"]["top_k"] == 32
    healed = json.loads((work / "results" / "eval" / "healed.json").read_text())["perplexity"]
    pruned = json.loads((work / "results" / "eval" / "pruned.json").read_text())["perplexity"]
    assert all(healed[lang] < pruned[lang] for lang in ("en", "zh")), (healed, pruned)
    cache_made = (work / "results" / "data" / "teacher_logits" / "meta.json").stat().st_mtime
    switch.write_text("heal:\n  distill: {enabled: true, alpha: 0.5, temperature: 1.0, top_k: 32}\n")
    snakemake(work, "--", "results/eval/healed.json", configfiles=(QUICK, switch))
    assert (work / "results" / "data" / "teacher_logits" / "meta.json").stat().st_mtime == cache_made
