"""extract_dump on the real dumps in ../shared/real-data (skipped when absent)."""

import re

import pyarrow.parquet as pq
import pytest

from secateurs.data.wiki import DumpError, extract_dump
from secateurs.data.wiki.extract import NoArticlesError
from secateurs.data.wiki.residue import find_residue

pytestmark = pytest.mark.realdata

GENSIM = "piskvorky+gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
SMALLWIKI = "spencermountain+dumpster-dive/smallwiki-latest-pages-articles.xml"
DUMPS = [GENSIM, SMALLWIKI,
         "piskvorky+gensim/enwiki-table-markup.xml.bz2",
         "piskvorky+gensim/bgwiki-latest-pages-articles-shortened.xml.bz2",
         "dbpedia+extraction-framework/minidump-zh-wiki.xml.bz2",
         "dbpedia+extraction-framework/minidump-en-wiki.xml.bz2",
         "wikipedia2vec+wikipedia2vec/enwiki-pages-articles-sample.xml.bz2"]


def extract(real_data, tmp_path, name, **kw):
    out = tmp_path / "out.parquet"
    stats = extract_dump(real_data / name, out, tmp_path / "stats.json", progress=False,
                         **{"threads": 1, **kw})
    return pq.read_table(out).to_pylist(), stats


@pytest.fixture(scope="module")
def gensim(real_data, tmp_path_factory):
    return extract(real_data, tmp_path_factory.mktemp("gensim"), GENSIM)


def test_gensim_enwiki_every_redirect_dropped(gensim):
    rows, stats = gensim
    # 206 pages: 100 redirects, 99 of them in ns 0 and one in ns 4 (dropped for its namespace)
    assert stats["pages_seen"] == 206 and stats["dropped"]["redirect"] == 99
    assert stats["dropped"]["namespace"] == 1
    assert not any(r["title"] == "AccessibleComputing" for r in rows)
    assert all(not r["text"].upper().startswith("#REDIRECT") for r in rows)
    assert stats["pages_kept"] == len(rows) > 80


def test_smallwiki_keeps_only_main_namespace(real_data, tmp_path):
    rows, stats = extract(real_data, tmp_path, SMALLWIKI)
    assert stats["language"] == "ltg" and stats["pages_seen"] == 2004
    # ns0 = 1050 pages: the rest are categories, templates, modules, project pages ...
    assert stats["dropped"]["namespace"] == 2004 - 1050
    assert stats["pages_kept"] + stats["dropped"]["redirect"] + stats["dropped"].get(
        "empty_after_cleaning", 0) == 1050
    assert not any(":" in r["title"] and r["title"].split(":")[0] in
                   ("Kategoreja", "Taiss", "Veidne", "Modulis", "Vikipedeja") for r in rows)


def test_utf16_bgwiki_read(real_data, tmp_path):
    rows, stats = extract(real_data, tmp_path, DUMPS[3])
    assert stats["language"] == "bg" and stats["pages_seen"] == 3 and len(rows) == 1
    assert sum("\u0400" <= ch <= "\u04ff" for ch in rows[0]["text"]) > 1000


def test_export_09_read(real_data, tmp_path):
    rows, stats = extract(real_data, tmp_path, DUMPS[6])
    assert [r["title"] for r in rows] == ["Computer accessibility", "Accessibility"]
    assert stats["dropped"] == {"redirect": 1}


def test_no_siteinfo_defaults_to_zh_names_and_drops_tables(real_data, tmp_path):
    rows, stats = extract(real_data, tmp_path, DUMPS[2], language="en")
    assert stats["siteinfo"] is False and len(rows) == 5
    assert sum(r["removed_tables"] for r in rows) >= 20


def test_zh_minidump_with_enwiki_siteinfo(real_data, tmp_path):
    """The siteinfo says enwiki; the zh alias [[分類:...]] is still a category."""
    rows, stats = extract(real_data, tmp_path, DUMPS[4], language="zh")
    assert rows[0]["url"] == "https://zh.wikipedia.org/wiki?curid=3472"
    text = rows[0]["text"]
    assert "分類" not in text and "联邦州" in text and "zh-hans" not in text
    assert rows[0]["removed_converter_rules"] >= 1      # {{noteTA}}


@pytest.mark.parametrize("name", DUMPS)
def test_no_markup_residue_in_any_real_dump(real_data, tmp_path, name):
    rows, _ = extract(real_data, tmp_path, name)
    hits = [(r["title"], h) for r in rows for h in find_residue(r["text"])]
    assert not hits, hits[:10]


@pytest.mark.parametrize("n,what", [(1, "no <title>"), (2, "no <ns>"), (3, "no <text>")])
def test_broken_zhwiki_page_is_skipped_and_counted(real_data, tmp_path, n, what):
    """The 3rd page (数学) lacks a field: logged, counted as bad and skipped; the first two
    (project pages, ns 4) are still read and dropped for their namespace. Upstream
    wiki-dump-reader yields nothing; here one bad page must not lose a whole dump, and a
    dump left with no article fails naming the file and why."""
    name = f"zhwiki-broken-{n}.xml"
    with pytest.raises(NoArticlesError, match=rf"{name}: no article survives.*bad_page 1, namespace 2.*{what}"
                       ) as err:
        extract(real_data, tmp_path, f"CyberZHG+wiki-dump-reader/broken/{name}")
    stats = err.value.stats
    assert stats["bad_pages"] == 1 and what.split()[1] in stats["bad_page_list"][0]["error"]
    assert stats["pages_seen"] == 3 and stats["dropped"]["namespace"] == 2
    assert not (tmp_path / "out.parquet").exists()


def test_broken_zhwiki_empty_text_is_dropped_as_empty(real_data, tmp_path):
    with pytest.raises(NoArticlesError, match="empty 1") as err:
        extract(real_data, tmp_path, "CyberZHG+wiki-dump-reader/broken/zhwiki-broken-4.xml")
    assert err.value.stats["dropped"].get("empty") == 1 and err.value.stats["bad_pages"] == 0


def test_gensim_dump_truncated_copy_fails_cleanly(real_data, tmp_path):
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes((real_data / GENSIM).read_bytes()[:400_000])
    with pytest.raises(DumpError, match="cut.xml.bz2"):
        extract_dump(cut, tmp_path / "o.parquet", tmp_path / "s.json", threads=1, progress=False)
    assert not (tmp_path / "o.parquet").exists()


# --- issue 13 ---------------------------------------------------------------------------

ENMINI = "dbpedia+extraction-framework/minidump-en-wiki.xml.bz2"


def test_real_blockquote_paragraph_is_kept(real_data, tmp_path):
    """Angela Merkel's article quotes The Economist in {{Blockquote|...}}: prose, kept."""
    rows, _ = extract(real_data, tmp_path, ENMINI)
    merkel = next(r["text"] for r in rows if r["title"] == "Angela Merkel")
    assert "If Mrs Merkel's vision is pragmatic, so too is her plan for implementing it." in merkel


@pytest.mark.parametrize("name", [GENSIM, ENMINI])
def test_real_appendix_sections_counted_per_title(real_data, tmp_path, name):
    rows, stats = extract(real_data, tmp_path, name)
    dropped = stats["sections_dropped"]
    assert dropped["references"] > 10 and dropped["external links"] > 10
    assert sum(dropped.values()) == stats["removed"]["sections"]


@pytest.mark.parametrize("name", DUMPS)
def test_no_line_starts_with_punctuation_in_any_real_dump(real_data, tmp_path, name):
    rows, _ = extract(real_data, tmp_path, name)
    starts = [(r["title"], line[:30]) for r in rows for line in r["text"].split("\n")
              if line.startswith(("。", "，", "、", ",", ";"))]
    assert not starts, starts[:10]


def test_real_siteinfo_response_is_not_a_dump(real_data, tmp_path):
    from secateurs.data.wiki.dump import NotADumpError
    with pytest.raises(NotADumpError, match="zhwiki-configuration.xml: not a MediaWiki export.*<api>"):
        extract(real_data, tmp_path, "dbpedia+extraction-framework/zhwiki-configuration.xml")


def test_zh_minidump_in_enwiki_header_warns_when_language_unset(real_data, tmp_path):
    rows, stats = extract(real_data, tmp_path, DUMPS[4])
    assert "siteinfo says language 'en'" in stats["language_warning"]


def test_gensim_dump_truncated_copy_keeps_complete_pages_when_accepted(real_data, tmp_path):
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes((real_data / GENSIM).read_bytes()[:400_000])
    with pytest.raises(DumpError, match=r"after (\d+) complete pages.*accept_unterminated") as err:
        extract_dump(cut, tmp_path / "o.parquet", tmp_path / "s.json", threads=1, progress=False)
    pages = int(re.search(r"after (\d+) complete pages", str(err.value)).group(1))
    stats = extract_dump(cut, tmp_path / "o.parquet", tmp_path / "s.json", threads=1, progress=False,
                         accept_unterminated=True)
    assert stats["pages_seen"] == stats["unterminated"]["pages"] == pages > 0
    assert pq.read_table(tmp_path / "o.parquet").num_rows == stats["pages_kept"] > 0
