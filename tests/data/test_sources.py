"""data.sources in the config: a source of an unknown kind or in a language whose script
is unknown stops the workflow before any job, naming the key and the fix."""

from __future__ import annotations

import copy

import pytest
import yaml

from secateurs.data.sources import check_sources, convert_settings, text_settings
from workflow import REPO, snakemake


@pytest.fixture()
def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("change, expected", [
    (lambda s: s["zhwiki-demo"].update(language="xx"),
     ["`data.sources.zhwiki-demo.language` = 'xx'", "data.scripts: {xx: [Latin]}"]),
    (lambda s: s["cosmopedia"].update(kind="csv"),
     ["`data.sources.cosmopedia.kind` = 'csv' is not allowed", "Fix: use one of ['wiki', 'text']"]),
])
def test_snakemake_stops_before_any_job(tmp_path, demo_config, change, expected):
    bad = copy.deepcopy(demo_config)
    change(bad["data"]["sources"])
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad, allow_unicode=True))
    result = snakemake(tmp_path / "work", "--dry-run", configfiles=(tmp_path / "bad.yaml",),
                       check=False, over_demo=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for text in expected:
        assert text in output
    assert not (tmp_path / "work" / "results").exists()


def _data(**sources) -> dict:
    source = {"kind": "wiki", "weight": 1, "path": "x.xml", "opencc": None, "min_chars": 0,
              "min_script_share": 0.3, "dedup": True, "variant": "zh-hans",
              "keep_headings": False, "threads": 2}
    return {"sources": {n: {**source, **s} for n, s in sources.items()}, "scripts": {}}


def test_a_configured_script_makes_a_language_known():
    data = _data(ltg={"language": "ltg"}, xx={"language": "xx"})
    assert [p for p in check_sources(data, demo=False) if "`data.sources.xx.language`" in p]
    data["scripts"] = {"xx": ["Cyrillic"]}
    assert check_sources(data, demo=False) == []
    assert convert_settings(data, "xx")["scripts"] == ["Cyrillic"]
    assert convert_settings(data, "ltg") == {"profile": None, "min_chars": 0,
                                             "min_script_share": 0.3, "dedup": True,
                                             "scripts": ["Latin"]}
    data["sources"]["ltg"]["token_budget"] = 1000
    assert "`data.sources.ltg.token_budget` = 1000 is read only by text sources" in \
        check_sources(data, demo=False)[0]
    del data["sources"]["ltg"]["token_budget"]
    data["scripts"] = {"xx": ["Klingon"]}
    assert "`data.scripts.xx` names unknown script(s) ['Klingon']" in check_sources(data, demo=False)[0]


def test_demo_text_source_needs_a_length_column_or_no_budget():
    text = {"kind": "text", "language": "es", "token_budget": 1000, "length_column": None,
            "seed": 0, "subsets": None, "config": None, "split": "train", "text_column": "text",
            "shuffle_buffer": 10}
    data = _data(es=text)
    assert "`data.sources.es.length_column` is null" in check_sources(data, demo=True)[0]
    assert check_sources(data, demo=False) == []
    assert text_settings(data, "es")["token_budget"] == 1000


def test_falcon2_recipe_is_spanish_from_a_fresh_clone(tmp_path):
    """The Falcon2 recipe dry-runs with nothing downloaded: one Spanish text source, no wiki
    extraction, the card's slice as a manual plan with scoring beside it, and Spanish
    lm-eval tasks that lm-eval has."""
    recipe = REPO / "config" / "recipes" / "falcon2-5.5b.yaml"
    result = snakemake(tmp_path, "--dry-run", configfiles=(recipe,), over_demo=False)
    from workflow import planned_jobs

    jobs = planned_jobs(result.stdout)
    assert jobs["text_sample"] == 1 and jobs["score_layers"] == 1 and "wiki_extract" not in jobs
    config = yaml.safe_load(recipe.read_text())
    (source,) = config["data"]["sources"].values()
    assert source["language"] == "es" and source["config"] == "20231101.es"
    assert source["token_budget"] >= config["heal"]["token_budget"] == 1_000_000_000
    assert config["prune"]["plan"]["slices"] == [[0, 24], [55, 59]]
    assert config["prune"]["score"]["num_samples"] == 2000

    import lm_eval
    from pathlib import Path

    task_files = Path(lm_eval.__file__).parent / "tasks"
    for task in config["evaluate"]["tasks"]:
        assert any(f"task: {task['name']}\n" in p.read_text(encoding="utf-8", errors="ignore")
                   for p in task_files.rglob(f"*{task['name'].split('_')[-1]}*.yaml")), task
