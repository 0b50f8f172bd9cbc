"""The `wiki_convert` stage: optional OpenCC script conversion, then quality filters.

Owns what happens between a raw extract and the corpus the mixer samples from: when the
source sets an OpenCC profile, titles and texts are converted with it (`t2s` for the
Pruned Yi design: zhwiki stores each article in whichever script its editors wrote, and
the recipe heals on Simplified Chinese); any other wiki is passed through unchanged. Then
articles are dropped when too short, when too little of them is in the scripts their
language is written in (`secateurs.data.writing`: stubs that are mostly lists of Latin
names, numbers or coordinates in a Chinese wiki, markup in any wiki), or when their
normalized text was already seen. Filters run after conversion so that traditional and
simplified copies of the same text hash alike. Files are streamed in record batches, so
memory stays flat apart from one 16-byte hash per kept article.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
from collections import Counter
from pathlib import Path

import opencc
import pyarrow as pa
import pyarrow.parquet as pq

from secateurs.data.writing import script_share
from secateurs.io import atomic_output, write_json

log = logging.getLogger(__name__)

REQUIRED = ("id", "title", "url", "text")
SPACE = re.compile(r"\s+")
BATCH_ROWS = 2048


class ConvertError(ValueError):
    pass


def make_converter(profile: str) -> opencc.OpenCC:
    """OpenCC for `t2s`, `t2s.json`, `s2twp` ...; a clear error naming the valid ones."""
    name = profile[:-5] if profile.endswith(".json") else profile
    if f"{name}.json" not in opencc.CONFIGS and not Path(profile).is_file():
        raise ConvertError(f"unknown OpenCC profile {profile!r} (data.sources.<name>.opencc in the config); "
                           f"use one of {sorted(c[:-5] for c in opencc.CONFIGS)}")
    return opencc.OpenCC(name if f"{name}.json" in opencc.CONFIGS else profile)


def cjk_share(text: str) -> float:
    """Share of Han characters among the non-space characters."""
    return script_share(text, ("Han",))


def normalized_hash(text: str) -> bytes:
    """NFKC, case-folded, whitespace removed: copies differing only in spacing, full-width
    forms or case hash alike."""
    norm = SPACE.sub("", unicodedata.normalize("NFKC", text).casefold())
    return hashlib.blake2b(norm.encode("utf-8"), digest_size=16).digest()


def _check_schema(path, schema: pa.Schema) -> None:
    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        raise ConvertError(f"{path}: missing column(s) {missing}; wiki_convert reads the Parquet "
                           "that wiki_extract writes (id, title, url, text, removed_*)")


def convert_articles(in_parquets, out_parquet, stats_json, *, profile, min_chars,
                     min_script_share, scripts, dedup) -> dict:
    """Convert (when `profile` is not None) and filter the extract files; write the kept
    rows (all input columns) and stats (rows in/out, counts dropped per reason).

    `scripts` are the writing systems the text is expected in (e.g. ("Latin",)); an
    article with less than `min_script_share` of its characters in them is dropped.
    Returns the stats.
    """
    if isinstance(in_parquets, (str, Path)):
        in_parquets = [in_parquets]
    t0 = time.perf_counter()
    convert = make_converter(profile).convert if profile else _unchanged
    files = [pq.ParquetFile(p) for p in in_parquets]
    for path, f in zip(in_parquets, files):
        _check_schema(path, f.schema_arrow)
    schema = files[0].schema_arrow if files else pa.schema([(c, pa.string()) for c in REQUIRED])
    seen: set[bytes] = set()
    dropped: Counter = Counter()
    rows_in = rows_out = chars_in = chars_out = converted = 0
    with atomic_output(out_parquet) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for path, f in zip(in_parquets, files):
                for batch in f.iter_batches(batch_size=BATCH_ROWS):
                    kept = []
                    for row in batch.to_pylist():
                        rows_in += 1
                        chars_in += len(row["text"] or "")
                        text = convert(row["text"] or "")
                        converted += text != row["text"]
                        reason = _reject(text, min_chars, min_script_share, scripts, dedup,
                                         seen)
                        if reason:
                            dropped[reason] += 1
                            continue
                        row["text"], row["title"] = text, convert(row["title"] or "")
                        chars_out += len(text)
                        kept.append(row)
                    if kept:
                        writer.write_table(pa.Table.from_pylist(kept, schema=schema))
                        rows_out += len(kept)
    stats = {"inputs": [str(p) for p in in_parquets], "profile": profile,
             "min_chars": min_chars, "min_script_share": min_script_share,
             "scripts": list(scripts), "dedup": dedup,
             "rows_in": rows_in, "rows_out": rows_out, "dropped": dict(sorted(dropped.items())),
             "texts_changed_by_opencc": converted, "chars_in": chars_in, "chars_out": chars_out,
             "seconds": round(time.perf_counter() - t0, 3)}
    write_json(stats, stats_json)
    log.info("kept %d of %d articles (%s)", rows_out, rows_in,
             ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()) or "none dropped")
    return stats


def _unchanged(text: str) -> str:
    return text


def _reject(text: str, min_chars: int, min_share: float, scripts, dedup: bool,
            seen: set) -> str | None:
    if len(text) < min_chars:
        return "too_short"
    if min_share and script_share(text, scripts) < min_share:
        return "low_script_share"
    if dedup:
        h = normalized_hash(text)
        if h in seen:
            return "duplicate"
        seen.add(h)
    return None
