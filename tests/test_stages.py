"""Stages a recipe can skip: the models a run makes, where each stage starts, the DAG."""

from __future__ import annotations

import pytest
import torch
import yaml

from secateurs.config import ConfigError, input_model, run_models, validate_config
from secateurs.settings import complete_config
from workflow import REPO, planned_jobs, snakemake

SCHEMA = REPO / "secateurs" / "schema.yaml"


@pytest.fixture()
def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def skipping(*stages: str) -> dict:
    return {stage: {"enabled": False} for stage in stages}


@pytest.mark.parametrize("skipped, models, heal_from, chat_from", [
    ((), ["base", "pruned", "healed", "chat"], "pruned", "healed"),
    (("prune",), ["base", "healed", "chat"], "base", "healed"),
    (("heal",), ["base", "pruned", "chat"], "pruned", "pruned"),
    (("prune", "heal"), ["base", "chat"], "base", "base"),
    (("chat",), ["base", "pruned", "healed"], "pruned", "healed"),
])
def test_models_and_stage_inputs(demo_config, skipped, models, heal_from, chat_from):
    for stage in skipped:
        demo_config[stage]["enabled"] = False
    config = complete_config(demo_config)
    assert run_models(config) == models
    assert input_model(config, "heal") == heal_from
    assert input_model(config, "chat") == chat_from


def test_chat_only_config_needs_no_plan_and_no_healing(demo_config):
    del demo_config["prune"]["plan"]
    demo_config.update(prune={"enabled": False}, heal={"enabled": False})
    validate_config(demo_config, SCHEMA, basedir=REPO)


def test_disabled_chat_needs_no_data(demo_config):
    demo_config["chat"] = {"enabled": False}
    validate_config(demo_config, SCHEMA, basedir=REPO)


def test_distillation_without_pruning_is_refused(demo_config):
    demo_config["prune"]["enabled"] = False
    demo_config["heal"]["distill"] = {"enabled": True}
    with pytest.raises(ConfigError, match="heal.distill.enabled"):
        validate_config(demo_config, SCHEMA, basedir=REPO)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_bitsandbytes_settings_refused_before_any_job_without_gpu(demo_config):
    """Refused when the run starts (the Snakefile's onstart; parsing, which dry runs do too,
    accepts them), locally whatever resources.chat_sft.gpu says (issue 21); on a cluster a
    rule given GPUs is accepted (secateurs.train.hardware)."""
    from secateurs.config import check_machine
    from secateurs.settings import complete_config

    demo_config["chat"].update(method="qlora", optimizer="adamw_bnb_8bit")
    validate_config(demo_config, SCHEMA, basedir=REPO)
    demo_config["resources"] = {"chat_sft": {"gpu": 1}}
    with pytest.raises(ConfigError, match=r"chat.method: qlora`, `chat.optimizer: adamw_bnb_8bit`.*CUDA"):
        check_machine(complete_config(demo_config), local=True)
    check_machine(complete_config(demo_config), local=False)  # a cluster GPU node: accepted


@pytest.mark.parametrize("skipped, absent, evaluations", [
    (("prune",), {"score_layers", "plan_pruning", "slice_model"}, 3),
    (("prune", "heal"), {"score_layers", "plan_pruning", "slice_model", "heal"}, 2),
    (("chat",), {"chat_data", "chat_sft"}, 3),
])
def test_dry_run_plans_only_the_stages_that_run(tmp_path, skipped, absent, evaluations):
    layered = tmp_path / "skip.yaml"
    layered.write_text(yaml.safe_dump(skipping(*skipped)))
    jobs = planned_jobs(snakemake(tmp_path / "work", "--dry-run", configfiles=(layered,)).stdout)
    assert not absent & set(jobs)
    assert jobs["evaluate"] == evaluations and jobs["report"] == 1


def test_a_cache_of_the_whole_vocabulary_is_refused(demo_config):
    """Cached distillation keeps a top-k; `top_k: null` only works online (issue 20)."""
    demo_config["heal"]["distill"] = {"enabled": True, "mode": "cached", "top_k": None}
    with pytest.raises(ConfigError, match="heal.distill.top_k.*mode: online"):
        validate_config(demo_config, SCHEMA, basedir=REPO)
    demo_config["heal"]["distill"]["mode"] = "online"
    validate_config(demo_config, SCHEMA, basedir=REPO)
