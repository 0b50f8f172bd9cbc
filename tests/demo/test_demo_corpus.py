"""The shipped demo inputs: present, parseable, reproducible, and shaped like the real data."""

from __future__ import annotations

import bz2
import gzip
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import mwparserfromhell
import opencc
import pytest

# The generator of the shipped inputs is a repository tool (config/demo/generate/), not part
# of the installed package; its modules import each other by plain name, as when its script runs.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "config" / "demo" / "generate"))

import demo_corpus as corpus  # noqa: E402
from demo_chat import slimorca_rows  # noqa: E402
from demo_en import estimate_tokens  # noqa: E402
from demo_world import TextRandom, build_world  # noqa: E402
from demo_zh import sha1_base36  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo"
NS = "{http://www.mediawiki.org/xml/export-0.11/}"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> dict:
    return corpus.write_demo_inputs(tmp_path_factory.mktemp("demo"), seed=0)


@pytest.fixture(scope="module")
def pages() -> list[dict]:
    root = ET.fromstring(bz2.decompress((DEMO / corpus.ZHWIKI).read_bytes()))
    assert root.tag == f"{NS}mediawiki" and root.get("version") == "0.11"
    out = []
    for page in root.iter(f"{NS}page"):
        rev = page.find(f"{NS}revision")
        redirect = page.find(f"{NS}redirect")
        out.append({"title": page.findtext(f"{NS}title"), "ns": int(page.findtext(f"{NS}ns")),
                    "id": int(page.findtext(f"{NS}id")),
                    "redirect": None if redirect is None else redirect.get("title"),
                    "text": rev.findtext(f"{NS}text"), "sha1": rev.findtext(f"{NS}sha1")})
    return out


def _jsonl(name: str) -> list[dict]:
    with gzip.open(DEMO / name, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_shipped_files_exist_and_are_small():
    for name in (corpus.ZHWIKI, corpus.COSMOPEDIA, corpus.SLIMORCA, *corpus.TASKS.values(),
                 corpus.SHA256SUMS, "README.md"):
        assert (DEMO / name).is_file(), f"{name} missing: run python config/demo/generate/demo_corpus.py config/demo"
    for name in (corpus.ZHWIKI, corpus.COSMOPEDIA, corpus.SLIMORCA):
        assert (DEMO / name).stat().st_size < 2_200_000


def _payload(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".bz2"):
        return bz2.decompress(data)
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def test_regenerating_gives_the_shipped_content(regenerated):
    for key in ("zhwiki", "cosmopedia", "slimorca", "tasks_en", "tasks_zh"):
        path = regenerated[key]
        assert _payload(path) == _payload(DEMO / path.name), (
            f"{path.name} differs from the generator's output: "
            "run python config/demo/generate/demo_corpus.py config/demo")


def test_regenerating_gives_the_shipped_bytes(regenerated):
    """Same content, same compressed bytes, unless this Python links another zlib/bzip2
    build (zlib-ng, say), whose output differs while staying valid; then skip, not fail."""
    for path in regenerated.values():
        if path.read_bytes() != (DEMO / path.name).read_bytes():
            if _payload(path) == _payload(DEMO / path.name) and path.name != corpus.SHA256SUMS:
                pytest.skip(f"{path.name}: same content, different compressor build")
            pytest.fail(f"{path.name} differs from the generator's output: regenerate config/demo")


def test_manifest_matches_shipped_files():
    lines = (DEMO / corpus.SHA256SUMS).read_text().splitlines()
    assert len(lines) == 5  # three corpora and the two benchmark task files
    for line in lines:
        digest, name = line.split("  ")
        assert corpus.sha256(DEMO / name) == digest


def test_another_seed_gives_another_world():
    one, zero = build_world(1), build_world(0)
    assert [t.zh for t in one.towns[:10]] != [t.zh for t in zero.towns[:10]]
    assert corpus.gzip_jsonl(slimorca_rows(one, TextRandom("1-chat"), n=50)) != corpus.gzip_jsonl(
        slimorca_rows(zero, TextRandom("0-chat"), n=50))


def test_siteinfo_is_zhwiki():
    head = bz2.decompress((DEMO / corpus.ZHWIKI).read_bytes())[:4000].decode("utf-8", "ignore")
    assert "<dbname>zhwiki</dbname>" in head
    assert "https://zh.wikipedia.org/wiki/" in head
    for key, name in [(0, ""), (1, "Talk"), (2, "User"), (4, "Wikipedia"), (6, "File"),
                      (10, "Template"), (14, "Category")]:
        assert f'<namespace key="{key}" case="first-letter"' in head and (not name or f">{name}<" in head)


def test_pages_are_plausible(pages):
    titles = [p["title"] for p in pages]
    assert len(titles) == len(set(titles))
    ids = [p["id"] for p in pages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(p["sha1"] == sha1_base36(p["text"]) for p in pages)
    assert {1, 4, 6, 10, 14} <= {p["ns"] for p in pages}
    for p in pages:
        if p["ns"]:
            assert p["title"].split(":")[0] in ("Talk", "Wikipedia", "File", "Template", "Category")


def test_dump_has_redirects_and_disambiguation(pages):
    redirects = [p for p in pages if p["redirect"]]
    assert redirects
    assert {p["text"].split()[0] for p in redirects} >= {"#REDIRECT", "#重定向"}
    titles = {p["title"] for p in pages}
    assert all(p["redirect"] in titles for p in redirects)
    assert any("{{disambig}}" in p["text"] or "__DISAMBIG__" in p["text"] for p in pages)


@pytest.mark.parametrize("markup", [
    "{{Infobox settlement", "{{Infobox person", '<ref name="census">', "<ref name=", '<ref name="bio" />',
    "{{reflist}}", "<references />", '{| class="wikitable"', "|}", "[[File:", "[[文件:", "|thumb|",
    "[[Category:", "[[分類:", "'''", "== 歷史 ==", "== 參考文獻 ==", "== 外部連結 ==", "== 參見 ==",
    "{{NoteTA|G1=", "-{zh-hans:", "<!--", "[[en:", "{{lang-en|", "=== 氣候 ===", "* [[",
])
def test_dump_has_markup(pages, markup):
    assert any(markup in p["text"] for p in pages if p["ns"] == 0)


def test_piped_links_and_protected_text(pages):
    text = "".join(p["text"] for p in pages if p["ns"] == 0)
    assert re.search(r"\[\[[^\]|]+\|[^\]]+\]\]", text)
    assert re.search(r"-\{[^:;{}]+\}-", text)  # -{text}-: protected from conversion
    assert re.search(r"(?<!')''[^']+''(?!')", text)  # italics, not bold


def _precut(text: str) -> str:
    """Cut refs, comments and tables before parsing: cheap, and it halves the parser's work."""
    text = re.sub(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>|<!--.*?-->", "", text, flags=re.S)
    return re.sub(r"^\{\|.*?^\|\}", "", text, flags=re.S | re.M)


def test_prose_is_traditional_chinese_and_long_enough(pages):
    articles = [p for p in pages if p["ns"] == 0 and not p["redirect"]]
    prose = "".join(mwparserfromhell.parse(_precut(p["text"])).strip_code() for p in articles)
    assert len(HAN.findall(prose)) >= 400_000
    sample = prose[:200_000]
    simplified = opencc.OpenCC("t2s").convert(sample)
    changed = sum(a != b for a, b in zip(sample, simplified))
    assert changed > len(HAN.findall(sample)) * 0.05
    for char in "國們這個與為區東發學體間長書實現電會經內縣鐵路灣華歷":
        assert char in prose


def test_cosmopedia_rows_have_the_schema():
    rows = _jsonl(corpus.COSMOPEDIA)
    keys = {"text", "prompt", "audience", "format", "seed_data", "token_length"}
    for row in rows:
        assert set(row) == keys
        assert all(isinstance(row[k], str) and row[k] for k in keys - {"token_length"})
        assert row["token_length"] == estimate_tokens(row["text"])
    assert sum(len(r["text"].split()) for r in rows) >= 300_000
    assert {"textbook", "blogpost", "story", "wikihow"} <= {r["format"] for r in rows}
    assert len({r["audience"] for r in rows}) >= 4
    assert len({r["text"] for r in rows}) == len(rows)


def test_slimorca_conversations_alternate():
    rows = _jsonl(corpus.SLIMORCA)
    assert len(rows) >= 1500
    multi = 0
    for row in rows:
        conv = row["conversations"]
        assert conv[0]["from"] == "system" and conv[0]["value"].startswith("You are")
        roles = [t["from"] for t in conv[1:]]
        assert roles == ["human", "gpt"] * (len(roles) // 2) and roles
        assert all(t["value"].strip() for t in conv)
        multi += len(roles) > 2
    assert 0.05 * len(rows) <= multi <= 0.2 * len(rows)


def test_arithmetic_answers_are_correct():
    ops = {"+": int.__add__, "−": int.__sub__, "×": int.__mul__, "÷": int.__floordiv__}
    checked = 0
    for row in _jsonl(corpus.SLIMORCA):
        human, gpt = row["conversations"][1]["value"], row["conversations"][2]["value"]
        m = re.fullmatch(r"(?:What is|Calculate|Solve:) (\d+) ([+−×÷]) (\d+)(?: = \?|\?|\.)", human)
        if m:
            a, op, b = int(m[1]), m[2], int(m[3])
            assert re.search(rf"\b{ops[op](a, b)}\.$", gpt), (human, gpt)
            checked += 1
    assert checked >= 50


def test_the_three_corpora_state_the_same_facts(pages):
    world = build_world(0)
    town = world.towns[0]
    article = next(p["text"] for p in pages if p["title"] == town.zh)
    assert f"{town.founded}年" in article and town.river.zh in article
    english = [r["text"] for r in _jsonl(corpus.COSMOPEDIA) if f"{town.en}, a " in r["text"][:200]
               or r["text"].startswith(f"Unit") and town.en in r["text"][:80]]
    assert any(f"founded in {town.founded}" in t or f"from {town.founded}" in t
               or f"in {town.founded}" in t for t in english)
    chats = [json.dumps(r, ensure_ascii=False) for r in _jsonl(corpus.SLIMORCA)]
    for t in world.towns:
        for c in chats:
            if f"Which river does {t.en} lie on?" in c:
                assert t.river.en in c
