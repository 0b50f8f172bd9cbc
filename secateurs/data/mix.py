"""Mix the healing corpora of any number of sources and languages by tokens, with held-out sets.

Owns the `mix` stage: `out_dir/train.parquet`, `out_dir/heldout_<lang>.parquet` (one per
language of the sources; columns text, lang, source, n_tokens) and `out_dir/stats.json`.
Every source is a Parquet file with a `text` column, a language and a weight; the Pruned
Yi design is two sources, Cosmopedia (en, weight 2) and zhwiki (zh, weight 1).

Rules, in order (all random choices come from `seed`, so the same inputs give the same
bytes):

1. Documents with empty text are dropped (counted in the stats).
2. Held-out first, per language (in the order languages first appear among the sources):
   `heldout_docs` documents drawn uniformly at random from all of the language's sources
   never enter training. Training documents whose text equals any held-out text (exact
   duplicates across or within sources) are removed too, so held-out perplexity is never
   measured on text the model was trained on (DESIGN.md: held-out text never enters
   training).
3. Shares by *tokens of the base model's tokenizer* (not rows: one zhwiki article and one
   Cosmopedia page differ several-fold in length), one per source, in proportion to the
   weights; a language's share is the sum of its sources'. With available training tokens
   T_s and weights w_s, the scarcest source relative to its weight is used whole,
   s = min_s T_s / w_s, and every other source is subsampled to s * w_s tokens by taking
   its documents in a seeded random order until that target is reached (the document that
   reaches it is kept, so the target is met or exceeded by less than one document).
   "Use all of the scarcer data" is the Pruned-Yi recipe's choice: the Chinese side
   (Wikipedia) is the limited one, the English side (Cosmopedia) can be sampled at will.
4. The training documents of all sources are shuffled together with the seed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from secateurs.io import atomic_output, write_json
from secateurs.data.tokens import count_tokens, load_tokenizer

log = logging.getLogger(__name__)

MIX_SCHEMA = pa.schema([
    ("text", pa.string()),
    ("lang", pa.string()),
    ("source", pa.string()),
    ("n_tokens", pa.int64()),
])


def mix_corpora(sources: Mapping[str, Mapping], tokenizer_dir: str | os.PathLike,
                out_dir: str | os.PathLike, *, heldout_docs: int, seed: int, threads: int = 1,
                batch_size: int = 1000) -> dict:
    """Write the mixed training set and per-language held-out sets to `out_dir`; return stats.

    `sources` maps a source name to {"path": Parquet with a `text` column, "language": code,
    "weight": share of the training tokens}; each row's `source` column is that name.
    """
    _check_sources(sources)
    weights = {name: s["weight"] for name, s in sources.items()}
    languages = list(dict.fromkeys(s["language"] for s in sources.values()))
    tokenizer = load_tokenizer(tokenizer_dir)
    rng = np.random.default_rng(seed)

    stats = {"seed": seed, "weights": weights, "ratio": language_ratio(sources),
             "tokenizer": str(tokenizer_dir)}
    names = {lang: [n for n, s in sources.items() if s["language"] == lang] for lang in languages}
    tables = {}
    for lang in languages:
        tables[lang], stats[f"empty_docs_dropped_{lang}"] = _read_texts(
            {n: sources[n]["path"] for n in names[lang]}, lang)
    tables = _with_token_counts(tables, tokenizer, threads, batch_size)
    heldout = {}
    for lang in languages:
        heldout[lang], tables[lang] = _draw_heldout(tables[lang], heldout_docs, rng, names[lang])
    train_docs, removed = _without_heldout_texts(tables, heldout)
    docs = {name: _of_source(train_docs[s["language"]], name) for name, s in sources.items()}

    targets = token_targets({name: _tokens(t) for name, t in docs.items()}, weights)
    train = pa.concat_tables([_take_to_target(docs[name], targets[name], rng) for name in docs])
    train = train.take(rng.permutation(train.num_rows))

    stats.update({f"duplicates_of_heldout_removed_{lang}": n for lang, n in removed.items()})
    stats.update(_stats(train, heldout, docs, targets, sources))
    with atomic_output(out_dir, directory=True) as tmp:
        pq.write_table(train, tmp / "train.parquet", compression="zstd")
        for lang, table in heldout.items():
            pq.write_table(table, tmp / f"heldout_{lang}.parquet", compression="zstd")
        write_json(stats, tmp / "stats.json")
    log.info("mixed %s; achieved ratio %s", stats["train"], stats["achieved_ratio"])
    return stats


def language_ratio(sources: Mapping[str, Mapping]) -> dict[str, float]:
    """Configured training-token weight per language: the sum of its sources' weights."""
    ratio: dict[str, float] = {}
    for s in sources.values():
        ratio[s["language"]] = ratio.get(s["language"], 0) + s["weight"]
    return ratio


def token_targets(available: Mapping[str, int], ratio: Mapping[str, float]) -> dict[str, int]:
    """Training tokens to take per source: all of the scarcest (relative to its weight)."""
    scale = min(available[name] / ratio[name] for name in available)
    return {name: min(available[name], int(round(scale * ratio[name]))) for name in available}


def _check_sources(sources: Mapping[str, Mapping]) -> None:
    if not sources:
        raise ValueError("mix: no sources; name at least one under data.sources in the config")
    bad = {n: s["weight"] for n, s in sources.items()
           if not (isinstance(s["weight"], (int, float)) and s["weight"] > 0)}
    if bad:
        raise ValueError(f"mix: source weights must be positive numbers, got {bad} "
                         "(config: data.sources.<name>.weight)")


def _read_texts(files: Mapping[str, str | os.PathLike], lang: str) -> tuple[pa.Table, int]:
    """Concatenate the `text` columns of `files` ({source name: path}), tagging rows with
    lang and source. Returns the table of non-empty documents and the number of empty/null
    ones dropped."""
    parts = []
    for name, path in files.items():
        schema = pq.read_schema(path)
        if "text" not in schema.names:
            raise ValueError(f"{path}: no 'text' column (has {schema.names}); the mix stage "
                             "needs the sources' text Parquet files")
        text = pq.read_table(path, columns=["text"]).column("text").cast(pa.string())
        n = len(text)
        parts.append(pa.table({"text": text, "lang": pa.array([lang] * n, pa.string()),
                               "source": pa.array([name] * n, pa.string())}))
    table = pa.concat_tables(parts).combine_chunks()
    texts = table.column("text").to_pylist()
    keep = np.fromiter((bool(t) for t in texts), dtype=bool, count=len(texts))
    return table.filter(pa.array(keep)), int((~keep).sum())


def _with_token_counts(tables: Mapping[str, pa.Table], tokenizer, threads: int,
                       batch_size: int) -> dict[str, pa.Table]:
    """Every table with its `n_tokens` column, counted in one pass over all of them (one
    pool of worker processes, however many languages there are)."""
    texts = [t for table in tables.values() for t in table.column("text").to_pylist()]
    counts = count_tokens(texts, tokenizer, threads=threads, batch_size=batch_size)
    out, start = {}, 0
    for lang, table in tables.items():
        out[lang] = table.append_column(
            "n_tokens", pa.array(counts[start:start + table.num_rows], pa.int64()))
        start += table.num_rows
    return out


def _draw_heldout(table: pa.Table, n_heldout: int, rng: np.random.Generator,
                  names: Sequence[str]) -> tuple[pa.Table, pa.Table]:
    """Draw `n_heldout` documents; return (held-out, the rest)."""
    if n_heldout < 0 or n_heldout >= table.num_rows:
        raise ValueError(
            f"sources {list(names)}: {table.num_rows} non-empty documents, cannot hold out "
            f"{n_heldout} and still train; lower data.mix.heldout_docs or add data")
    chosen = np.zeros(table.num_rows, dtype=bool)
    chosen[rng.choice(table.num_rows, size=n_heldout, replace=False)] = True
    return table.filter(pa.array(chosen)), table.filter(pa.array(~chosen))


def _without_heldout_texts(tables: Mapping[str, pa.Table], heldout: Mapping[str, pa.Table]
                           ) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """Each language's training documents minus any text held out in any language."""
    held = {_digest(t) for table in heldout.values() for t in table.column("text").to_pylist()}
    kept, removed = {}, {}
    for lang, table in tables.items():
        mask = np.array([_digest(t) not in held for t in table.column("text").to_pylist()],
                        dtype=bool)
        kept[lang], removed[lang] = table.filter(pa.array(mask)), int((~mask).sum())
    return kept, removed


def _of_source(table: pa.Table, name: str) -> pa.Table:
    return table.filter(pc.equal(table.column("source"), name))


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _tokens(table: pa.Table) -> int:
    return int(pc.sum(table.column("n_tokens")).as_py() or 0)


def _take_to_target(table: pa.Table, target: int, rng: np.random.Generator) -> pa.Table:
    """Documents in a seeded random order until `target` tokens are reached (that one kept)."""
    order = rng.permutation(table.num_rows)
    lengths = table.column("n_tokens").to_numpy()[order]
    before = np.cumsum(lengths) - lengths  # tokens taken before each document
    return table.take(order[before < target])


def _achieved_ratio(lang_tokens: Mapping[str, int], ratio: Mapping[str, float]) -> dict:
    """Training tokens per language, scaled so the last language shows its configured
    weight: {"en": 2.01, "zh": 1}."""
    ref = list(ratio)[-1]
    if not lang_tokens[ref]:
        return {lang: None for lang in ratio}
    return {lang: round(lang_tokens[lang] / lang_tokens[ref] * ratio[ref], 4) for lang in ratio}


def _stats(train: pa.Table, heldout: Mapping[str, pa.Table], available: Mapping[str, pa.Table],
           targets: Mapping[str, int], sources: Mapping[str, Mapping]) -> dict:
    ratio = language_ratio(sources)
    train_sources = np.array(train.column("source").to_pylist(), dtype=object)
    n_tokens = train.column("n_tokens").to_numpy()
    per_source = {name: {"language": s["language"], "weight": s["weight"],
                         "docs": int((train_sources == name).sum()),
                         "tokens": int(n_tokens[train_sources == name].sum()),
                         "available_docs": available[name].num_rows,
                         "available_tokens": _tokens(available[name]),
                         "target_tokens": targets[name]} for name, s in sources.items()}
    train_stats = {lang: {key: sum(v[key] for v in per_source.values() if v["language"] == lang)
                          for key in ("docs", "tokens", "available_docs", "available_tokens",
                                      "target_tokens")} for lang in ratio}
    total = sum(s["tokens"] for s in train_stats.values()) or 1
    return {
        "train": train_stats,
        "sources": per_source,
        "heldout": {lang: {"docs": t.num_rows, "tokens": _tokens(t)} for lang, t in heldout.items()},
        "achieved_ratio": _achieved_ratio({l: s["tokens"] for l, s in train_stats.items()}, ratio),
        "achieved_share": {lang: train_stats[lang]["tokens"] / total for lang in ratio},
        "train_docs": train.num_rows,
        "train_tokens": int(n_tokens.sum()),
    }
