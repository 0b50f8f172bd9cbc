"""plan_pruning: strategies, budgets, impossible plans and the mergekit recipe."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from secateurs.prune.mergekit import kept_ranges
from secateurs.prune.plan import PlanError, count_parameters, parse_param_count, plan_pruning
from secateurs.prune.slicing import slice_model

# Six layers; BI lowest at 4 then 1; the best 2-block by distance starts at 2.
SCORES = {
    "num_layers": 6,
    "block_influence": [0.9, 0.2, 0.5, 0.6, 0.1, 0.8],
    "angular_distance": {
        "last_token": {"1": [0.5, 0.4, 0.3, 0.2, 0.25, 0.6, 0.7],
                       "2": [0.5, 0.45, 0.15, 0.3, 0.4],
                       "3": [0.6, 0.5, 0.4, 0.35]},
        "all_tokens": {"1": [0.5] * 6, "2": [0.9, 0.9, 0.9, 0.9, 0.1]},
    },
    "perplexity": {"full": 10.0, "without_layer": [90.0, 12.0, 11.0, 30.0, 20.0, 50.0]},
}


@pytest.fixture
def scores_json(tmp_path):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(SCORES))
    return path


def run(scores_json, model_dir, tmp_path, **kwargs):
    return plan_pruning(scores_json, model_dir, tmp_path / "plan.json",
                        tmp_path / "plan.yml", **kwargs)


@pytest.mark.parametrize("strategy, kwargs, removed", [
    ("bi", {"n_remove": 2}, [1, 4]),
    ("bi", {"n_remove": 2, "protect_last": 2}, [1, 2]),
    ("block", {"n_remove": 2}, [2, 3]),
    ("block", {"n_remove": 2, "metric": "all_tokens"}, [4, 5]),
    ("block", {"n_remove": 3, "protect_first": 2}, [3, 4, 5]),
    ("ppl", {"n_remove": 2}, [1, 2]),
    ("manual", {"slices": [[0, 2], [4, 6]]}, [2, 3]),
    ("manual", {"slices": "[[0, 5]]"}, [5]),
])
def test_strategies(scores_json, tiny_llama_dir, tmp_path, strategy, kwargs, removed):
    plan = run(scores_json, tiny_llama_dir, tmp_path, strategy=strategy, **kwargs)
    assert plan["remove"] == removed
    assert plan["keep"] == [i for i in range(6) if i not in removed]
    assert plan["num_layers_after"] == 6 - len(removed)
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved == plan
    recipe = yaml.safe_load((tmp_path / "plan.yml").read_text())
    ranges = [s["sources"][0]["layer_range"] for s in recipe["slices"]]
    assert [i for start, end in ranges for i in range(start, end)] == plan["keep"]
    assert recipe["merge_method"] == "passthrough"


def test_parameter_counts_match_the_loaded_and_sliced_models(scores_json, tiny_llama_dir,
                                                             tmp_path):
    plan = run(scores_json, tiny_llama_dir, tmp_path, strategy="bi", n_remove=2)
    source = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    assert plan["params_before"] == sum(p.numel() for p in source.parameters())
    slice_model(tiny_llama_dir, plan["keep"], tmp_path / "sliced")
    sliced = AutoModelForCausalLM.from_pretrained(tmp_path / "sliced", dtype=torch.float32)
    assert plan["params_after"] == sum(p.numel() for p in sliced.parameters())


def test_target_params_removes_the_fewest_layers(scores_json, tiny_llama_dir, tmp_path):
    counts = count_parameters(tiny_llama_dir)
    per_layer = counts["per_layer"][0]
    target = counts["total"] - 2 * per_layer  # exactly two layers must go
    plan = run(scores_json, tiny_llama_dir, tmp_path, strategy="bi", target_params=target)
    assert plan["remove"] == [1, 4] and plan["params_after"] <= target
    plan = run(scores_json, tiny_llama_dir, tmp_path, strategy="block",
               target_params=str(target + 1))
    assert plan["remove"] == [2, 3]
    plan = run(scores_json, tiny_llama_dir, tmp_path, strategy="bi",
               target_params=target - 1)
    assert len(plan["remove"]) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "bi", "n_remove": 6}, "n_remove=6"),
    ({"strategy": "bi"}, "exactly one of n_remove"),
    ({"strategy": "bi", "n_remove": 1, "target_params": "1B"}, "exactly one of n_remove"),
    ({"strategy": "bi", "n_remove": 4, "protect_first": 2, "protect_last": 1}, "removable"),
    ({"strategy": "bi", "target_params": 1000}, "unreachable"),
    ({"strategy": "block", "n_remove": 5}, "max_block"),
    ({"strategy": "manual", "slices": [[0, 3], [2, 6]]}, "overlaps"),
    ({"strategy": "manual", "slices": [[0, 7]]}, "out of range"),
    ({"strategy": "manual", "slices": [[3, 3]]}, "out of range"),
    ({"strategy": "manual", "slices": [[0, 3]], "n_remove": 2}, "n_remove=2"),
    ({"strategy": "manual"}, "needs slices"),
    ({"strategy": "bi", "n_remove": 1, "slices": [[0, 3]]}, "only used by strategy manual"),
    ({"strategy": "random", "n_remove": 1}, "not one of"),
    ({"strategy": "bi", "target_params": "three"}, "target_params"),
])
def test_impossible_plans_are_refused(scores_json, tiny_llama_dir, tmp_path, kwargs, message):
    with pytest.raises(PlanError, match=message):
        run(scores_json, tiny_llama_dir, tmp_path, **kwargs)
    assert not (tmp_path / "plan.json").exists()


def test_scores_of_another_model_are_refused(tmp_path, tiny_llama_dir):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({**SCORES, "num_layers": 32}))
    with pytest.raises(PlanError, match="num_layers=32"):
        run(path, tiny_llama_dir, tmp_path, strategy="bi", n_remove=1)


def test_ppl_needs_perplexities(tmp_path, tiny_llama_dir):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({k: v for k, v in SCORES.items() if k != "perplexity"}))
    with pytest.raises(PlanError, match="ppl=True"):
        run(path, tiny_llama_dir, tmp_path, strategy="ppl", n_remove=1)


def test_manual_needs_no_scores(tiny_llama_dir, tmp_path):
    plan = run(None, tiny_llama_dir, tmp_path, strategy="manual", slices=[[0, 4], [5, 6]])
    assert plan["remove"] == [4] and plan["scores"] is None


def test_parse_param_count_and_ranges():
    assert parse_param_count("3B") == 3_000_000_000
    assert parse_param_count("350M") == 350_000_000
    assert parse_param_count("1.5b") == 1_500_000_000
    assert parse_param_count("3e9") == 3_000_000_000
    assert parse_param_count(12345) == 12345
    assert kept_ranges([0, 1, 2, 5, 6, 9]) == [[0, 3], [5, 7], [9, 10]]


def test_ppl_block_metric_and_bad_metrics(scores_json, tiny_llama_dir, tmp_path):
    scores = {**SCORES, "perplexity": {**SCORES["perplexity"],
                                       "without_block": {"2": [50.0, 40.0, 60.0, 13.0, 70.0]}}}
    path = tmp_path / "ppl.json"
    path.write_text(json.dumps(scores))
    plan = run(path, tiny_llama_dir, tmp_path, strategy="ppl", n_remove="2", metric="block")
    assert plan["remove"] == [3, 4] and plan["metric"] == "perplexity/block"
    with pytest.raises(PlanError, match="ppl_block_sizes including 3"):
        run(path, tiny_llama_dir, tmp_path, strategy="ppl", n_remove=3, metric="block")
    with pytest.raises(PlanError, match="metric 'cosine'"):
        run(path, tiny_llama_dir, tmp_path, strategy="block", n_remove=2, metric="cosine")
    with pytest.raises(PlanError, match="n_remove='two'"):
        run(path, tiny_llama_dir, tmp_path, strategy="bi", n_remove="two")


def test_mergekit_recipe_names_the_model_relative_to_the_working_directory(
        tiny_llama_dir, tmp_path, monkeypatch):
    """The recipe works on another machine: no absolute path of this one (issue 14)."""
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "models" / "base"
    model.parent.mkdir()
    model.symlink_to(tiny_llama_dir, target_is_directory=True)
    plan_pruning(None, str(model), tmp_path / "plan.json", tmp_path / "plan.yml",
                 strategy="manual", slices=[[0, 4], [5, 6]])
    recipe = yaml.safe_load((tmp_path / "plan.yml").read_text())
    names = {s["sources"][0]["model"] for s in recipe["slices"]}
    assert names == {"models/base"}
