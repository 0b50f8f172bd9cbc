"""tokenize_and_pack: exact rows, EOS after every document, positions, waste, determinism."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from secateurs.io import write_parquet
from secateurs.data.packing import load_packed, read_meta, tokenize_and_pack

DOCS = [
    "The river town of Alder sits where two valleys meet.",
    "柏林是德國的首都。",
    "A triangle has three sides, and the sum of its angles is one hundred and eighty degrees. " * 5,
    "",
    "Photosynthesis turns light into sugar.",
    "长江是中国最长的河流。",
]


@pytest.fixture()
def train_parquet(tmp_path):
    path = tmp_path / "mix" / "train.parquet"
    write_parquet([{"text": t, "lang": "en", "source": "x", "n_tokens": 0} for t in DOCS], path)
    return path


def _expected_stream(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    docs = [tok(t)["input_ids"] + [tok.eos_token_id] for t in DOCS if t]
    return tok, docs


def test_rows_are_the_document_stream_with_eos(train_parquet, tiny_tokenizer_dir, tmp_path):
    tok, docs = _expected_stream(tiny_tokenizer_dir)
    meta = tokenize_and_pack(train_parquet, tiny_tokenizer_dir, tmp_path / "packed", seq_len=16, threads=1)
    table = pq.read_table(tmp_path / "packed" / "train.parquet")
    ids = table.column("input_ids").to_pylist()
    assert all(len(r) == 16 for r in ids)
    stream = [t for r in ids for t in r]
    expected = [t for d in docs for t in d]
    assert stream[:len(expected)] == expected  # nothing dropped, nothing reordered
    assert stream[len(expected):] == [tok.pad_token_id] * meta["padding_tokens"]
    assert meta["num_documents"] == 5 and meta["num_empty_documents_skipped"] == 1
    assert meta["num_document_tokens"] == len(expected)
    assert meta["num_sequences"] == len(ids) == -(-len(expected) // 16)
    assert meta["num_tokens"] == 16 * len(ids)
    assert meta["padding_tokens"] == 16 * len(ids) - len(expected)
    assert meta["eos_token_id"] == tok.eos_token_id and meta["pad_token_id"] == tok.pad_token_id
    assert json.loads((tmp_path / "packed" / "meta.json").read_text()) == meta
    assert str(table.schema.field("input_ids").type) == "list<element: int32>"


def test_position_ids_restart_at_documents_and_rows(train_parquet, tiny_tokenizer_dir, tmp_path):
    _, docs = _expected_stream(tiny_tokenizer_dir)
    tokenize_and_pack(train_parquet, tiny_tokenizer_dir, tmp_path / "packed", seq_len=16, threads=1)
    table = pq.read_table(tmp_path / "packed" / "train.parquet")
    positions = np.array(table.column("position_ids").to_pylist())
    # Expected: position within its document, restarted at each row start; padding is its
    # own segment counting from 0.
    flat_expected = np.concatenate([np.arange(len(d)) for d in docs])
    n_pad = positions.size - flat_expected.size
    flat_expected = np.concatenate([flat_expected, np.arange(n_pad)]).reshape(-1, 16)
    for row, want in zip(positions, flat_expected):
        first_seg_end = next((j for j in range(1, 16) if want[j] == 0), 16)
        want = want.copy()
        want[:first_seg_end] -= want[0]
        assert row.tolist() == want.tolist()
    assert positions.max() < 16
    # The long document (>16 tokens) spans rows: some row must start mid-document at 0.
    assert any(len(d) > 16 for d in docs)


def test_drop_last_row_reports_dropped_tokens(train_parquet, tiny_tokenizer_dir, tmp_path):
    _, docs = _expected_stream(tiny_tokenizer_dir)
    total = sum(len(d) for d in docs)
    meta = tokenize_and_pack(train_parquet, tiny_tokenizer_dir, tmp_path / "p", seq_len=16, threads=1,
                             last_row="drop")
    assert meta["num_sequences"] == total // 16
    assert meta["dropped_tokens"] == total % 16 and meta["padding_tokens"] == 0
    assert meta["waste_fraction"] == pytest.approx((total % 16) / total)


def test_same_output_for_any_threads_and_batch_size(train_parquet, tiny_tokenizer_dir, tmp_path):
    tokenize_and_pack(train_parquet, tiny_tokenizer_dir, tmp_path / "a", seq_len=8, threads=1)
    tokenize_and_pack(train_parquet, tiny_tokenizer_dir, tmp_path / "b", seq_len=8,
                      threads=2, batch_size=2)
    a = pq.read_table(tmp_path / "a" / "train.parquet")
    b = pq.read_table(tmp_path / "b" / "train.parquet")
    assert a.equals(b)
    assert read_meta(tmp_path / "a")["num_tokens"] == read_meta(tmp_path / "b")["num_tokens"]


def test_load_packed_gives_a_dataset(train_parquet, tiny_tokenizer_dir, tmp_path):
    meta = tokenize_and_pack(train_parquet, tiny_tokenizer_dir, tmp_path / "p", seq_len=12, threads=1)
    expected = pq.read_table(tmp_path / "p" / "train.parquet").to_pylist()
    mapped = load_packed(tmp_path / "p", cache_dir=tmp_path / "hf-cache")
    in_memory = load_packed(tmp_path / "p", in_memory=True)
    for dataset in (mapped, in_memory):
        assert dataset.column_names == ["input_ids", "position_ids"]
        assert len(dataset) == meta["num_sequences"]
        assert dataset.to_list() == expected
    assert mapped.cache_files and str(tmp_path / "hf-cache") in mapped.cache_files[0]["filename"]


def test_bad_inputs_raise_clear_errors(train_parquet, tiny_tokenizer_dir, tmp_path):
    with pytest.raises(ValueError, match="seq_len"):
        tokenize_and_pack(train_parquet, tiny_tokenizer_dir, tmp_path / "p", seq_len=1, threads=1)
    bad = tmp_path / "bad.parquet"
    write_parquet([{"body": "x"}], bad)
    with pytest.raises(ValueError, match="no column 'text'"):
        tokenize_and_pack(bad, tiny_tokenizer_dir, tmp_path / "p", seq_len=8, threads=1)
    assert not (tmp_path / "p").exists()  # nothing half-written
    with pytest.raises(FileNotFoundError, match="tokenize_and_pack"):
        load_packed(tmp_path / "p")


@pytest.mark.realdata
def test_real_c4_text_packs_losslessly(real_data, tiny_tokenizer_dir, tmp_path):
    rows = [json.loads(line) for line in
            (real_data / "hiyouga+LLaMA-Factory" / "c4_demo.jsonl").open(encoding="utf-8")]
    path = tmp_path / "c4.parquet"
    write_parquet([{"text": r["text"]} for r in rows], path)
    meta = tokenize_and_pack(path, tiny_tokenizer_dir, tmp_path / "p", seq_len=256, threads=2)
    ids = np.array(pq.read_table(tmp_path / "p" / "train.parquet").column("input_ids").to_pylist())
    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    assert meta["num_documents"] == len(rows) == 300
    assert int((ids == tok.eos_token_id).sum()) == 300  # one EOS per document
    real = ids.ravel()[:meta["num_document_tokens"]]
    docs = tok.decode(real.tolist()).split(tok.eos_token)
    assert docs[:-1] == [r["text"] for r in rows]  # decodes back to the exact texts


@pytest.fixture()
def bos_eos_tokenizer_dir(tiny_tokenizer_dir, tmp_path):
    """The tiny tokenizer with a Llama-style post-processor that adds BOS and EOS itself."""
    import shutil

    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    out = tmp_path / "bos_eos_tokenizer"
    shutil.copytree(tiny_tokenizer_dir, out)
    backend = Tokenizer.from_file(str(out / "tokenizer.json"))
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    backend.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, backend.token_to_id(bos)),
                                                   (eos, backend.token_to_id(eos))])
    backend.save(str(out / "tokenizer.json"))
    return out


def test_tokenizer_special_tokens_kept_and_eos_not_doubled(train_parquet, bos_eos_tokenizer_dir,
                                                           tmp_path):
    tok = AutoTokenizer.from_pretrained(str(bos_eos_tokenizer_dir))
    assert tok("a")["input_ids"][-1] == tok.eos_token_id  # the fixture's premise
    meta = tokenize_and_pack(train_parquet, bos_eos_tokenizer_dir, tmp_path / "p", seq_len=16,
                             threads=1)
    stream = [t for r in pq.read_table(tmp_path / "p" / "train.parquet")
              .column("input_ids").to_pylist() for t in r][:meta["num_document_tokens"]]
    expected = [t for d in DOCS if d for t in tok(d)["input_ids"]]
    assert stream == expected
    assert stream.count(tok.eos_token_id) == stream.count(tok.bos_token_id) == 5


def test_encode_batches_threads_agree_and_validate(tiny_tokenizer_dir):
    from secateurs.data.tokens import count_tokens, encode_batches, load_tokenizer

    tok = load_tokenizer(tiny_tokenizer_dir)
    texts = [d for d in DOCS if d] * 3
    one = count_tokens(texts, tok, threads=1, batch_size=4)
    two = count_tokens(texts, tok, threads=2, batch_size=4)
    assert one.tolist() == two.tolist() == [len(tok(t)["input_ids"]) for t in texts]
    with pytest.raises(ValueError, match="threads"):
        list(encode_batches([texts], tok, threads=0))


def test_a_worker_that_cannot_start_fails_the_run_instead_of_hanging(tmp_path):
    """Spawned tokenizer workers that die on start (here: a tokenizer they cannot load; in
    a rule, a script they cannot re-import) stop the run with BrokenProcessPool; a
    multiprocessing.Pool would respawn them forever and the job would hang silently."""
    import subprocess
    import sys

    script = tmp_path / "broken_workers.py"
    script.write_text(
        "from types import SimpleNamespace\n"
        "from secateurs.data.tokens import encode_batches\n"
        "if __name__ == '__main__':\n"
        "    tok = SimpleNamespace(backend_tokenizer=SimpleNamespace(to_str=lambda: 'not json'))\n"
        "    list(encode_batches([['a'], ['b']], tok, threads=2))\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert "BrokenProcessPool" in result.stderr
