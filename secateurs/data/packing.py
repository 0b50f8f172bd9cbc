"""Tokenize-and-pack: turn the mixed training text into fixed-length rows of token ids.

Owns the `tokenize` stage's output format (`out_dir/train.parquet` + `out_dir/meta.json`):

- every document is encoded with the base model's fast tokenizer (its own special tokens,
  e.g. a Llama BOS, included) and followed by the tokenizer's end-of-text token, so the
  model learns where a document ends (the GPT-2/GPT-3 convention of concatenating
  documents separated by end-of-text). That is EOS unless EOS is a chat marker: an
  instruct tokenizer with eos `<|im_end|>` (SmolLM2) gets its real `<|endoftext|>`
  (secateurs.documents); meta.json names the token used (`separator_token`);
- the stream of documents is cut into rows of exactly `seq_len` tokens; a document longer
  than the room left in a row continues in the next row, so no document is dropped or
  truncated;
- `position_ids` restart at 0 at every document start inside a row (and at the start of
  every row). This is the padding-free packing layout of trl's `packing=True` and of
  transformers' flash-attention path, which derive sequence boundaries from position_ids
  resets, so a trainer can keep documents from attending to each other (with
  `use_cache=False`; see STACK.md);
- the last partial row is padded with the pad token (default) or dropped, and the meta
  file says which and how many tokens that cost.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from secateurs.documents import FramingError, document_separator
from secateurs.io import atomic_output, read_json, write_json
from secateurs.data.tokens import encode_batches, load_tokenizer

log = logging.getLogger(__name__)

PACKED_SCHEMA = pa.schema([
    ("input_ids", pa.list_(pa.int32())),
    ("position_ids", pa.list_(pa.int32())),
])
LAST_ROW_POLICIES = ("pad", "drop")


def tokenize_and_pack(train_parquet: str | os.PathLike, tokenizer_dir: str | os.PathLike,
                      out_dir: str | os.PathLike, *, seq_len: int, threads: int,
                      batch_size: int = 1000, last_row: str = "pad",
                      text_column: str = "text") -> dict:
    """Tokenize `train_parquet`'s `text` column and write packed rows of `seq_len` tokens.

    Returns the meta dict also written to `out_dir/meta.json`. `threads` worker processes
    encode batches of `batch_size` documents; the output is identical for any `threads`.
    """
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    if last_row not in LAST_ROW_POLICIES:
        raise ValueError(f"last_row must be one of {LAST_ROW_POLICIES}, got {last_row!r}")
    tokenizer = load_tokenizer(tokenizer_dir)
    eos_id, pad_id = _special_ids(tokenizer, tokenizer_dir)
    appends_eos = _post_processor_appends_eos(tokenizer, eos_id)
    source = _open_text_parquet(train_parquet, text_column)

    packer = _Packer(seq_len)
    counts = {"num_documents": 0, "num_empty_documents": 0}
    with atomic_output(out_dir, directory=True) as tmp:
        with pq.ParquetWriter(tmp / "train.parquet", PACKED_SCHEMA, compression="zstd") as writer:
            batches = _text_batches(source, text_column, batch_size, counts)
            bar = tqdm(total=source.metadata.num_rows, unit="doc", desc="tokenize",
                       disable=None)
            for ids, lengths in encode_batches(batches, tokenizer, threads=threads,
                                               add_special_tokens=True):
                bar.update(len(lengths))
                rows = packer.add(*_with_eos(ids, lengths, eos_id, appends_eos))
                _write_rows(writer, *rows)
            bar.close()
            tail = packer.finish(last_row, pad_id)
            _write_rows(writer, *tail)
        meta = _meta(packer, counts, seq_len, eos_id, pad_id, last_row, tokenizer_dir)
        meta["separator_token"] = tokenizer.convert_ids_to_tokens(eos_id)
        write_json(meta, tmp / "meta.json")
    log.info("packed %d documents into %d rows of %d tokens (%d padding, %d dropped)",
             meta["num_documents"], meta["num_sequences"], seq_len,
             meta["padding_tokens"], meta["dropped_tokens"])
    return meta


def load_packed(out_dir: str | os.PathLike, *, in_memory: bool = False,
                cache_dir: str | os.PathLike | None = None):
    """The packed rows of a `tokenize_and_pack` directory as a `datasets.Dataset`.

    By default the Parquet file is converted once into the `datasets` Arrow cache
    (HF_DATASETS_CACHE or `cache_dir`) and memory-mapped, so a corpus larger than RAM
    trains and every data-parallel rank shares the same pages; the cache is keyed by the
    file's path and mtime, so a rebuilt `out_dir` is never shadowed by a stale copy.
    `in_memory=True` reads the table straight into memory with no cache (small data, tests).
    """
    from datasets import Dataset

    path = Path(out_dir) / "train.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no packed data; run tokenize_and_pack(..., out_dir="
                                f"{str(out_dir)!r}) first")
    if in_memory:
        return Dataset(pq.read_table(path))
    return Dataset.from_parquet(str(path), split="train",
                                cache_dir=str(cache_dir) if cache_dir else None)


def read_meta(out_dir: str | os.PathLike) -> dict:
    return read_json(Path(out_dir) / "meta.json")


# -- tokenizer facts ---------------------------------------------------------------------

def _special_ids(tokenizer, tokenizer_dir) -> tuple[int, int]:
    """(document separator id, pad_token_id); pad falls back to the separator when the
    tokenizer has none.

    The separator is written to meta.json as `eos_token_id` (the token that ends every
    document of this data, which the healing collator keeps as a target) and by name as
    `separator_token`. Many base models (Llama, Yi's pretraining setup) ship no pad token;
    padding is only ever used in the final row, whose real length the meta file records.
    """
    try:
        eos_id, _ = document_separator(tokenizer)
    except FramingError as err:
        raise ValueError(f"{tokenizer_dir}: {err}") from err
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        log.warning("%s: no pad token; padding the last row with EOS (id %d)",
                    tokenizer_dir, eos_id)
        pad_id = eos_id
    return int(eos_id), int(pad_id)


def _post_processor_appends_eos(tokenizer, eos_id: int) -> bool:
    """True when the tokenizer itself ends each encoding with EOS (then we add none)."""
    probe = tokenizer.backend_tokenizer.encode("a", add_special_tokens=True).ids
    return bool(probe) and probe[-1] == eos_id


# -- reading -----------------------------------------------------------------------------

def _open_text_parquet(path, text_column: str) -> pq.ParquetFile:
    source = pq.ParquetFile(path)
    if text_column not in source.schema_arrow.names:
        raise ValueError(f"{path}: no column {text_column!r} (has {source.schema_arrow.names}); "
                         "pass the mix stage's train.parquet or set text_column")
    return source


def _text_batches(source: pq.ParquetFile, text_column: str, batch_size: int, counts: dict):
    """Yield lists of non-empty texts; empty or null texts are counted, not encoded."""
    for record_batch in source.iter_batches(batch_size=batch_size, columns=[text_column]):
        texts = record_batch.column(0).to_pylist()
        kept = [t for t in texts if t]
        counts["num_documents"] += len(kept)
        counts["num_empty_documents"] += len(texts) - len(kept)
        if kept:
            yield kept


# -- packing -----------------------------------------------------------------------------

def _with_eos(ids: np.ndarray, lengths: np.ndarray, eos_id: int,
              appends_eos: bool) -> tuple[np.ndarray, np.ndarray]:
    """Insert EOS after every document; return (ids, doc-relative positions)."""
    if not appends_eos:
        ends = np.cumsum(lengths)
        ids = np.insert(ids, ends, np.int32(eos_id))
        lengths = lengths + 1
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.arange(len(ids), dtype=np.int64) - starts
    return ids, positions


class _Packer:
    """Cuts a stream of (ids, doc-relative positions) into full rows, carrying the rest."""

    def __init__(self, seq_len: int) -> None:
        self.seq_len = seq_len
        self.carry_ids = np.zeros(0, dtype=np.int32)
        self.carry_pos = np.zeros(0, dtype=np.int64)
        self.num_sequences = 0
        self.document_tokens = 0
        self.padding_tokens = 0
        self.dropped_tokens = 0
        self.last_row_tokens = 0

    def add(self, ids: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.document_tokens += len(ids)
        ids = np.concatenate([self.carry_ids, ids])
        positions = np.concatenate([self.carry_pos, positions])
        full = len(ids) // self.seq_len * self.seq_len
        self.carry_ids, self.carry_pos = ids[full:], positions[full:]
        return self._rows(ids[:full], positions[:full])

    def finish(self, policy: str, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.carry_ids)
        self.last_row_tokens = n
        if n == 0:
            return self._rows(self.carry_ids, self.carry_pos)
        if policy == "drop":
            self.dropped_tokens = n
            return self._rows(self.carry_ids[:0], self.carry_pos[:0])
        pad = self.seq_len - n
        self.padding_tokens = pad
        # The padding is its own segment (positions from 0), so with position-id based
        # attention it never attends to, or is attended by, the last document.
        ids = np.concatenate([self.carry_ids, np.full(pad, pad_id, dtype=np.int32)])
        positions = np.concatenate([self.carry_pos, np.arange(pad, dtype=np.int64)])
        return self._rows(ids, positions)

    def _rows(self, ids: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = ids.reshape(-1, self.seq_len)
        pos = positions.reshape(-1, self.seq_len)
        self.num_sequences += len(ids)
        return ids, _restart_at_row_start(pos).astype(np.int32)


def _restart_at_row_start(pos: np.ndarray) -> np.ndarray:
    """Make a document that continues from the previous row start again at position 0.

    Each row is an independent sequence for the model, so its first (continued) segment
    must count from 0 like any other; this also keeps positions below `seq_len`.
    """
    if pos.size == 0:
        return pos
    is_start = pos == 0
    is_start[:, 0] = True
    first_segment = np.cumsum(is_start, axis=1) == 1
    return np.where(first_segment, pos - pos[:, :1], pos)


def _write_rows(writer: pq.ParquetWriter, ids: np.ndarray, positions: np.ndarray) -> None:
    if len(ids) == 0:
        return
    n, seq_len = ids.shape
    offsets = pa.array(np.arange(0, (n + 1) * seq_len, seq_len, dtype=np.int32))
    table = pa.table({
        "input_ids": pa.ListArray.from_arrays(offsets, pa.array(ids.ravel())),
        "position_ids": pa.ListArray.from_arrays(offsets, pa.array(positions.ravel())),
    }, schema=PACKED_SCHEMA)
    writer.write_table(table)


def _meta(packer: _Packer, counts: dict, seq_len: int, eos_id: int, pad_id: int,
          last_row: str, tokenizer_dir) -> dict:
    written = packer.num_sequences * seq_len
    wasted = packer.padding_tokens + packer.dropped_tokens
    return {
        "seq_len": seq_len,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "tokenizer": str(tokenizer_dir),
        "num_sequences": packer.num_sequences,
        "num_tokens": written,
        "num_document_tokens": packer.document_tokens,
        "num_documents": counts["num_documents"],
        "num_empty_documents_skipped": counts["num_empty_documents"],
        "last_row": last_row,
        "last_row_real_tokens": packer.last_row_tokens,
        "padding_tokens": packer.padding_tokens,
        "dropped_tokens": packer.dropped_tokens,
        "truncated_tokens": 0,
        "waste_fraction": wasted / (written + packer.dropped_tokens) if written + wasted else 0.0,
    }
