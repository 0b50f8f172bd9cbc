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


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal without CUDA")
def test_a_gpu_recipe_run_on_a_machine_without_cuda_stops_before_any_job(tmp_path):
    """AEZAKMI's QLoRA, 8-bit AdamW and flash attention cannot run here: the run stops when it
    starts, naming the keys and the fix, before any job (so before the 69 GB download), though
    its chat_sft asks for a GPU; its dry run above plans the same DAG without complaint."""
    result = snakemake(tmp_path, "--cores", "1", over_demo=False, check=False,
                       configfiles=(REPO / "config" / "recipes" / "aezakmi-qlora.yaml",), timeout=300)
    assert result.returncode != 0
    assert "`chat.method: qlora`" in result.stderr and "need a CUDA GPU" in result.stderr
    assert "Fix: run on a CUDA machine" in result.stderr
    assert not any(line.startswith(("rule ", "localrule ")) for line in result.stderr.splitlines())
    assert not (tmp_path / "results").exists()


def test_real_data_recipe_plans_the_teacher_cache(tmp_path, real_data, smollm2_gguf):
    """smollm2-135m-real reads ../shared/real-data (beside the checkout) and SmolLM2's GGUF:
    it plans the text sources, one teacher cache and healing from it, and no chat stage."""
    source = tmp_path / "source.yaml"
    source.write_text(f"base_model: {{source: {smollm2_gguf}}}\n")
    result = snakemake(tmp_path, "--dry-run", over_demo=False,
                       configfiles=(REPO / "config" / "recipes" / "smollm2-135m-real.yaml", source))
    jobs = planned_jobs(result.stdout)
    assert {"wiki_extract", "text_sample", "teacher_logits", "heal", "report"} <= set(jobs), jobs
    assert jobs["teacher_logits"] == 1 and "chat_sft" not in jobs
