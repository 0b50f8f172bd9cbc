"""convert_articles: OpenCC conversion and the quality filters, with their counts."""

import json

import pyarrow.parquet as pq
import pytest

from secateurs.data.convert import ConvertError, convert_articles, cjk_share, normalized_hash
from secateurs.data.writing import expected_scripts, script_share
from secateurs.io import write_parquet
from secateurs.data.wiki.extract import SCHEMA

LONG_T = "柏林是德國的首都，也是德國最大的城市。軟體與記憶體產業發達。" * 4
LONG_S = "柏林是德国的首都，也是德国最大的城市。软体与记忆体产业发达。" * 4


ZH = {"profile": "t2s", "min_chars": 200, "min_script_share": 0.3, "scripts": ["Han"],
      "dedup": True}


def article(i, title, text):
    row = {"id": i, "title": title, "url": f"https://zh.wikipedia.org/wiki?curid={i}", "text": text}
    row.update({f: 0 for f in SCHEMA.names if f.startswith("removed_")})
    return row


@pytest.fixture
def extracts(tmp_path):
    a = tmp_path / "a.parquet"
    b = tmp_path / "b.parquet"
    write_parquet([article(1, "柏林", LONG_T), article(2, "短", "太短了。"),
                   article(3, "List", "A B C D E " * 40 + "一二")], a, schema=SCHEMA)
    write_parquet([article(4, "柏林 (副本)", LONG_S.replace("，", " ， ")),
                   article(5, "數學", "數學是研究數量、結構以及空間等概念的一門學科。" * 10)], b, schema=SCHEMA)
    return [a, b]


def test_convert_and_filter(tmp_path, extracts):
    out, stats_path = tmp_path / "zh.parquet", tmp_path / "zh.json"
    stats = convert_articles(extracts, out, stats_path, **{**ZH, "min_chars": 50})
    rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == [1, 5]
    assert rows[0]["text"] == LONG_S and rows[1]["title"] == "数学"
    assert stats["dropped"] == {"too_short": 1, "low_script_share": 1, "duplicate": 1}
    assert stats["rows_in"] == 5 and stats["rows_out"] == 2
    assert json.loads(stats_path.read_text()) == stats
    assert pq.read_schema(out).names == SCHEMA.names


def test_profiles_with_or_without_json_and_no_dedup(tmp_path, extracts):
    stats = convert_articles(extracts, tmp_path / "o.parquet", tmp_path / "o.json",
                             profile="s2twp.json", min_chars=0, min_script_share=0,
                             scripts=["Han"], dedup=False)
    assert stats["rows_out"] == 5 and stats["dropped"] == {}
    rows = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert "軟體" in rows[3]["text"]                      # s2twp: 软体 -> 軟體 (Taiwan phrase)


def test_unknown_profile_is_a_clear_error(tmp_path, extracts):
    with pytest.raises(ConvertError, match="unknown OpenCC profile 'x2y'.*t2s"):
        convert_articles(extracts, tmp_path / "o.parquet", tmp_path / "o.json",
                         **{**ZH, "profile": "x2y"})
    assert not (tmp_path / "o.parquet").exists()


def test_missing_column_names_file(tmp_path):
    bad = tmp_path / "bad.parquet"
    write_parquet([{"id": 1, "text": "x"}], bad)
    with pytest.raises(ConvertError, match="bad.parquet.*title"):
        convert_articles([bad], tmp_path / "o.parquet", tmp_path / "o.json", **ZH)


def test_helpers():
    assert cjk_share("中文 ab") == pytest.approx(0.5)
    assert cjk_share("") == 0.0
    assert normalized_hash("Ａｂ  c") == normalized_hash("ab c")


def test_no_profile_passes_other_scripts_through_and_filters_by_their_script(tmp_path):
    # A Spanish wiki: no OpenCC, the Latin-share filter keeps prose and drops a table stub.
    prose = "El río Ebro nace en Cantabria y desemboca en el mar Mediterráneo. " * 5
    stub = "1 2 3 4 5 6 7 8 9 10 | 11 | 12 | 13 — 14 — 15 (2001) [3] " * 5
    path = tmp_path / "es.parquet"
    write_parquet([article(1, "Ebro", prose), article(2, "Tabla", stub),
                   article(3, "Ebro (copia)", prose)], path, schema=SCHEMA)
    stats = convert_articles([path], tmp_path / "o.parquet", tmp_path / "o.json", profile=None,
                             min_chars=50, min_script_share=0.3,
                             scripts=expected_scripts("es", {}), dedup=True)
    rows = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert [r["text"] for r in rows] == [prose]
    assert stats["dropped"] == {"low_script_share": 1, "duplicate": 1}
    assert stats["texts_changed_by_opencc"] == 0 and stats["profile"] is None


def test_expected_scripts():
    assert expected_scripts("zh", {}) == ("Han",)
    assert expected_scripts("es", {}) == ("Latin",)
    assert expected_scripts("bg", {}) == ("Cyrillic",)
    assert expected_scripts("xx", {}) is None
    assert expected_scripts("xx", {"xx": ["Latin"]}) == ("Latin",)
    assert script_share("Река Дунав", ["Cyrillic"]) == pytest.approx(1.0)
    assert script_share("Река Дунав", ["Latin"]) == 0.0
    assert script_share("日本語のテキスト", ["Han", "Kana"]) == pytest.approx(1.0)
