"""Every pruning strategy is checked before any job runs; ppl is reachable from the config."""

from __future__ import annotations

import pytest
import yaml

from secateurs.config import ConfigError, validate_config
from secateurs.prune.stage import heldout_files, model_name, score_params
from secateurs.settings import complete
from workflow import REPO

SCHEMA = REPO / "secateurs" / "schema.yaml"


@pytest.fixture()
def config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def problems(config: dict) -> str:
    try:
        validate_config(config, SCHEMA, basedir=REPO)
    except ConfigError as error:
        return str(error)
    return ""


@pytest.mark.parametrize("strategy", ["bi", "block", "ppl", "measured", "greedy"])
def test_every_strategy_validates_with_its_needs(config, strategy):
    config["prune"]["plan"]["strategy"] = strategy
    config["data"]["mix"]["heldout_docs"] = 40  # room for 16 measured + 20 evaluated
    config["evaluate"] = {**config.get("evaluate", {}), "max_docs": 20}
    assert problems(config) == ""


@pytest.mark.parametrize("plan, score, key", [
    ({"strategy": "ppl", "metric": "all_tokens"}, {}, "prune.plan.metric"),
    ({"strategy": "bi", "metric": "layer"}, {}, "prune.plan.metric"),
    ({"strategy": "block", "n_remove": 5}, {"max_block": 4}, "prune.score.max_block"),
    ({"strategy": "bi", "calibration": "fr"}, {}, "prune.plan.calibration"),
    ({"strategy": "measured", "measure": {"docs": 40}}, {}, "prune.plan.measure.docs"),
    ({"strategy": "greedy"}, {}, "evaluate.max_docs"),
    ({"strategy": "measured", "measure": {"language_weights": {"en": 1}}}, {},
     "prune.plan.measure.language_weights"),
])
def test_strategy_problems_name_the_full_key(config, plan, score, key):
    config["prune"]["plan"].update(plan)
    config["prune"]["score"].update(score)
    config["data"]["mix"]["heldout_docs"] = 40
    if key != "evaluate.max_docs":
        config["evaluate"] = {**config.get("evaluate", {}), "max_docs": 20}
    message = problems(config)
    assert f"`{key}`" in message and "Fix:" in message


@pytest.mark.parametrize("strategy, ppl", [("bi", False), ("block", False), ("ppl", True),
                                           ("measured", True), ("greedy", False)])
def test_scoring_computes_perplexity_when_the_plan_reads_it(strategy, ppl):
    prune = {"score": complete("prune.score", {}),
             "plan": complete("prune.plan", {"strategy": strategy, "n_remove": 2})}
    assert score_params(prune)["ppl"] is ppl
    prune["plan"]["metric"] = "block" if strategy == "ppl" else None
    assert score_params(prune).get("ppl_block_sizes") == ([2] if strategy == "ppl" else None)


def test_heldout_files_and_model_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="heldout"):
        heldout_files(tmp_path)
    for lang in ("zh", "en"):
        (tmp_path / f"heldout_{lang}.parquet").write_bytes(b"")
    assert list(heldout_files(tmp_path)) == ["en", "zh"]
    assert model_name("demo") == "demo base model"
    assert model_name("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"
    assert model_name("/models/SmolLM2-135M/") == "SmolLM2-135M"
