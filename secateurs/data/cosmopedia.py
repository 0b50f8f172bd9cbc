"""Sample Cosmopedia (or any corpus with its schema) to a token budget with a seed.

The workflow samples every text source, Cosmopedia included, with `secateurs.data.text`,
which reuses this module's budget split, per-subset seeds and readers; `sample_cosmopedia`
stays as the library call that keeps Cosmopedia's exact six columns.

Owns the Cosmopedia sample: one Parquet file with exactly Cosmopedia's six columns
(text, prompt, audience, format, seed_data, token_length) and a stats JSON.

Cosmopedia (HuggingFaceTB/cosmopedia) is split into configs ("subsets": web_samples_v1,
stories, stanford, khanacademy, openstax, wikihow, auto_math_text); each row carries
`token_length`, its length in tokens as the dataset's authors counted them (not with our
base model's tokenizer: the `mix` stage recounts with that), so a budget can be met
without tokenizing anything here. The
budget is divided between subsets by weight; each subset is read in a seeded random order
and rows are taken until the sum of `token_length` reaches its budget (the row that
reaches it is kept). Sources:

- local files (`.parquet`, `.jsonl`, `.jsonl.gz`, `.json`) or a directory of them; with
  `subsets`, each subset is the directory `source/<name>` or, in the hub's layout,
  `source/data/<name>`. The seeded order is a full permutation of the subset;
- a hub dataset name, read with `datasets` in streaming mode (nothing downloaded in full);
  the seeded order is `IterableDataset.shuffle(seed, buffer_size)`, the approximate
  shuffle streaming allows.

Both orders are cut by the same rule (`take_to_budget`; `_sample_table` is its vectorised
form for in-memory tables) and written by `_write`. Same inputs and config, same bytes.
`streaming=True` on a local path reads it through the hub's streaming code, which is how
the tests exercise that path offline.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from secateurs.io import atomic_output, write_json

log = logging.getLogger(__name__)

COSMOPEDIA_SCHEMA = pa.schema([
    ("text", pa.string()),
    ("prompt", pa.string()),
    ("audience", pa.string()),
    ("format", pa.string()),
    ("seed_data", pa.string()),
    ("token_length", pa.int64()),
])
COLUMNS = COSMOPEDIA_SCHEMA.names
LOCAL_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json")
ALL = "all"  # the subset name used when no subsets are configured


def sample_cosmopedia(source: str | os.PathLike, out_parquet: str | os.PathLike,
                      stats_json: str | os.PathLike, *, token_budget: int, seed: int = 0,
                      subsets: Mapping[str, float] | None = None, split: str = "train",
                      streaming: bool | None = None, shuffle_buffer: int = 10_000) -> dict:
    """Write a seeded sample of `source` of about `token_budget` tokens; return the stats.

    `subsets` maps config/subdirectory name to weight; None samples the whole source.
    `streaming` defaults to True for hub names and False for local paths (which are then
    fully permuted); forcing it on for a local path reads it through the same `datasets`
    streaming code the hub takes. `shuffle_buffer` only matters when streaming.
    """
    if token_budget <= 0:
        raise ValueError(f"token_budget must be positive, got {token_budget}")
    budgets = split_budget(token_budget, subsets)
    local = _is_local(source)
    streaming = (not local) if streaming is None else streaming
    parts, subset_stats = [], {}
    for name, budget in budgets.items():
        subset_seed = _subset_seed(seed, name)
        if not streaming:
            table = _read_local_subset(Path(source), name if subsets else None)
            picked, available = _sample_table(table, budget, subset_seed), table.num_rows
        else:
            rows = _stream(source, name if subsets else None, split, subset_seed,
                           shuffle_buffer, local)
            picked, available = pa.Table.from_pylist(take_to_budget(rows, budget),
                                                     schema=COSMOPEDIA_SCHEMA), None
        parts.append(picked)
        subset_stats[name] = _subset_stats(picked, budget, available, subsets, name)
    table = pa.concat_tables(parts) if parts else COSMOPEDIA_SCHEMA.empty_table()
    stats = {"source": str(source), "split": split, "seed": seed, "token_budget": token_budget,
             "rows": table.num_rows, "tokens": _tokens(table), "subsets": subset_stats}
    _write(table, out_parquet)
    write_json(stats, stats_json)
    log.info("sampled %d rows, %d tokens (budget %d) from %s",
             stats["rows"], stats["tokens"], token_budget, source)
    return stats


def split_budget(token_budget: int, subsets: Mapping[str, float] | None) -> dict[str, int]:
    """Divide the budget between subsets in proportion to their weights (rounded)."""
    if not subsets:
        return {ALL: token_budget}
    bad = {k: v for k, v in subsets.items() if not (isinstance(v, (int, float)) and v > 0)}
    if bad:
        raise ValueError(f"cosmopedia subsets weights must be positive numbers, got {bad} "
                         "(config: cosmopedia.subsets, e.g. {stories: 1, web_samples_v1: 2})")
    total = sum(subsets.values())
    return {name: int(round(token_budget * weight / total)) for name, weight in subsets.items()}


def take_to_budget(rows: Iterable[dict], budget: int) -> list[dict]:
    """Rows in the given order until their `token_length` sum reaches `budget`."""
    taken, tokens = [], 0
    with tqdm(total=budget, unit="tok", unit_scale=True, desc="cosmopedia", disable=None) as bar:
        for row in rows:
            if tokens >= budget:
                break
            row = _conform(row, "stream")
            taken.append(row)
            tokens += row["token_length"]
            bar.update(row["token_length"])
    return taken


def _subset_seed(seed: int, name: str) -> int:
    """A per-subset seed that does not depend on the order the subsets are listed in."""
    return (seed * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % 2**32


# -- local files -------------------------------------------------------------------------

def _is_local(source) -> bool:
    path = Path(source)
    if path.exists():
        return True
    if str(source).count("/") == 1 and not str(source).startswith((".", "/")):
        return False  # "owner/name": a hub dataset
    raise FileNotFoundError(f"dataset {source}: no such file or directory, and not "
                            "a hub dataset name like 'HuggingFaceTB/cosmopedia'")


def _local_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(LOCAL_SUFFIXES))


def _read_local_subset(source: Path, subset: str | None) -> pa.Table:
    root = source
    if subset is not None:
        if source.is_file():
            raise ValueError(f"{source}: subsets {subset!r} given but source is a single file; "
                             "point source at a directory with one folder per subset")
        candidates = [source / subset, source / "data" / subset]
        root = next((c for c in candidates if c.exists()), None)
        if root is None:
            raise FileNotFoundError(f"{source}: no folder for subset {subset!r} (looked for "
                                    f"{', '.join(map(str, candidates))})")
    files = _local_files(root)
    if not files:
        raise FileNotFoundError(f"{root}: no {', '.join(LOCAL_SUFFIXES)} files")
    return pa.concat_tables([_read_local_file(f) for f in files])


def _read_local_file(path: Path) -> pa.Table:
    if path.name.endswith(".parquet"):
        names = pq.read_schema(path).names
        _check_columns(names, path)
        table = pq.read_table(path, columns=COLUMNS)
        return _cast(table, path)
    rows = list(_json_rows(path))
    for row in rows:
        _check_columns(row, path)
    return _cast(pa.Table.from_pylist([{c: row[c] for c in COLUMNS} for row in rows]), path)


def _json_rows(path: Path) -> Iterator[dict]:
    if path.name.endswith(".json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        yield from data if isinstance(data, list) else data.get("data", [data])
        return
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{line_number}: not valid JSON ({err})") from err


def _check_columns(names, path) -> None:
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{path}: missing Cosmopedia field(s) {missing}; every row needs "
                         f"{COLUMNS} (token_length = length of text in tokens)")


def _cast(table: pa.Table, path) -> pa.Table:
    if table.num_rows and table.column("token_length").null_count:
        raise ValueError(f"{path}: null token_length; every row needs its length in tokens")
    try:
        return table.cast(COSMOPEDIA_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ValueError(f"{path}: columns do not match Cosmopedia's types {COSMOPEDIA_SCHEMA} "
                         f"({err})") from err


def _sample_table(table: pa.Table, budget: int, seed: int) -> pa.Table:
    """`take_to_budget` over a seeded permutation, vectorised for in-memory tables."""
    order = np.random.default_rng(seed).permutation(table.num_rows)
    lengths = table.column("token_length").to_numpy()[order]
    before = np.cumsum(lengths) - lengths
    return table.take(order[before < budget])


# -- the hub -----------------------------------------------------------------------------

def _stream(source, subset: str | None, split: str, seed: int, buffer_size: int,
            local: bool) -> Iterator[dict]:
    """Rows of a dataset (config) in a seeded streaming-shuffle order.

    `IterableDataset.shuffle` shuffles the shard order and then draws from a buffer of
    `buffer_size` rows, so the order is fixed by the seed but only approximately uniform;
    the `datasets` docs recommend a buffer well above the shard size for a good mix.
    Stopping a Parquet stream early costs a fixed 5 s in datasets 5.2 (it waits for Arrow's
    threads, apache/arrow#45214): once per subset, negligible against a hub download.
    """
    from datasets import load_dataset

    if local:
        dataset = load_dataset(**_local_loader_args(Path(source), subset), split=split,
                               streaming=True)
    else:
        dataset = load_dataset(str(source), subset, split=split, streaming=True)
    yield from dataset.shuffle(seed=seed, buffer_size=buffer_size)


def _local_loader_args(source: Path, subset: str | None) -> dict:
    """`load_dataset` arguments for a local file, directory or hub-layout subset folder."""
    if source.is_file():
        builder = "parquet" if source.name.endswith(".parquet") else "json"
        return {"path": builder, "data_files": str(source)}
    if subset is None:
        return {"path": str(source)}
    folder = next((d for d in (subset, f"data/{subset}") if (source / d).is_dir()), None)
    if folder is None:
        raise FileNotFoundError(f"{source}: no folder for subset {subset!r} (looked for "
                                f"{source / subset}, {source / 'data' / subset})")
    return {"path": str(source), "data_dir": folder}


def _conform(row: dict, where: str) -> dict:
    _check_columns(row, where)
    if row["token_length"] is None:
        raise ValueError(f"{where}: row without token_length")
    return {c: (int(row[c]) if c == "token_length" else row[c]) for c in COLUMNS}


# -- output ------------------------------------------------------------------------------

def _tokens(table: pa.Table) -> int:
    return int(table.column("token_length").to_numpy().sum()) if table.num_rows else 0


def _subset_stats(picked: pa.Table, budget: int, available: int | None,
                  subsets: Mapping[str, float] | None, name: str) -> dict:
    tokens = _tokens(picked)
    if tokens < budget:
        log.warning("subset %s exhausted: %d tokens for a budget of %d", name, tokens, budget)
    return {"weight": subsets[name] if subsets else 1, "budget_tokens": budget,
            "rows": picked.num_rows, "tokens": tokens, "available_rows": available,
            "exhausted": tokens < budget}


def _write(table: pa.Table, path) -> None:
    # One fixed row-group size and codec, so the same rows always give the same bytes.
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=65_536)
