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
              "keep_headings": False, "threads": 1}
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
