"""extract_dump end to end on dumps written in the test: every container and layout."""

import bz2
import json

import pyarrow.parquet as pq
import pytest

from secateurs.data.wiki import DumpError, extract_dump
from secateurs.data.wiki.extract import SCHEMA
from secateurs.data.wiki.residue import find_residue
from secateurs.data.wiki.synthetic import write_dump, write_multistream

ARTICLE = ("{{NoteTA|G1=地名}}\n'''柏林'''（{{lang-de|Berlin}}）是[[德國]]首都<ref>{{cite web|url=x}}</ref>，"
           "也是德國最大的-{zh-hans:城市;zh-hant:都市}-。\n[[File:B.jpg|thumb|[[柏林]]]]\n"
           "[[Category:德國城市]]\n== 參考文獻 ==\n{{reflist}}")
PAGES = [
    ("柏林", 0, 1, ARTICLE),
    ("柏林市", 0, 2, "#重定向 [[柏林]]"),
    ("Berlin", 0, 3, "#REDIRECT [[柏林]]", "柏林"),
    ("柏林 (消歧义)", 0, 4, "'''柏林'''可以指：\n* [[柏林]]\n{{disambig}}"),
    ("汉堡", 0, 5, "'''汉堡'''是德国城市。\n__消除歧义__"),
    ("Template:Infobox", 10, 6, "{{{1}}}"),
    ("Category:德國城市", 14, 7, "德國城市"),
    ("数学", 0, 8, "'''数学'''是研究数量、结构以及空间等概念的一门学科。"),
]


def rows(path):
    return pq.read_table(path).to_pylist()


def run(tmp_path, dump, **kw):
    out, stats = tmp_path / "out.parquet", tmp_path / "stats.json"
    result = extract_dump(dump, out, stats, progress=False, **{"threads": 1, **kw})
    assert json.loads(stats.read_text()) == result
    return rows(out), result


def test_keeps_only_main_namespace_articles(tmp_path):
    dump = write_dump(PAGES, tmp_path / "zhwiki.xml.bz2")
    out, stats = run(tmp_path, dump)
    assert [r["title"] for r in out] == ["柏林", "数学"]
    assert out[0]["text"] == "柏林（Berlin）是德國首都，也是德國最大的城市。"
    assert out[0]["url"] == "https://zh.wikipedia.org/wiki?curid=1"
    assert out[0]["removed_refs"] == 1 and out[0]["removed_files"] == 1
    assert out[0]["removed_categories"] == 1 and out[0]["removed_sections"] == 1
    assert stats["pages_seen"] == 8 and stats["pages_kept"] == 2
    assert stats["dropped"] == {"redirect": 2, "disambiguation": 2, "namespace": 2}
    assert stats["language"] == "zh"
    assert pq.read_schema(tmp_path / "out.parquet").equals(SCHEMA, check_metadata=False)


@pytest.mark.parametrize("schema", ["0.9", "0.10", "0.11"])
@pytest.mark.parametrize("name,encoding,siteinfo", [
    ("d.xml", "utf-8", True), ("d.xml.bz2", "utf-8", False), ("d.xml.bz2", "utf-16", True)])
def test_every_container_reads_the_same(tmp_path, schema, name, encoding, siteinfo):
    dump = write_dump(PAGES, tmp_path / name, schema=schema, encoding=encoding, siteinfo=siteinfo)
    out, stats = run(tmp_path, dump)
    assert [r["id"] for r in out] == [1, 8]
    assert stats["siteinfo"] is siteinfo and stats["language"] == "zh"


def test_language_from_siteinfo_and_override(tmp_path):
    dump = write_dump([("Berlin", 0, 1, "'''Berlin''' is a city. [[Kategorie:X]]")],
                      tmp_path / "d.xml", lang="de")
    out, stats = run(tmp_path, dump)
    assert stats["language"] == "de" and out[0]["url"].startswith("https://de.wikipedia.org/")
    out, stats = run(tmp_path, dump, language="en")
    assert stats["language"] == "en" and out[0]["url"].startswith("https://en.wikipedia.org/")


def test_truncated_bz2_names_file_and_offset_and_writes_nothing(tmp_path):
    dump = write_dump(PAGES * 50, tmp_path / "d.xml.bz2")
    data = dump.read_bytes()
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DumpError, match=r"cut\.xml\.bz2.*byte offset \d+") as e:
        run(tmp_path, cut)
    assert 0 < e.value.offset <= len(data) // 2
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "stats.json").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_truncated_xml_is_an_error(tmp_path):
    dump = write_dump(PAGES, tmp_path / "d.xml")
    text = dump.read_text(encoding="utf-8")
    (tmp_path / "cut.xml").write_text(text[: text.index("<title>数学")], encoding="utf-8")
    with pytest.raises(DumpError, match="cut.xml"):
        run(tmp_path, tmp_path / "cut.xml")
    assert not (tmp_path / "out.parquet").exists()


def test_bad_page_logged_counted_and_skipped(tmp_path, caplog):
    dump = write_dump(PAGES, tmp_path / "d.xml")
    text = dump.read_text(encoding="utf-8").replace("<ns>0</ns>\n    <id>8</id>", "<id>8</id>")
    dump.write_text(text, encoding="utf-8")
    out, stats = run(tmp_path, dump)
    assert [r["id"] for r in out] == [1]
    assert stats["bad_pages"] == 1 and stats["dropped"]["bad_page"] == 1
    assert stats["bad_page_list"][0]["title"] == "数学"
    assert "数学" in caplog.text


def test_multistream_with_index_matches_serial_at_two_processes(tmp_path):
    pages = [(f"条目{i}", 0 if i % 5 else 4, i, ARTICLE) for i in range(1, 260)]
    plain = write_dump(pages, tmp_path / "plain.xml.bz2")
    multi, index = write_multistream(pages, tmp_path / "zhwiki-multistream.xml.bz2",
                                     pages_per_stream=20)
    serial, s1 = run(tmp_path, plain)
    (tmp_path / "out.parquet").unlink()
    parallel, s2 = run(tmp_path, multi, threads=2)
    assert s2["multistream_index"] == str(index)
    assert parallel == serial and len(serial) == 208
    assert s1["dropped"] == s2["dropped"] == {"namespace": 51}
    threaded, _ = run(tmp_path, plain, threads=2)
    assert threaded == serial
    assert all(not find_residue(r["text"]) for r in serial)


def test_multistream_index_lines_are_checked(tmp_path):
    multi, index = write_multistream(PAGES, tmp_path / "x-multistream.xml.bz2")
    with bz2.open(index, "wt") as f:
        f.write("garbage line\n")
    with pytest.raises(ValueError, match="byte offset"):
        run(tmp_path, multi)


def test_corrupt_stream_in_a_worker_is_reported_by_the_parent(tmp_path):
    pages = [(f"条目{i}", 0, i, ARTICLE) for i in range(1, 200)]
    multi, _ = write_multistream(pages, tmp_path / "zhwiki-multistream.xml.bz2", pages_per_stream=10)
    data = bytearray(multi.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\x00" * 64
    multi.write_bytes(bytes(data))
    with pytest.raises(DumpError, match="zhwiki-multistream.xml.bz2") as e:
        run(tmp_path, multi, threads=2)
    assert e.value.offset > 0
    assert not (tmp_path / "out.parquet").exists()


def test_demo_dump_extracts_without_residue(tmp_path):
    from pathlib import Path
    demo = Path(__file__).resolve().parents[2] / "config/demo/zhwiki-demo-pages-articles.xml.bz2"
    if not demo.exists():
        pytest.skip("the demo dump has not been generated")
    out, stats = run(tmp_path, demo)
    assert stats["language"] == "zh" and stats["pages_kept"] > 100
    for reason in ("redirect", "disambiguation", "namespace"):
        assert stats["dropped"][reason] > 0
    hits = [(r["title"], h) for r in out for h in find_residue(r["text"])]
    assert not hits, hits[:5]
    assert not any("分類" in r["text"] or "Category:" in r["text"] for r in out)


def test_truncated_dump_read_by_the_threaded_reader(tmp_path):
    dump = write_dump(PAGES * 80, tmp_path / "d.xml.bz2")
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(dump.read_bytes()[:-200])
    with pytest.raises(DumpError, match="cut.xml.bz2"):
        run(tmp_path, cut, threads=2)
    assert not (tmp_path / "out.parquet").exists()


def test_progress_bar_counts_pages_and_megabytes(tmp_path, capsys):
    dump = write_dump(PAGES * 20, tmp_path / "d.xml.bz2")
    extract_dump(dump, tmp_path / "o.parquet", tmp_path / "s.json", threads=1, progress=True)
    err = capsys.readouterr().err
    assert "MB" in err and "pages=160" in err and "kept=40" in err


def test_unknown_variant_is_a_clear_error(tmp_path):
    dump = write_dump(PAGES, tmp_path / "d.xml")
    with pytest.raises(ValueError, match="unknown zh variant 'zh-xx'.*zh-hant"):
        run(tmp_path, dump, variant="zh-xx")


def test_gzip_dump(tmp_path):
    import gzip
    plain = write_dump(PAGES, tmp_path / "d.xml")
    gz = tmp_path / "d.xml.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    out, _ = run(tmp_path, gz)
    assert [r["id"] for r in out] == [1, 8]


# --- issue 13: inputs that are not what they seem ------------------------------------------

def test_bare_page_fragment_is_a_one_page_dump(tmp_path):
    from secateurs.data.wiki.synthetic import page_xml
    fragment = tmp_path / "page.xml"
    fragment.write_text('<?xml version="1.0"?>\n' + page_xml(*PAGES[7]), encoding="utf-8")
    out, stats = run(tmp_path, fragment, language="zh")
    assert [r["title"] for r in out] == ["数学"] and stats["siteinfo"] is False


def test_xml_that_is_no_mediawiki_export_fails_naming_it(tmp_path):
    from secateurs.data.wiki.dump import NotADumpError
    api = tmp_path / "api.xml"
    api.write_text('<?xml version="1.0"?><api><query><general sitename="x"/></query></api>')
    with pytest.raises(NotADumpError, match=r"api\.xml: not a MediaWiki export.*<api>"):
        run(tmp_path, api)
    assert not (tmp_path / "out.parquet").exists()


def test_dump_without_articles_fails_naming_file_and_reasons(tmp_path):
    from secateurs.data.wiki.extract import NoArticlesError
    redirects = write_dump([p for p in PAGES if p[3].startswith("#")], tmp_path / "r.xml")
    with pytest.raises(NoArticlesError, match=r"r\.xml: no article survives.*redirect 2"):
        run(tmp_path, redirects)
    empty = write_dump([], tmp_path / "e.xml")
    with pytest.raises(NoArticlesError, match="holds no <page> at all"):
        run(tmp_path, empty)
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "stats.json").exists()


@pytest.mark.parametrize("name", ["cut.xml", "cut.xml.bz2"])
def test_unterminated_dump_stops_unless_accepted(tmp_path, name):
    """An interrupted download: the error says how many complete pages were read and which
    switch keeps them; with the switch they are kept and the stats say so."""
    full = write_dump(PAGES * 200, tmp_path / "full.xml").read_bytes()
    if name.endswith(".bz2"):                 # 100 kB blocks: the first ones decompress
        packed = bz2.compress(full, 1)
        (tmp_path / name).write_bytes(packed[: len(packed) * 6 // 10])
    else:
        (tmp_path / name).write_bytes(full[: full.index(b"<page>", len(full) // 2)])
    with pytest.raises(DumpError, match=r"after \d+ complete pages.*accept_unterminated: true"):
        run(tmp_path, tmp_path / name)
    out, stats = run(tmp_path, tmp_path / name, accept_unterminated=True)
    assert stats["unterminated"]["pages"] == stats["pages_seen"] > 0
    assert [r["id"] for r in out][:2] == [1, 8]


def test_siteinfo_language_that_disagrees_with_the_text_warns(tmp_path, caplog):
    dump = write_dump(PAGES, tmp_path / "d.xml", lang="en")      # zh pages, enwiki header
    out, stats = run(tmp_path, dump)
    assert "mostly in han script" in stats["language_warning"] and "data.wiki.language" in caplog.text
    out, stats = run(tmp_path, dump, language="zh")
    assert "language_warning" not in stats and out[0]["url"].startswith("https://zh.wikipedia.org/")
