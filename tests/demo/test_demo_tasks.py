"""The demo's own benchmark tasks: well-formed, bilingual, correct, and never training text."""

from __future__ import annotations

import bz2
import gzip
import json
import sys
from pathlib import Path

import opencc
import pytest

from secateurs.evaluate.task_files import DEMO_TASKS

# The generator of the shipped inputs is a repository tool (config/demo/generate/), not part
# of the installed package; its modules import each other by plain name, as when its script runs.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "config" / "demo" / "generate"))

import demo_corpus as corpus  # noqa: E402
from demo_tasks import task_items  # noqa: E402
from demo_world import build_world  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo"


def shipped(lang: str) -> list[dict]:
    with open(DEMO / corpus.TASKS[lang], encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_file_names_agree_with_the_task_table():
    assert sorted(corpus.TASKS.values()) == sorted(DEMO_TASKS.values())


def test_items_are_well_formed_and_aligned_across_languages():
    en, zh = shipped("en"), shipped("zh")
    assert len(en) == len(zh) == 200
    assert len({r["question"] for r in en}) == 200  # no question asked twice
    for a, b in zip(en, zh):
        assert a["id"] == b["id"] and a["answer"] == b["answer"]
        assert len(a["choices"]) == len(set(a["choices"])) == 4
        assert len(set(b["choices"])) == 4 and 0 <= a["answer"] < 4
    positions = [r["answer"] for r in en]
    assert min(positions.count(i) for i in range(4)) > 30  # the answer is not always first
    simplified = opencc.OpenCC("t2s")
    assert all(simplified.convert(r["question"]) == r["question"] for r in zh)


def test_answers_are_the_worlds_facts():
    world = build_world(0)
    by_name = {t.en: t for t in world.towns}
    for row in shipped("en"):
        if row["relation"] == "town_province":
            town = by_name[row["question"].removeprefix("In which province is ").rstrip("?")]
            assert row["choices"][row["answer"]] == town.province.en
        if row["relation"] == "town_river":
            town = by_name[row["question"].removeprefix("On which river does ").removesuffix(" lie?")]
            assert row["choices"][row["answer"]] == town.river.en


def test_generation_is_deterministic():
    world = build_world(0)
    assert task_items(world, 0) == task_items(build_world(0), 0)
    assert task_items(world, 0)["en"] == shipped("en")
    assert task_items(world, 1)["en"] != shipped("en")


@pytest.fixture(scope="module")
def corpus_text() -> str:
    """Every demo input as text, Chinese also in Simplified script (as training sees it)."""
    dump = bz2.decompress((DEMO / corpus.ZHWIKI).read_bytes()).decode("utf-8")
    parts = [dump, opencc.OpenCC("t2s").convert(dump)]
    for name in (corpus.COSMOPEDIA, corpus.SLIMORCA):
        with gzip.open(DEMO / name, "rt", encoding="utf-8") as handle:
            parts.append(handle.read())
    return "\n".join(parts)


def test_no_item_is_training_text(corpus_text):
    """The questions (and question plus answer) never occur verbatim in any demo input,
    the chat data included; the facts they ask about do, which is the point."""
    for lang in ("en", "zh"):
        for row in shipped(lang):
            assert row["question"] not in corpus_text, row
            answer = row["choices"][row["answer"]]
            assert f"{row['question']} {answer}" not in corpus_text
            assert answer in corpus_text  # the fact is taught somewhere
