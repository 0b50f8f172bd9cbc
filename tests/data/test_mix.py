"""mix_corpora: held-out sets disjoint from training, ratio by tokens across any number of
sources and languages, seeded shuffle."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from secateurs.io import read_parquet, write_parquet
from secateurs.data.mix import mix_corpora, token_targets

EN = [f"Document {i} about the river town of Alder and its {i % 7} mills." * (1 + i % 3)
      for i in range(120)]
ZH = [f"第{i}篇：长江是中国最长的河流，全长约六千三百公里。" for i in range(60)]


@pytest.fixture()
def corpora(tmp_path):
    en = tmp_path / "cosmopedia.parquet"
    write_parquet([{"text": t, "prompt": "p", "token_length": 1} for t in EN + [""]], en)
    zh = tmp_path / "zhwiki.parquet"
    write_parquet([{"id": str(i), "title": "t", "url": "u", "text": t}
                   for i, t in enumerate(ZH)], zh)
    return {"cosmopedia": {"path": en, "language": "en", "weight": 2},
            "zhwiki": {"path": zh, "language": "zh", "weight": 1}}


def _mix(sources, tokenizer_dir, out, *, heldout_docs, seed=0, **kwargs):
    return mix_corpora(sources, tokenizer_dir, out, heldout_docs=heldout_docs, seed=seed, **kwargs)


def test_outputs_and_columns(corpora, tiny_tokenizer_dir, tmp_path):
    stats = _mix(corpora, tiny_tokenizer_dir, tmp_path / "mix", heldout_docs=5)
    for name in ("train", "heldout_en", "heldout_zh"):
        table = pq.read_table(tmp_path / "mix" / f"{name}.parquet")
        assert table.column_names == ["text", "lang", "source", "n_tokens"]
    assert json.loads((tmp_path / "mix" / "stats.json").read_text()) == stats
    heldout_en = read_parquet(tmp_path / "mix" / "heldout_en.parquet")
    assert len(heldout_en) == 5 and {r["lang"] for r in heldout_en} == {"en"}
    assert {r["source"] for r in heldout_en} == {"cosmopedia"}
    assert stats["heldout"]["zh"]["docs"] == 5
    assert stats["empty_docs_dropped_en"] == 1


def test_heldout_never_enters_training(corpora, tiny_tokenizer_dir, tmp_path):
    # A held-out text duplicated in the source must not sneak in via its twin.
    dup = tmp_path / "dup.parquet"
    write_parquet([{"text": t} for t in EN], dup)  # every English text twice
    sources = {**corpora, "dup": {"path": dup, "language": "en", "weight": 1}}
    _mix(sources, tiny_tokenizer_dir, tmp_path / "mix", heldout_docs=10)
    train = {r["text"] for r in read_parquet(tmp_path / "mix" / "train.parquet")}
    for lang in ("en", "zh"):
        heldout = {r["text"] for r in read_parquet(tmp_path / "mix" / f"heldout_{lang}.parquet")}
        assert heldout and not heldout & train


def test_ratio_is_by_tokens_of_the_given_tokenizer(corpora, tiny_tokenizer_dir, tmp_path):
    stats = _mix(corpora, tiny_tokenizer_dir, tmp_path / "mix", heldout_docs=5)
    rows = read_parquet(tmp_path / "mix" / "train.parquet")
    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    for row in rows[:20]:
        assert row["n_tokens"] == len(tok(row["text"], add_special_tokens=False)["input_ids"])
    en = sum(r["n_tokens"] for r in rows if r["lang"] == "en")
    zh = sum(r["n_tokens"] for r in rows if r["lang"] == "zh")
    assert stats["train"]["en"]["tokens"] == en and stats["train"]["zh"]["tokens"] == zh
    # Here English is plentiful: all of zh is used, en subsampled to ~2x zh tokens.
    assert stats["train"]["zh"]["docs"] == stats["train"]["zh"]["available_docs"] == 55
    assert stats["train"]["en"]["docs"] < stats["train"]["en"]["available_docs"]
    longest_en = max(r["n_tokens"] for r in rows if r["lang"] == "en")
    assert 2 * zh <= en < 2 * zh + longest_en
    assert stats["achieved_ratio"]["zh"] == 1 and stats["achieved_ratio"]["en"] == pytest.approx(2, abs=0.2)


def test_scarce_side_is_used_whole():
    assert token_targets({"en": 1000, "zh": 900}, {"en": 2, "zh": 1}) == {"en": 1000, "zh": 500}
    assert token_targets({"en": 5000, "zh": 900}, {"en": 2, "zh": 1}) == {"en": 1800, "zh": 900}


def test_seeded_shuffle_is_deterministic(corpora, tiny_tokenizer_dir, tmp_path):
    _mix(corpora, tiny_tokenizer_dir, tmp_path / "a", seed=1, heldout_docs=5)
    _mix(corpora, tiny_tokenizer_dir, tmp_path / "b", seed=1, heldout_docs=5, threads=2)
    _mix(corpora, tiny_tokenizer_dir, tmp_path / "c", seed=2, heldout_docs=5)
    a, b, c = (read_parquet(tmp_path / d / "train.parquet") for d in "abc")
    assert (tmp_path / "a" / "train.parquet").read_bytes() == (tmp_path / "b" / "train.parquet").read_bytes()
    assert [r["text"] for r in a] != [r["text"] for r in c]
    langs = [r["lang"] for r in a]
    assert langs != sorted(langs)  # languages interleaved, not one block after the other


def test_bad_config_raises(corpora, tiny_tokenizer_dir, tmp_path):
    with pytest.raises(ValueError, match="weights must be positive"):
        _mix({**corpora, "zhwiki": {**corpora["zhwiki"], "weight": 0}}, tiny_tokenizer_dir,
             tmp_path / "m", heldout_docs=5)
    with pytest.raises(ValueError, match="heldout_docs"):
        _mix(corpora, tiny_tokenizer_dir, tmp_path / "m", heldout_docs=60)
    assert not (tmp_path / "m").exists()


def _docs(tmp_path, name, texts):
    path = tmp_path / f"{name}.parquet"
    write_parquet([{"text": t} for t in texts], path)
    return path


ES = [f"El río {i} cruza el valle de Alder, donde {i % 5} molinos muelen trigo." for i in range(400)]
BG = [f"Река {i} минава през долината, където {i % 5} мелници мелят жито." for i in range(400)]


def test_three_languages_meet_the_configured_ratio(tiny_tokenizer_dir, tmp_path):
    # es is the scarcest relative to its weight here, so it is used whole and the others
    # are cut to its scale: every language within 1% of the configured 3:2:1.
    sources = {"web": {"path": _docs(tmp_path, "web", EN * 5), "language": "en", "weight": 3},
               "eswiki": {"path": _docs(tmp_path, "es", ES), "language": "es", "weight": 2},
               "bg": {"path": _docs(tmp_path, "bg", BG), "language": "bg", "weight": 1}}
    stats = _mix(sources, tiny_tokenizer_dir, tmp_path / "mix", heldout_docs=10)
    tokens = stats["train"]
    assert stats["ratio"] == {"en": 3, "es": 2, "bg": 1}
    assert tokens["es"]["tokens"] == tokens["es"]["available_tokens"]
    for lang, weight in stats["ratio"].items():
        achieved = tokens[lang]["tokens"] / tokens["es"]["tokens"] * 2
        assert achieved == pytest.approx(weight, rel=0.01), (lang, achieved)
    assert {p.name for p in (tmp_path / "mix").glob("heldout_*")} == {
        "heldout_en.parquet", "heldout_es.parquet", "heldout_bg.parquet"}
    rows = read_parquet(tmp_path / "mix" / "train.parquet")
    assert {r["source"] for r in rows} == {"web", "eswiki", "bg"}


def test_one_language_alone(tiny_tokenizer_dir, tmp_path):
    sources = {"eswiki": {"path": _docs(tmp_path, "es", ES), "language": "es", "weight": 1}}
    stats = _mix(sources, tiny_tokenizer_dir, tmp_path / "mix", heldout_docs=20)
    assert stats["train"]["es"]["docs"] == len(ES) - 20
    assert stats["achieved_ratio"] == {"es": 1}
    assert sorted(p.name for p in (tmp_path / "mix").iterdir()) == [
        "heldout_es.parquet", "stats.json", "train.parquet"]


def test_sources_of_one_language_share_its_heldout_and_split_its_weight(tiny_tokenizer_dir,
                                                                        tmp_path):
    sources = {"a": {"path": _docs(tmp_path, "a", EN), "language": "en", "weight": 1},
               "b": {"path": _docs(tmp_path, "b", [t + " More." for t in EN]), "language": "en",
                     "weight": 1},
               "es": {"path": _docs(tmp_path, "es", ES), "language": "es", "weight": 2}}
    stats = _mix(sources, tiny_tokenizer_dir, tmp_path / "mix", heldout_docs=10)
    assert stats["ratio"] == {"en": 2, "es": 2}
    assert stats["heldout"]["en"]["docs"] == 10
    per_source = stats["sources"]
    assert per_source["a"]["tokens"] == pytest.approx(per_source["b"]["tokens"], rel=0.05)


@pytest.mark.realdata
def test_real_c4_and_alpaca_zh(real_data, tiny_tokenizer_dir, tmp_path):
    c4 = [json.loads(line)["text"] for line in
          (real_data / "hiyouga+LLaMA-Factory" / "c4_demo.jsonl").open(encoding="utf-8")]
    zh_rows = json.loads((real_data / "hiyouga+LLaMA-Factory" / "alpaca_zh_demo.json")
                         .read_text(encoding="utf-8"))
    write_parquet([{"text": t} for t in c4], tmp_path / "c4.parquet")
    write_parquet([{"text": r["output"]} for r in zh_rows], tmp_path / "zh.parquet")
    sources = {"c4": {"path": tmp_path / "c4.parquet", "language": "en", "weight": 2},
               "alpaca": {"path": tmp_path / "zh.parquet", "language": "zh", "weight": 1}}
    stats = _mix(sources, tiny_tokenizer_dir, tmp_path / "mix", heldout_docs=50)
    assert stats["heldout"]["en"]["docs"] == stats["heldout"]["zh"]["docs"] == 50
    assert stats["achieved_ratio"]["en"] == pytest.approx(2, rel=0.05)
