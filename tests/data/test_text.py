"""sample_text: any text dataset to a token budget, by a length column or the base
tokenizer, with the per-language filters; local JSONL/Parquet/plain text and streaming."""

from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq
import pytest

from secateurs.data.text import TextSourceError, sample_text
from secateurs.data.tokens import count_tokens, load_tokenizer
from secateurs.io import write_parquet

ES = [f"El río {i} cruza el valle de Alder, donde {i % 5} molinos muelen trigo y cebada."
      for i in range(200)]
SETTINGS = {"token_budget": None, "seed": 0, "subsets": None, "config": None, "split": "train",
            "text_column": "text", "length_column": None, "min_chars": 0,
            "min_script_share": 0.3, "scripts": ["Latin"], "dedup": True,
            "shuffle_buffer": 1000}


def _sample(source, tmp_path, name="s", **changes):
    out = tmp_path / f"{name}.parquet"
    stats = sample_text(source, out, tmp_path / f"{name}.json", **{**SETTINGS, **changes})
    return pq.read_table(out).to_pylist(), stats


def test_budget_by_base_tokenizer_with_filters(tmp_path, tiny_tokenizer_dir):
    path = tmp_path / "es.jsonl"
    rows = [{"body": t} for t in ES] + [{"body": ES[0]}, {"body": "12 | 34 | 56 | 78"}, {"body": ""}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    taken, stats = _sample(path, tmp_path, text_column="body", token_budget=500,
                           tokenizer_dir=tiny_tokenizer_dir)
    assert stats["dropped"] == {"duplicate": 1, "low_script_share": 1, "empty": 1}
    tokens = count_tokens([r["text"] for r in taken], load_tokenizer(tiny_tokenizer_dir))
    assert [r["length"] for r in taken] == tokens.tolist()
    assert 500 <= sum(tokens) < 500 + max(tokens)       # the row reaching the budget is kept
    again, _ = _sample(path, tmp_path, "t", text_column="body", token_budget=500,
                       tokenizer_dir=tiny_tokenizer_dir)
    assert again == taken


def test_budget_by_length_column(tmp_path):
    write_parquet([{"content": t, "n": 10} for t in ES], tmp_path / "es.parquet")
    taken, stats = _sample(tmp_path / "es.parquet", tmp_path, text_column="content",
                           length_column="n", token_budget=95)
    assert len(taken) == 10 and stats["tokens"] == 100


def test_plain_text_documents_are_blank_line_separated(tmp_path, tiny_tokenizer_dir):
    with gzip.open(tmp_path / "es.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n\n".join(ES[:7]) + "\n")
    taken, stats = _sample(tmp_path / "es.txt.gz", tmp_path, tokenizer_dir=tiny_tokenizer_dir)
    assert [r["text"] for r in taken] == ES[:7] and stats["token_budget"] is None
    # No budget and no tokenizer: the whole source, lengths left to the mix.
    taken, stats = _sample(tmp_path / "es.txt.gz", tmp_path, "u")
    assert [r["text"] for r in taken] == ES[:7] and stats["tokens"] is None


def test_streaming_reads_a_config_to_the_budget(tmp_path, tiny_tokenizer_dir):
    # A local folder per config streams through the same `datasets` code a hub id takes
    # (wikimedia/wikipedia with config 20231101.es).
    (tmp_path / "wiki" / "20231101.es").mkdir(parents=True)
    write_parquet([{"id": str(i), "title": "t", "text": t} for i, t in enumerate(ES)],
                  tmp_path / "wiki" / "20231101.es" / "train.parquet")
    taken, stats = _sample(tmp_path / "wiki", tmp_path, config="20231101.es", token_budget=300,
                           tokenizer_dir=tiny_tokenizer_dir, streaming=True)
    assert 300 <= stats["tokens"] and stats["subsets"]["20231101.es"]["rows"] == len(taken)
    assert len(taken) < len(ES) and {r["text"] for r in taken} <= set(ES)


def test_errors_name_the_file_and_the_fix(tmp_path):
    write_parquet([{"body": t} for t in ES], tmp_path / "es.parquet")
    with pytest.raises(TextSourceError, match="es.parquet.*no column.*text_column"):
        _sample(tmp_path / "es.parquet", tmp_path, length_column="n")
    with pytest.raises(TextSourceError, match="length_column"):
        _sample(tmp_path / "es.parquet", tmp_path, text_column="body", token_budget=10)
    assert not (tmp_path / "s.parquet").exists()
