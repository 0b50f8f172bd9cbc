"""Sample a text dataset to a token budget with a seed: the `text_sample` stage.

Owns the data stage's second kind of source (the first is a MediaWiki dump): any corpus
whose documents sit in one text column. One Parquet file comes out with columns `text` and
`length` (the document's length in the budget's unit), plus a stats JSON.

Where the rows come from:

- local files: `.parquet`, `.jsonl`, `.jsonl.gz`, `.json` (a list of objects) and plain
  text (`.txt`, `.txt.gz`: documents separated by a blank line), or a directory of them;
  with `subsets`, each subset is the folder `path/<name>` or, in the hub's layout,
  `path/data/<name>`. The seeded order is a full permutation;
- a hub dataset id with its `config` (e.g. `wikimedia/wikipedia`, `20231101.es`) or its
  `subsets` (configs with weights: Cosmopedia's web_samples_v2, stanford, ...), read in
  streaming mode, so nothing is downloaded in full; the seeded order is the streaming
  shuffle buffer's.

How long a document is: its `length_column` when the dataset has one (Cosmopedia's
`token_length`), otherwise its token count under the base model's tokenizer. The budget is
divided between subsets by weight and each subset is cut by `take_to_budget`'s rule (rows
in the seeded order until the budget is reached; the row that reaches it is kept);
`token_budget: null` takes every row (with no length column and no tokenizer given, the
lengths are left null: the mix counts tokens anyway). Quality filters (minimum length, expected-script
share, exact-duplicate removal) run before the budget, so the budget counts kept text.
Same inputs and settings, same bytes.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from secateurs.data.convert import make_converter, normalized_hash
from secateurs.data.cosmopedia import ALL, _is_local, _local_loader_args, _subset_seed, split_budget
from secateurs.data.writing import script_share
from secateurs.io import atomic_output, write_json

log = logging.getLogger(__name__)

TEXT_SCHEMA = pa.schema([("text", pa.string()), ("length", pa.int64())])
SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".txt", ".txt.gz")
STREAM_BATCH = 1000


class TextSourceError(ValueError):
    pass


def sample_text(source: str | os.PathLike, out_parquet: str | os.PathLike,
                stats_json: str | os.PathLike, *, token_budget: int | None, seed: int,
                subsets: Mapping[str, float] | None, config: str | None, split: str,
                text_column: str, length_column: str | None, min_chars: int,
                min_script_share: float, scripts: Sequence[str], dedup: bool,
                shuffle_buffer: int, opencc: str | None = None,
                tokenizer_dir: str | os.PathLike | None = None,
                streaming: bool | None = None) -> dict:
    """Write a seeded sample of `source` of about `token_budget` tokens; return the stats.

    `tokenizer_dir` (the base model's) measures documents when `length_column` is None.
    `opencc` converts the script of every document before the filters (a hub copy of a
    Chinese wiki mixes Traditional and Simplified text; `t2s` makes it one script).
    `streaming` defaults to True for hub ids and False for local paths; forcing it on for a
    local path reads it through the same `datasets` streaming code the hub takes.
    """
    if token_budget is not None and length_column is None and tokenizer_dir is None:
        raise TextSourceError(f"{source}: a token_budget but no length_column and no tokenizer "
                              "to count tokens with; set length_column or pass the base "
                              "model's tokenizer")
    local = _is_local(source)
    streaming = (not local) if streaming is None else streaming
    reader = _Reader(text_column, length_column, tokenizer_dir,
                     _Filter(min_chars, min_script_share, scripts, dedup), opencc)
    names = dict(subsets) if subsets else ({config: 1} if config else None)
    budgets = split_budget(token_budget, names) if token_budget else {n: None for n in names or [ALL]}
    parts, subset_stats = [], {}
    for name, budget in budgets.items():
        subset = None if name == ALL else name
        subset_seed = _subset_seed(seed, name)
        if streaming:
            batches = _stream(source, subset, split, subset_seed, shuffle_buffer, local)
            picked = _take_from_stream((reader.table(b, str(source)) for b in batches), budget)
        else:
            picked = _sample_table(reader.table(_read_local(Path(source), subset), str(source)),
                                   budget, subset_seed)
        parts.append(picked)
        subset_stats[name] = _subset_stats(picked, budget, names, name)
    table = pa.concat_tables(parts) if parts else TEXT_SCHEMA.empty_table()
    stats = {"source": str(source), "config": config, "split": split, "seed": seed,
             "token_budget": token_budget, "length": length_column or "base tokenizer",
             "rows": table.num_rows, "tokens": _length(table), "subsets": subset_stats,
             "dropped": dict(sorted(reader.filter.dropped.items()))}
    with atomic_output(out_parquet) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=65_536)
    write_json(stats, stats_json)
    log.info("sampled %d rows, %d tokens (budget %s) from %s; dropped %s", stats["rows"],
             stats["tokens"], token_budget, source, stats["dropped"] or "none")
    return stats


class _Filter:
    """Minimum length, expected-script share and exact duplicates, counted per reason."""

    def __init__(self, min_chars: int, min_share: float, scripts: Sequence[str], dedup: bool):
        self.min_chars, self.min_share, self.scripts, self.dedup = min_chars, min_share, scripts, dedup
        self.seen: set[bytes] = set()
        self.dropped: dict[str, int] = {}

    def keep(self, text: str | None) -> bool:
        reason = self._reason(text or "")
        if reason:
            self.dropped[reason] = self.dropped.get(reason, 0) + 1
        return reason is None

    def _reason(self, text: str) -> str | None:
        if not text.strip():
            return "empty"
        if len(text) < self.min_chars:
            return "too_short"
        if self.min_share and script_share(text, self.scripts) < self.min_share:
            return "low_script_share"
        if self.dedup:
            digest = normalized_hash(text)
            if digest in self.seen:
                return "duplicate"
            self.seen.add(digest)
        return None


class _Reader:
    """Rows (dicts or a table) -> filtered (text, length) table."""

    def __init__(self, text_column: str, length_column: str | None, tokenizer_dir, filter_,
                 opencc: str | None = None):
        self.text_column, self.length_column, self.filter = text_column, length_column, filter_
        self.converter = make_converter(opencc) if opencc else None
        self.tokenizer = None
        if length_column is None and tokenizer_dir is not None:
            from secateurs.data.tokens import load_tokenizer
            self.tokenizer = load_tokenizer(tokenizer_dir)

    def table(self, rows: pa.Table | list[dict], where: str) -> pa.Table:
        columns = [self.text_column] + ([self.length_column] if self.length_column else [])
        if isinstance(rows, pa.Table):
            missing = [c for c in columns if c not in rows.column_names]
            texts = rows.column(self.text_column).to_pylist() if not missing else []
            lengths = rows.column(self.length_column).to_pylist() if self.length_column and not missing else None
        else:
            missing = sorted({c for row in rows for c in columns if c not in row})
            texts = [row[self.text_column] for row in rows] if not missing else []
            lengths = [row[self.length_column] for row in rows] if self.length_column and not missing else None
        if missing:
            raise TextSourceError(f"{where}: no column(s) {missing}; set text_column (and "
                                  "length_column, or null to count with the base tokenizer) "
                                  "for this source")
        if self.converter is not None:
            texts = [self.converter.convert(t) if t else t for t in texts]
        keep = [self.filter.keep(t) for t in texts]
        texts = [t for t, k in zip(texts, keep) if k]
        if lengths is None and self.tokenizer is None:
            lengths = [None] * len(texts)  # no budget: whole source, length not measured
        elif lengths is None:
            from secateurs.data.tokens import count_tokens
            lengths = count_tokens(texts, self.tokenizer).tolist()
        else:
            lengths = [n for n, k in zip(lengths, keep) if k]
            if any(n is None for n in lengths):
                raise TextSourceError(f"{where}: null {self.length_column}; every row needs its "
                                      "length, or set length_column: null")
        return pa.table({"text": pa.array(texts, pa.string()),
                         "length": pa.array(lengths, pa.int64())}, schema=TEXT_SCHEMA)


# -- local files -------------------------------------------------------------------------

def _read_local(source: Path, subset: str | None) -> pa.Table | list[dict]:
    root = source
    if subset is not None:
        if source.is_file():
            raise TextSourceError(f"{source}: subsets given but the source is one file; point "
                                  "path at a directory with one folder per subset")
        root = next((c for c in (source / subset, source / "data" / subset) if c.exists()), None)
        if root is None:
            raise FileNotFoundError(f"{source}: no folder for subset {subset!r} (looked for "
                                    f"{source / subset}, {source / 'data' / subset})")
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    if not files:
        raise FileNotFoundError(f"{root}: no {', '.join(SUFFIXES)} files")
    if all(f.name.endswith(".parquet") for f in files):
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    return [row for f in files for row in _rows(f)]


def _rows(path: Path) -> Iterator[dict]:
    name = path.name
    if name.endswith(".parquet"):
        yield from pq.read_table(path).to_pylist()
        return
    if name.endswith(".json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        yield from data if isinstance(data, list) else data.get("data", [data])
        return
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        if ".txt" in name:
            for doc in f.read().split("\n\n"):
                if doc.strip():
                    yield {"text": doc.strip()}
            return
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise TextSourceError(f"{path}:{number}: not valid JSON ({err})") from err


def _sample_table(table: pa.Table, budget: int | None, seed: int) -> pa.Table:
    """Rows in a seeded permutation until `budget` is reached (all rows without a budget)."""
    if budget is None:
        return table
    order = np.random.default_rng(seed).permutation(table.num_rows)
    lengths = table.column("length").to_numpy()[order]
    before = np.cumsum(lengths) - lengths
    return table.take(order[before < budget])


# -- streaming ---------------------------------------------------------------------------

def _stream(source, subset: str | None, split: str, seed: int, buffer_size: int,
            local: bool) -> Iterator[list[dict]]:
    """Batches of rows in the seeded streaming-shuffle order (see cosmopedia._stream)."""
    from datasets import load_dataset

    if local:
        dataset = load_dataset(**_local_loader_args(Path(source), subset), split=split,
                               streaming=True)
    else:
        dataset = load_dataset(str(source), subset, split=split, streaming=True)
    batch = []
    for row in dataset.shuffle(seed=seed, buffer_size=buffer_size):
        batch.append(row)
        if len(batch) == STREAM_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _take_from_stream(tables: Iterable[pa.Table], budget: int | None) -> pa.Table:
    """Filtered batches in order until `budget` is reached (the row reaching it kept)."""
    taken, total = [], 0
    for table in tables:
        lengths = table.column("length").to_numpy()
        before = total + np.cumsum(lengths) - lengths
        keep = before < budget if budget is not None else np.ones(len(lengths), dtype=bool)
        taken.append(table.filter(pa.array(keep)))
        total += int(lengths[keep].sum())
        if budget is not None and total >= budget:
            break
    return pa.concat_tables(taken) if taken else TEXT_SCHEMA.empty_table()


# -- stats -------------------------------------------------------------------------------

def _length(table: pa.Table) -> int | None:
    """Total length of the rows; None when it was not measured (no budget, no tokenizer)."""
    if table.num_rows and table.column("length").null_count:
        return None
    return int(pc.sum(table.column("length")).as_py() or 0)


def _subset_stats(picked: pa.Table, budget: int | None, subsets, name: str) -> dict:
    tokens = _length(picked)
    exhausted = budget is not None and tokens < budget
    if exhausted:
        log.warning("subset %s exhausted: %d tokens for a budget of %d", name, tokens, budget)
    return {"weight": subsets[name] if subsets else 1, "budget_tokens": budget,
            "rows": picked.num_rows, "tokens": tokens, "exhausted": exhausted}
