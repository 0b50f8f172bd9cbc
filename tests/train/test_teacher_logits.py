"""Cached teacher logits: what the cache holds, the loss it gives, resuming, refusing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from secateurs.prune.layers import delete_layers_in_memory
from secateurs.train.distill import DistillationTrainer, teacher_top_k, topk_distillation_loss
from secateurs.train.heal import CachedTeacherCollator, PackedCollator, heal, load_packed_dataset
from secateurs.train.teacher_logits import (TeacherCache, TeacherCacheMismatch,
                                            build_teacher_cache, shard_name)
from train_helpers import heal_cfg, make_packed_dir

K = 8


@pytest.fixture(scope="module")
def packed(tiny_tokenizer_dir, tmp_path_factory) -> Path:
    return make_packed_dir(tiny_tokenizer_dir, tmp_path_factory.mktemp("packed") / "packed", copies=3)


@pytest.fixture(scope="module")
def cache(tiny_llama_dir, packed, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    build_teacher_cache(tiny_llama_dir, packed, root / "cache", work_dir=root / "work", top_k=K,
                        batch_size=3, rows_per_shard=4)
    return root / "cache"


@pytest.fixture(scope="module")
def student(tiny_llama_dir, tmp_path_factory) -> Path:
    """A depth-pruned student: the teacher with layers 2-4 deleted (what slicing makes)."""
    out = tmp_path_factory.mktemp("student") / "pruned"
    model = delete_layers_in_memory(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), [0, 1, 5])
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(out)
    return out


def _teacher_rows(teacher_dir, packed_dir, rows):
    dataset, _ = load_packed_dataset(packed_dir)
    batch = dataset[rows[0]:rows[-1] + 1]
    with torch.no_grad():
        logits = AutoModelForCausalLM.from_pretrained(teacher_dir).eval()(
            input_ids=torch.tensor(batch["input_ids"]),
            position_ids=torch.tensor(batch["position_ids"]), use_cache=False).logits
    return teacher_top_k(logits, K)


def test_cache_holds_the_teachers_top_k(tiny_llama_dir, packed, cache):
    meta = json.loads((cache / "meta.json").read_text())
    rows = len(load_packed_dataset(packed)[0])
    assert meta["rows"] == rows and meta["shards"] == -(-rows // 4) and meta["top_k"] == K
    assert meta["id_dtype"] == "uint16"  # a 512-token vocabulary fits
    assert meta["bytes_per_token"] == pytest.approx(K * 4, rel=0.05)  # + safetensors headers
    assert 0 < meta["mean_top_k_mass"] <= 1
    ids, logprobs = TeacherCache(cache).rows(list(range(rows)))
    want_ids, want_logprobs = _teacher_rows(tiny_llama_dir, packed, list(range(rows)))
    assert torch.equal(ids, want_ids)
    torch.testing.assert_close(logprobs, want_logprobs, rtol=1e-3, atol=2e-3)  # float16
    with safe_open(str(cache / shard_name(0)), framework="pt") as shard:
        assert shard.get_slice("logprobs").get_dtype() == "F16"


def test_rows_are_read_in_any_order(cache):
    reader = TeacherCache(cache)
    ids, logprobs = reader.rows([5, 0, 4])
    for at, row in enumerate([5, 0, 4]):
        one_ids, one_logprobs = reader.rows([row])
        assert torch.equal(ids[at], one_ids[0]) and torch.equal(logprobs[at], one_logprobs[0])


def _batch(packed, cache_dir, rows):
    dataset, meta = load_packed_dataset(packed)
    dataset = dataset.add_column("row", list(range(len(dataset))))
    collate = CachedTeacherCollator(TeacherCache(cache_dir), meta["pad_token_id"], meta["eos_token_id"])
    return collate([dataset[i] for i in rows])


@pytest.mark.parametrize("tail", [True, False])
def test_cached_loss_equals_online_loss_with_the_same_k(tiny_llama_dir, packed, cache, student,
                                                         tmp_path, tail):
    batch = _batch(packed, cache, [1, 6, 3, 0])
    args = dict(alpha=0.7, temperature=2.0, tail=tail)
    model = AutoModelForCausalLM.from_pretrained(student)
    teacher = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    from transformers import TrainingArguments

    targs = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    cached = DistillationTrainer(model=model, args=targs, teacher=None, **args)
    online = DistillationTrainer(model=model, args=targs, teacher=teacher, top_k=K, **args)
    with torch.no_grad():
        cached_loss = cached.compute_loss(model, dict(batch))
        online_loss = online.compute_loss(model, {k: v for k, v in batch.items()
                                                  if not k.startswith("teacher_")})
    torch.testing.assert_close(cached_loss, online_loss, rtol=1e-3, atol=1e-4)
    assert cached._last_parts["kl"] > 1e-3  # a pruned student differs from its teacher


def test_topk_loss_is_the_kl_of_the_renormalised_teacher():
    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(1, 4, 10, generator=gen), torch.randn(1, 4, 10, generator=gen)
    labels, t = torch.zeros(1, 4, dtype=torch.long), 1.5
    ids, logprobs = teacher_top_k(teacher, 3)
    _, parts = topk_distillation_loss(student, ids, logprobs, labels, alpha=1.0, temperature=t,
                                      tail=False)
    p = torch.zeros(3, 10).scatter(-1, ids[0, :-1], torch.softmax(logprobs[0, :-1] / t, -1))
    q = torch.log_softmax(student[0, :-1] / t, -1)
    expected = sum(float((p[i][p[i] > 0] * (p[i][p[i] > 0].log() - q[i][p[i] > 0])).sum())
                   for i in range(3)) / 3 * t * t
    assert float(parts["kl"]) == pytest.approx(expected, rel=1e-5)
    # with every token kept, it is the full-vocabulary KL
    from secateurs.train.distill import distillation_loss

    full_ids, full_logprobs = teacher_top_k(teacher, 10)
    _, top_all = topk_distillation_loss(student, full_ids, full_logprobs, labels, alpha=1.0,
                                        temperature=t, tail=False)
    _, dense = distillation_loss(student, teacher, labels, alpha=1.0, temperature=t)
    torch.testing.assert_close(top_all["kl"], dense["kl"])


def test_tail_bin_loss_is_the_kl_of_k_plus_one_bins():
    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(1, 4, 10, generator=gen), torch.randn(1, 4, 10, generator=gen)
    labels = torch.zeros(1, 4, dtype=torch.long)
    ids, logprobs = teacher_top_k(teacher, 3)
    _, parts = topk_distillation_loss(student, ids, logprobs, labels, alpha=1.0, temperature=1.0)
    p_top = logprobs[0, :-1].exp()
    q_top = torch.softmax(student[0, :-1], -1).gather(-1, ids[0, :-1])
    p = torch.cat([p_top, 1 - p_top.sum(-1, keepdim=True)], -1)
    q = torch.cat([q_top, 1 - q_top.sum(-1, keepdim=True)], -1)
    expected = float((p * (p.log() - q.log())).sum(-1).mean())
    assert float(parts["kl"]) == pytest.approx(expected, rel=1e-5)
    # a lower bound of the whole-vocabulary KL (the log-sum inequality over the tail) ...
    from secateurs.train.distill import distillation_loss

    _, dense = distillation_loss(student, teacher, labels, alpha=1.0, temperature=1.0)
    assert float(parts["kl"]) < float(dense["kl"])
    # ... which it equals when k covers the vocabulary
    full_ids, full_logprobs = teacher_top_k(teacher, 10)
    _, top_all = topk_distillation_loss(student, full_ids, full_logprobs, labels, alpha=1.0,
                                        temperature=1.0)
    torch.testing.assert_close(top_all["kl"], dense["kl"], rtol=1e-4, atol=1e-4)


def test_a_student_that_is_the_teacher_has_no_tail_loss_but_a_renormalised_one():
    """The bias the tail bin removes: renormalising the top-k teaches even a perfect student
    to move its mass off the rest of the vocabulary."""
    teacher = torch.randn(1, 5, 50, generator=torch.Generator().manual_seed(1))
    labels = torch.zeros(1, 5, dtype=torch.long)
    ids, logprobs = teacher_top_k(teacher, 4)
    _, with_tail = topk_distillation_loss(teacher, ids, logprobs, labels, alpha=1.0, temperature=1.0)
    _, renormalised = topk_distillation_loss(teacher, ids, logprobs, labels, alpha=1.0,
                                             temperature=1.0, tail=False)
    assert abs(float(with_tail["kl"])) < 1e-5
    assert float(renormalised["kl"]) > 0.1


class Stop(Exception):
    pass


def test_a_killed_build_resumes_from_its_finished_shards(tiny_llama_dir, packed, cache, tmp_path):
    def stop_after_two(done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        build_teacher_cache(tiny_llama_dir, packed, tmp_path / "cache", work_dir=tmp_path / "work",
                            top_k=K, batch_size=3, rows_per_shard=4, on_shard=stop_after_two)
    (work,) = (tmp_path / "work").iterdir()
    kept = sorted(p.name for p in work.glob("shard-*"))
    assert kept == [shard_name(0), shard_name(1)] and not (tmp_path / "cache").exists()
    (work / f".{shard_name(2)}.tmp-deadbeef").write_bytes(b"half a shard")  # killed mid-write
    seen = []
    meta = build_teacher_cache(tiny_llama_dir, packed, tmp_path / "cache", work_dir=tmp_path / "work",
                               top_k=K, batch_size=3, rows_per_shard=4,
                               on_shard=lambda done, total: seen.append(done))
    assert meta["resumed"] is True and seen == list(range(3, meta["shards"] + 1))
    assert not work.exists()  # moved into place
    for index in range(meta["shards"]):
        with safe_open(str(tmp_path / "cache" / shard_name(index)), "pt") as a, \
                safe_open(str(cache / shard_name(index)), "pt") as b:
            assert all(torch.equal(a.get_tensor(n), b.get_tensor(n)) for n in ("ids", "logprobs"))
    assert not list((tmp_path / "cache").glob(".*tmp*"))


def _heal(student, packed, cache_dir, tmp_path, teacher=None, **distill):
    return heal(student, packed, tmp_path / "healed", checkpoint_dir=tmp_path / "ckpt",
                log_csv=tmp_path / "log.csv", teacher_dir=teacher, teacher_logits=cache_dir,
                config=heal_cfg(token_budget=2 * 4 * 32, save_steps=100, learning_rate=3e-4,
                                distill={"enabled": True, "mode": "cached", "top_k": K, **distill}))


def test_heal_reads_the_cache_and_records_it(tiny_llama_dir, packed, cache, student, tmp_path):
    summary = _heal(student, packed, cache, tmp_path, teacher=tiny_llama_dir, alpha=1.0)
    assert summary["distill_mode"] == "cached" and summary["steps"] == 2
    assert summary["teacher_cache"]["top_k"] == K and summary["teacher_cache"]["bytes"] > 0
    assert (tmp_path / "healed" / "model.safetensors").exists()


def test_a_cache_for_other_packed_data_is_refused(tiny_tokenizer_dir, packed, cache, student, tmp_path):
    other = make_packed_dir(tiny_tokenizer_dir, tmp_path / "other", copies=2)
    with pytest.raises(TeacherCacheMismatch, match="other packed data than .*other.*Fix: rebuild"):
        _heal(student, other, cache, tmp_path)


def test_a_cache_from_another_teacher_or_k_is_refused(tiny_llama_dir, packed, cache, student, tmp_path):
    other = tmp_path / "other-teacher"
    shutil.copytree(tiny_llama_dir, other)
    model = AutoModelForCausalLM.from_pretrained(other)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight.mul_(1.5)
    model.save_pretrained(other)
    with pytest.raises(TeacherCacheMismatch, match="another teacher"):
        _heal(student, packed, cache, tmp_path, teacher=other)
    with pytest.raises(TeacherCacheMismatch, match="top 8 entries.*top_k=16"):
        _heal(student, packed, cache, tmp_path, top_k=16)


def test_cached_mode_without_a_cache_is_refused(packed, student, tmp_path):
    from secateurs.train.arguments import TrainingConfigError

    with pytest.raises(TrainingConfigError, match="teacher_logits"):
        _heal(student, packed, None, tmp_path)


def test_plain_collator_is_unchanged_by_the_cache(packed, cache):
    dataset, meta = load_packed_dataset(packed)
    plain = PackedCollator(meta["pad_token_id"], meta["eos_token_id"])([dataset[i] for i in (2, 3)])
    cached = _batch(packed, cache, [2, 3])
    assert all(torch.equal(plain[k], cached[k]) for k in plain)
    assert cached["teacher_ids"].shape == (2, meta["seq_len"], K)
