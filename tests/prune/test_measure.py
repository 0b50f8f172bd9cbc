"""Measured and greedy plans, and per-language scoring, on a real tiny Llama.

The measured choice is checked by recomputing every candidate's held-out loss with an
independent computation (a sliced copy of the model, one unpadded text at a time).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import SAMPLE_TEXTS
from secateurs.io import write_parquet
from secateurs.prune.measure import heldout_texts
from secateurs.prune.table import candidate_table
from secateurs.prune.plan import PlanError, choose_removal, candidate_layers, plan_pruning
from secateurs.prune.scoring import calibration_batches, score_layers, score_model

EN = [t for t in SAMPLE_TEXTS if t.isascii()]
ZH = [t for t in SAMPLE_TEXTS if not t.isascii()]
MEASURE = {"docs": 3, "seq_len": 48, "batch_size": 2, "language_weights": None,
           "dtype": "float32", "device": "cpu"}


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    """A mix directory as the data stage writes it: train.parquet with lang, held-out files."""
    out = tmp_path_factory.mktemp("mix")
    train = [{"text": t * (i % 3 + 1), "lang": "en"} for i, t in enumerate(EN)]
    train += [{"text": t * (i % 2 + 1), "lang": "zh"} for i, t in enumerate(ZH)]
    train.sort(key=lambda r: len(r["text"]))  # interleave languages, as the shuffled mix does
    write_parquet(train, out / "train.parquet")
    write_parquet([{"text": (t + " ") * 3, "lang": "en"} for t in EN], out / "heldout_en.parquet")
    write_parquet([{"text": t * 4, "lang": "zh"} for t in ZH], out / "heldout_zh.parquet")
    return out


@pytest.fixture(scope="module")
def scores_json(tiny_llama_dir, mix, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores")
    score_layers(tiny_llama_dir, mix / "train.parquet", out / "s.json", out / "s.csv",
                 out / "s.png", num_samples=64, seq_len=48, batch_size=3, max_block=3,
                 device="cpu", progress=False, ppl=True)
    return out / "s.json"


def heldout(mix):
    return {lang: mix / f"heldout_{lang}.parquet" for lang in ("en", "zh")}


def reference_loss(model_dir, remove, texts) -> float:
    """Mean next-token loss of a model rebuilt without `remove`, one text at a time."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    layers = model.model.layers
    model.model.layers = torch.nn.ModuleList([l for i, l in enumerate(layers) if i not in remove])
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, max_length=MEASURE["seq_len"], truncation=True,
                            return_tensors="pt")["input_ids"]
            logits = model(input_ids=ids, use_cache=False).logits
            total += float(torch.nn.functional.cross_entropy(
                logits[0, :-1], ids[0, 1:], reduction="sum"))
            count += ids.shape[1] - 1
    return total / count


def test_scores_per_language_equal_scoring_each_language_alone(tiny_llama_dir, mix, scores_json):
    scores = json.loads(scores_json.read_text())
    assert set(scores["by_language"]) == {"en", "zh"}
    assert scores["calibration"]["languages"] == {"en": len(EN), "zh": len(ZH)}
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    from secateurs.io import read_parquet

    rows = read_parquet(mix / "train.parquet")
    for lang in ("en", "zh"):
        texts = [r["text"] for r in rows if r["lang"] == lang]
        alone = score_model(model, calibration_batches(tokenizer, texts, 48, 3), max_block=3,
                            progress=False)
        mine = scores["by_language"][lang]
        assert mine["block_influence"] == pytest.approx(alone["block_influence"], abs=1e-6)
        assert mine["angular_distance"]["last_token"]["2"] == pytest.approx(
            alone["angular_distance"]["last_token"]["2"], abs=1e-6)
        assert mine["samples"] == len(texts)
    # the whole sample's Block Influence is the token-weighted mean of the languages'
    en, zh = scores["by_language"]["en"], scores["by_language"]["zh"]
    mixed = [(en["tokens"] * a + zh["tokens"] * b) / (en["tokens"] + zh["tokens"])
             for a, b in zip(en["block_influence"], zh["block_influence"])]
    assert scores["block_influence"] == pytest.approx(mixed, abs=1e-9)
    assert len(scores["by_language"]["zh"]["perplexity"]["without_layer"]) == 6
    csv = (scores_json.parent / "s.csv").read_text()
    assert {line.rsplit(",", 1)[1] for line in csv.splitlines() if line[0].isdigit()} == \
        {"all", "en", "zh"}


def test_measured_plan_is_the_candidate_with_the_lowest_worse_language_loss(
        tiny_llama_dir, mix, scores_json, tmp_path):
    plan = plan_pruning(scores_json, tiny_llama_dir, tmp_path / "p.json", tmp_path / "p.yml",
                        strategy="measured", n_remove=2, heldout=heldout(mix), measure=MEASURE,
                        out_png=tmp_path / "p.png")
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["remove"] == plan["remove"] and saved["strategy"] == "measured"
    candidates = saved["candidates"]
    # every proxy on every calibration set proposed a cut; each cut is measured once
    scores = json.loads(scores_json.read_text())
    for metrics in [scores, *scores["by_language"].values()]:
        bi = choose_removal("bi", metrics, 2, candidate_layers(6, 0, 0))
        assert bi in [c["remove"] for c in candidates]
    assert len({tuple(c["remove"]) for c in candidates}) == len(candidates)
    # recompute every candidate's losses independently and the choice from them
    texts = {lang: heldout_texts(path, MEASURE["docs"]) for lang, path in heldout(mix).items()}
    base = {lang: reference_loss(tiny_llama_dir, [], t) for lang, t in texts.items()}
    assert saved["selection"]["full_model_loss"] == pytest.approx(base, rel=1e-4)
    worse = []
    for candidate in candidates:
        losses = {lang: reference_loss(tiny_llama_dir, candidate["remove"], t)
                  for lang, t in texts.items()}
        assert candidate["losses"] == pytest.approx(losses, rel=1e-4)
        worse.append(max(losses[lang] - base[lang] for lang in losses))
    best = min(range(len(candidates)), key=worse.__getitem__)
    assert saved["remove"] == candidates[best]["remove"]
    assert [c["chosen"] for c in candidates].count(True) == 1 and candidates[best]["chosen"]
    # the plan names the metric and calibration set that proposed the winner
    assert saved["metric"] == candidates[best]["proposed_by"][0]["metric"]
    assert saved["calibration"] in ("all", "en", "zh")
    assert saved["selection"]["passes"] == len(candidates) + 1
    table = candidate_table(saved)
    assert table.count("\n") == len(candidates) + 1 and "**chosen**" in table
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    # the report shows the candidate table and the pruning figure
    from secateurs.evaluate.report import write_report
    from secateurs.io import write_json

    write_json({"model": "tiny", "model_dir": "/m", "num_parameters": 1, "num_layers": 6,
                "perplexity": {"en": 9.0, "zh": 9.0}, "nll": {}, "tokens": {"en": 1, "zh": 1},
                "samples": [], "settings": {}}, tmp_path / "base.json")
    write_report({"base": tmp_path / "base.json"}, tmp_path / "report", plan_json=tmp_path / "p.json")
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert table in summary and "![pruning plan](pruning.png)" in summary
    assert (tmp_path / "report" / "pruning.png").is_file()


def test_language_weights_change_the_objective(tiny_llama_dir, mix, scores_json, tmp_path):
    weights = {**MEASURE, "language_weights": {"en": 1.0, "zh": 0.0}}
    plan = plan_pruning(scores_json, tiny_llama_dir, tmp_path / "p.json", tmp_path / "p.yml",
                        strategy="measured", n_remove=2, heldout=heldout(mix), measure=weights)
    base = plan["selection"]["full_model_loss"]
    for candidate in plan["candidates"]:
        assert candidate["objective"] == pytest.approx(candidate["losses"]["en"] - base["en"])
    chosen = min(plan["candidates"], key=lambda c: c["losses"]["en"])
    assert plan["remove"] == chosen["remove"]


def test_greedy_removes_the_measured_cheapest_layer_each_step(tiny_llama_dir, mix, scores_json,
                                                              tmp_path):
    plan = plan_pruning(scores_json, tiny_llama_dir, tmp_path / "p.json", tmp_path / "p.yml",
                        strategy="greedy", n_remove=2, protect_first=1, heldout=heldout(mix),
                        measure=MEASURE, out_png=tmp_path / "p.png")
    steps = plan["steps"]
    assert len(steps) == 2 and plan["remove"] == sorted(s["removed"] for s in steps)
    assert set(steps[0]["tried"]) == {"1", "2", "3", "4", "5"}  # layer 0 protected
    assert len(steps[1]["tried"]) == 4
    for step in steps:
        assert step["objective"] == min(step["tried"].values())
    texts = {lang: heldout_texts(path, MEASURE["docs"]) for lang, path in heldout(mix).items()}
    for lang, t in texts.items():
        assert steps[-1]["losses"][lang] == pytest.approx(
            reference_loss(tiny_llama_dir, plan["remove"], t), rel=1e-4)
    assert plan["metric"] == "heldout_loss"
    assert plan["selection"]["passes"] == 1 + 5 + 4
    assert (tmp_path / "p.png").is_file()


def test_proxy_plans_name_their_metric_and_calibration_set(tiny_llama_dir, scores_json,
                                                           tmp_path):
    scores = json.loads(scores_json.read_text())
    plan = plan_pruning(scores_json, tiny_llama_dir, tmp_path / "p.json", tmp_path / "p.yml",
                        strategy="bi", n_remove=2, calibration="zh", out_png=tmp_path / "p.png")
    assert plan["metric"] == "block_influence" and plan["calibration"] == "zh"
    assert plan["remove"] == choose_removal("bi", scores["by_language"]["zh"], 2, range(6))
    with pytest.raises(PlanError, match="calibration set 'fr'"):
        plan_pruning(scores_json, tiny_llama_dir, tmp_path / "p.json", tmp_path / "p.yml",
                     strategy="bi", n_remove=2, calibration="fr")
    with pytest.raises(PlanError, match="heldout"):
        plan_pruning(scores_json, tiny_llama_dir, tmp_path / "p.json", tmp_path / "p.yml",
                     strategy="measured", n_remove=2)


def test_cli_plan_measured(tiny_llama_dir, mix, scores_json, tmp_path):
    out = tmp_path / "plan.json"
    args = [sys.executable, "-m", "secateurs", "plan", str(scores_json), str(tiny_llama_dir),
            str(out), str(tmp_path / "plan.yml"), "--strategy", "measured", "--n-remove", "2",
            "--mix", str(mix), "--measure.docs", "2", "--measure.seq-len", "32",
            "--measure.device", "cpu", "--figure", str(tmp_path / "p.png")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    plan = json.loads(out.read_text())
    assert plan["strategy"] == "measured" and len(plan["remove"]) == 2
    assert plan["selection"]["heldout"]["zh"]["docs"] == 2
    assert all(math.isfinite(c["objective"]) for c in plan["candidates"])
