"""Snakemake's between-workflow output cache (`--cache`, $SNAKEMAKE_OUTPUT_CACHE) reuses
the scoring and the sliced model of one workdir in another.

Two workdirs start as copies of the completed demo run (the `demo_run` fixture) without
its pruning outputs. The first recomputes scoring, plan and slice with `--cache` and so
stores the scores and the sliced model in the cache; the second asks for the same outputs
and gets them from the cache: the dry run says so, the scoring and slicing scripts never
run (no log), only the uncached plan is recomputed, and the outputs are the cache's files.
Rules opt in with `cache: cached_when_enabled()` (rules/common.smk).
"""

from __future__ import annotations

import json
import shutil

import pytest

from workflow import QUICK, copy_run, snakemake

pytestmark = pytest.mark.slow

TARGET = "results/models/pruned"
CACHED = ("results/prune/scores.json", "results/models/pruned")
REMOVED = ("results/prune", "results/models/pruned", "logs/score_layers", "logs/plan_pruning",
           "logs/slice_model")


def workdir_without_pruning(demo_run, dest):
    copy_run(demo_run, dest)
    for path in REMOVED:
        shutil.rmtree(dest / path)
    return dest


@pytest.fixture(scope="module")
def two_runs(demo_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    cache = root / "cache"
    cache.mkdir()
    first = workdir_without_pruning(demo_run, root / "first")
    second = workdir_without_pruning(demo_run, root / "second")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SNAKEMAKE_OUTPUT_CACHE", str(cache))
        ran = snakemake(first, "--cache", "--", TARGET, configfiles=(QUICK,))
        planned = snakemake(second, "--cache", "--dry-run", "--", TARGET, configfiles=(QUICK,))
        reused = snakemake(second, "--cache", "--", TARGET, configfiles=(QUICK,))
    logs = {name: run.stdout + run.stderr for name, run in
            (("first", ran), ("planned", planned), ("second", reused))}
    return cache, first, second, logs


def test_first_run_computes_and_stores(two_runs):
    cache, first, _, logs = two_runs
    for output in CACHED:
        assert f"Moving output file {output} to cache." in logs["first"]
        assert (first / output).resolve().is_relative_to(cache)


def test_second_dry_run_plans_to_take_scoring_and_slicing_from_cache(two_runs):
    _, _, _, logs = two_runs
    for output in CACHED:
        assert (f"Output file {output} will be obtained from global between-workflow cache."
                in logs["planned"])


def test_second_run_reuses_scoring_and_slicing(two_runs):
    cache, first, second, logs = two_runs
    assert "Moving output file" not in logs["second"]
    # the scripts never ran: Snakemake creates each job's log file, the script fills it
    for log in ("score_layers/score.log", "slice_model/slice.log"):
        assert (first / "logs" / log).stat().st_size > 0
        assert (second / "logs" / log).stat().st_size == 0, f"{log}: the job ran again"
    assert (second / "logs" / "plan_pruning" / "plan.log").stat().st_size > 0  # not cached
    scores = second / "results" / "prune" / "scores.json"
    assert scores.is_symlink() and scores.resolve() == (first / CACHED[0]).resolve()
    sliced = second / "results" / "models" / "pruned"
    entries = [p for p in sliced.iterdir() if p.name != ".snakemake_timestamp"]
    assert entries and all(p.resolve().is_relative_to(cache) for p in entries)
    plans = [json.loads((work / "results" / "prune" / "plan.json").read_text())
             for work in (first, second)]
    for plan in plans:
        plan.pop("source_model")  # the workdir's own base model path
    assert plans[0] == plans[1]
