"""The whole workflow, run for real on the demo at reduced budgets (tests/configs/quick.yaml).

One run (about five minutes on two cores) feeds every test here: perplexity moves the way
pruning and healing should move it, the sliced model is exactly the base model with the
planned layers deleted, the report exists, and a changed chat setting reruns only the chat
jobs.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from workflow import QUICK, planned_jobs, snakemake

pytestmark = pytest.mark.slow


def perplexity(work, model):
    return json.loads((work / "results" / "eval" / f"{model}.json").read_text())["perplexity"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_pruning_hurts_and_healing_recovers(demo_run, lang):
    base, pruned, healed = (perplexity(demo_run, m)[lang] for m in ("base", "pruned", "healed"))
    assert pruned > base, f"{lang}: pruned {pruned:.2f} should be above base {base:.2f}"
    assert healed < pruned, f"{lang}: healed {healed:.2f} should be below pruned {pruned:.2f}"


def test_sliced_model_equals_layers_deleted_in_memory(demo_run):
    from transformers import AutoModelForCausalLM

    results = demo_run / "results"
    plan = json.loads((results / "prune" / "plan.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(results / "models" / "base").eval()
    base.model.layers = torch.nn.ModuleList(base.model.layers[i] for i in plan["keep"])
    base.config.num_hidden_layers = len(plan["keep"])
    pruned = AutoModelForCausalLM.from_pretrained(results / "models" / "pruned").eval()
    assert pruned.config.num_hidden_layers == len(plan["keep"]) < len(plan["keep"] + plan["remove"])
    ids = torch.randint(0, base.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = base(ids, use_cache=False).logits
        actual = pruned(ids, use_cache=False).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


def test_report_lists_every_model(demo_run):
    report = demo_run / "results" / "report"
    summary = (report / "summary.md").read_text()
    for model in ("base", "pruned", "healed", "chat"):
        assert f"| {model}" in summary
    assert (report / "perplexity.png").stat().st_size > 0
    assert (report / "loss.png").stat().st_size > 0


def test_mergekit_yaml_matches_plan(demo_run):
    results = demo_run / "results" / "prune"
    plan = json.loads((results / "plan.json").read_text())
    slices = yaml.safe_load((results / "mergekit.yaml").read_text())["slices"]
    kept = [layer for s in slices for layer in range(*s["sources"][0]["layer_range"])]
    assert kept == plan["keep"]


def test_complete_run_has_nothing_to_redo(demo_run):
    result = snakemake(demo_run, "--dry-run", configfiles=(QUICK,))
    assert planned_jobs(result.stdout) == {}, result.stdout[-2000:]


def test_chat_change_reruns_only_chat_jobs(demo_run, tmp_path):
    changed = tmp_path / "chat.yaml"
    changed.write_text(yaml.safe_dump({"chat": {"learning_rate": 1.0e-4}}))
    result = snakemake(demo_run, "--dry-run", configfiles=(QUICK, changed))
    assert planned_jobs(result.stdout) == {"chat_sft": 1, "evaluate": 1, "report": 1, "all": 1}
