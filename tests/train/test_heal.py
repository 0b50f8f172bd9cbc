"""heal(): continued pretraining on a packed directory, from a random init, with LoRA and
distillation, on the real tiny Llama and tokenizer (no mocks)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from secateurs.io import write_parquet
from secateurs.train.heal import PackedCollator, heal, load_packed_dataset
from secateurs.train.arguments import TrainingConfigError, steps_for_budget
from secateurs.train.callbacks import LOG_COLUMNS
from secateurs.train.checkpoints import ResumeMismatchError
from train_helpers import heal_cfg, make_packed_dir


@pytest.fixture(scope="module")
def packed_dir(tiny_tokenizer_dir, tmp_path_factory) -> Path:
    return make_packed_dir(tiny_tokenizer_dir, tmp_path_factory.mktemp("packed") / "packed")


def test_steps_for_budget_rounds_up():
    assert steps_for_budget(1000, batch_size=2, gradient_accumulation_steps=2, seq_len=100) == 3
    assert steps_for_budget(800, batch_size=2, gradient_accumulation_steps=2, seq_len=100,
                            num_processes=2) == 1
    with pytest.raises(TrainingConfigError, match="token_budget"):
        steps_for_budget(0, batch_size=1, gradient_accumulation_steps=1, seq_len=8)


def test_collator_masks_document_starts(packed_dir):
    dataset, meta = load_packed_dataset(packed_dir)
    batch = PackedCollator(meta["pad_token_id"], meta["eos_token_id"])([dataset[0], dataset[1]])
    assert "attention_mask" not in batch  # position_ids alone => no cross-document attention
    starts = batch["position_ids"] == 0
    assert starts.sum() > 2
    assert (batch["labels"][starts] == -100).all()
    assert torch.equal(batch["labels"][~starts], batch["input_ids"][~starts])


def test_position_ids_keep_documents_apart(tiny_llama_dir, packed_dir):
    """The premise of packing without cross-document attention: a document's logits do not
    depend on the document packed before it."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa").eval()
    a, b = torch.arange(5, 15), torch.arange(20, 28)
    packed = torch.cat([a, b])[None]
    positions = torch.cat([torch.arange(10), torch.arange(8)])[None]
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits[0, 10:]
        alone = model(input_ids=b[None], use_cache=False).logits[0]
        leaky = model(input_ids=packed, use_cache=False).logits[0, 10:]
    assert torch.allclose(together, alone, atol=1e-5)
    assert not torch.allclose(leaky, alone, atol=1e-3)


def test_heal_full_writes_model_and_log(tiny_llama_dir, packed_dir, tmp_path, capfd):
    out, ckpt, log_csv = tmp_path / "healed", tmp_path / "ckpt", tmp_path / "heal.csv"
    summary = heal(tiny_llama_dir, packed_dir, out, checkpoint_dir=ckpt, log_csv=log_csv,
                   config=heal_cfg())
    # a progress line per tenth of the steps, the last one at the end
    assert "healed: step 4/4 (100%), 512 tokens, loss " in capfd.readouterr().err
    assert summary["steps"] == 4
    assert summary["tokens_seen"] == 4 * 4 * 32
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert (out / "generation_config.json").exists()
    rows = list(csv.DictReader(log_csv.open()))
    assert list(rows[0]) == LOG_COLUMNS
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["tokens_seen"]) for r in rows] == [128, 256, 384, 512]
    assert all(float(r["tokens_per_second"]) > 0 for r in rows)
    healed = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert not torch.equal(healed.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)
    # published: the checkpoints (optimizer state) are gone, the run's summary stays
    assert list(ckpt.glob("checkpoint-*")) == [] and (ckpt / "summary.json").exists()
    if summary["tensorboard_dir"]:
        assert list(Path(summary["tensorboard_dir"]).glob("events.out.tfevents.*"))


def test_keep_checkpoints_keeps_them(tiny_llama_dir, packed_dir, tmp_path):
    ckpt = tmp_path / "ckpt"
    heal(tiny_llama_dir, packed_dir, tmp_path / "healed", checkpoint_dir=ckpt,
         log_csv=tmp_path / "heal.csv", config=heal_cfg(keep_checkpoints=True))
    assert sorted(p.name for p in ckpt.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_pretrain_from_random_init_lowers_loss(tiny_tokenizer_dir, packed_dir, tmp_path):
    """The demo pretrains its base model with heal(): a random init must learn the corpus."""
    from secateurs.demo.model import init_llama

    init_llama(tiny_tokenizer_dir, tmp_path / "init", hidden_size=64, num_hidden_layers=2,
               num_attention_heads=4, intermediate_size=128, seed=1)
    heal(tmp_path / "init", packed_dir, tmp_path / "base", checkpoint_dir=tmp_path / "ckpt",
         log_csv=tmp_path / "log.csv",
         config=heal_cfg(learning_rate=1e-2, token_budget=16 * 4 * 32, save_steps=100,
                         lr_scheduler="linear"))
    losses = [float(r["loss"]) for r in csv.DictReader((tmp_path / "log.csv").open())]
    assert len(losses) == 16
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3


def test_rerun_resumes_and_refuses_other_config(tiny_llama_dir, packed_dir, tmp_path):
    ckpt = tmp_path / "ckpt"
    cfg = heal_cfg(token_budget=2 * 4 * 32, keep_checkpoints=True)  # as a killed job leaves them
    heal(tiny_llama_dir, packed_dir, tmp_path / "a", checkpoint_dir=ckpt, log_csv=tmp_path / "a.csv",
         config=cfg)
    # a longer budget is a different config: refused with a message naming it
    with pytest.raises(ResumeMismatchError, match="token_budget"):
        heal(tiny_llama_dir, packed_dir, tmp_path / "b", checkpoint_dir=ckpt,
             log_csv=tmp_path / "b.csv", config=heal_cfg(token_budget=4 * 4 * 32))
    # logging cadence is not part of the fingerprint: the same run resumes at its end
    summary = heal(tiny_llama_dir, packed_dir, tmp_path / "c", checkpoint_dir=ckpt,
                   log_csv=tmp_path / "c.csv", config={**cfg, "logging_steps": 2})
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 2
    assert [r["step"] for r in csv.DictReader((tmp_path / "c.csv").open())] == ["1", "2"]


def test_unknown_method_and_missing_budget_are_refused(tiny_llama_dir, packed_dir, tmp_path):
    with pytest.raises(TrainingConfigError, match="method"):
        heal(tiny_llama_dir, packed_dir, tmp_path / "o", checkpoint_dir=tmp_path / "c",
             log_csv=tmp_path / "l.csv", config=heal_cfg(method="dora"))
    with pytest.raises(TrainingConfigError, match="token_budget"):
        heal(tiny_llama_dir, packed_dir, tmp_path / "o", checkpoint_dir=tmp_path / "c",
             log_csv=tmp_path / "l.csv", config=heal_cfg(token_budget=None))


def test_heal_lora_writes_merged_model_and_keeps_adapter(tiny_llama_dir, packed_dir, tmp_path):
    from peft import PeftModel

    out = tmp_path / "healed"
    cfg = heal_cfg(method="lora", learning_rate=1e-2, save_steps=100,
                   lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "down_proj"]})
    heal(tiny_llama_dir, packed_dir, out, checkpoint_dir=tmp_path / "ckpt", log_csv=tmp_path / "l.csv",
         config=cfg)
    adapter = out / "adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    with_adapter = PeftModel.from_pretrained(base, adapter).eval()
    ids = torch.arange(3, 40)[None]
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, with_adapter(ids).logits, rtol=1e-4, atol=1e-4)
        plain = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()(ids).logits
    assert not torch.allclose(merged(ids).logits, plain, atol=1e-4)  # the adapter learned something
    # only the targeted projections changed
    merged_sd, base_sd = merged.state_dict(), AutoModelForCausalLM.from_pretrained(tiny_llama_dir).state_dict()
    changed = {k.split(".")[-2] for k in base_sd if not torch.equal(merged_sd[k], base_sd[k])}
    assert changed == {"q_proj", "v_proj", "down_proj"}


def test_qlora_without_cuda_is_refused_clearly(tiny_llama_dir, packed_dir, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine could run QLoRA")
    with pytest.raises(TrainingConfigError, match="qlora needs a CUDA GPU"):
        heal(tiny_llama_dir, packed_dir, tmp_path / "o", checkpoint_dir=tmp_path / "c",
             log_csv=tmp_path / "l.csv", config=heal_cfg(method="qlora"))


def test_recovery_curve_and_published_cache(tiny_llama_dir, packed_dir, tmp_path):
    from secateurs.train.recovery import COLUMNS, read_rows

    heldout = {}
    for lang, docs in (("en", [DOCS_EN] * 3), ("zh", [DOCS_ZH] * 3)):
        heldout[lang] = tmp_path / f"heldout_{lang}.parquet"
        write_parquet([{"text": t} for t in docs], heldout[lang])
    recovery_csv = tmp_path / "recovery.csv"
    summary = heal(tiny_llama_dir, packed_dir, tmp_path / "healed", checkpoint_dir=tmp_path / "ckpt",
                   log_csv=tmp_path / "heal.csv", config=heal_cfg(recovery={"milestones": 2}),
                   heldout={k: str(v) for k, v in heldout.items()}, recovery_csv=recovery_csv)
    assert next(csv.reader(recovery_csv.open())) == COLUMNS
    rows = read_rows(recovery_csv)
    assert [(r["step"], r["language"]) for r in rows] == [
        (0, "en"), (0, "zh"), (2, "en"), (2, "zh"), (4, "en"), (4, "zh")]
    assert [r["tokens_seen"] for r in rows[::2]] == [0, 256, 512]
    first, last = rows[0], rows[-2]
    assert last["bits_per_byte"] < first["bits_per_byte"]  # trained on the same English text
    assert first["bytes"] == 3 * len(DOCS_EN.encode())
    assert 0 < summary["recovery_seconds"] < summary["seconds"]
    config = json.loads((tmp_path / "healed" / "config.json").read_text())
    assert config["use_cache"] is True  # training ran without the cache; the model is for generation


DOCS_EN = "The river town of Alder sits where two valleys meet; its mills grind wheat and barley."
DOCS_ZH = "长江是中国最长的河流，全长约六千三百公里。"


def test_recovery_slice_is_capped_with_exact_bytes(tiny_tokenizer_dir, tmp_path):
    from secateurs.train.recovery import heldout_slice

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    write_parquet([{"text": DOCS_EN * 20}, {"text": DOCS_ZH}], tmp_path / "h.parquet")
    full = heldout_slice(tmp_path / "h.parquet", tokenizer, max_tokens=10**6, seq_len=64)
    capped = heldout_slice(tmp_path / "h.parquet", tokenizer, max_tokens=100, seq_len=64)
    assert full["documents"] == 2 and full["bytes"] == len((DOCS_EN * 20 + DOCS_ZH).encode())
    assert capped["documents"] == 1 and capped["bytes"] < len((DOCS_EN * 20).encode())
    scored = sum(len(w) - 1 for w in capped["windows"])
    assert 50 < scored <= 110
    assert all(len(w) <= 65 for w in capped["windows"])
