"""Every reference recipe plans its whole DAG from a fresh clone: no file to download
first, nothing refused by the checks that run before any job. A recipe replaces the demo
config whole, as a user runs it (`--configfile config/recipes/X.yaml`)."""

from __future__ import annotations

import pytest

from workflow import REPO, planned_jobs, snakemake

RECIPES = {
    # recipe: the rules it must plan (a stage it skips plans nothing)
    "pruned-yi": {"score_layers", "plan_pruning", "slice_model", "heal", "chat_sft", "report"},
    "falcon2-5.5b": {"score_layers", "plan_pruning", "slice_model", "heal", "chat_sft", "report"},
    "yayi-sft": {"chat_sft", "report"},
    "aezakmi-qlora": {"chat_sft", "report"},
}


@pytest.mark.parametrize("recipe", RECIPES)
def test_reference_recipe_dry_runs(tmp_path, recipe):
    result = snakemake(tmp_path, "--dry-run", over_demo=False,
                       configfiles=(REPO / "config" / "recipes" / f"{recipe}.yaml",))
    jobs = planned_jobs(result.stdout)
    assert RECIPES[recipe] <= set(jobs), jobs
    if recipe in ("yayi-sft", "aezakmi-qlora"):  # chat only: no pruning, no healing
        assert not {"score_layers", "slice_model", "heal"} & set(jobs)
