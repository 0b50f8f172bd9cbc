"""Mix the English and Chinese healing corpora to a ratio by tokens, with held-out sets.

Owns the `mix` stage: `out_dir/train.parquet`, `out_dir/heldout_<lang>.parquet` (columns
text, lang, source, n_tokens) and `out_dir/stats.json`.

Rules, in order (all random choices come from `seed`, so the same inputs give the same
bytes):

1. Documents with empty text are dropped (counted in the stats).
2. Held-out first: `heldout_docs` documents per language are drawn uniformly at random and
   never enter training. Training documents whose text equals a held-out text (exact
   duplicates across or within sources) are removed too, so held-out perplexity is never
   measured on text the model was trained on (DESIGN.md: held-out text never enters
   training).
3. Ratio by *tokens of the base model's tokenizer* (not rows: one zhwiki article and one
   Cosmopedia page differ several-fold in length). With available training tokens T_l and
   weights w_l, the scarcest language relative to its weight is used whole,
   s = min_l T_l / w_l, and every other language is subsampled to s * w_l tokens by taking
   its documents in a seeded random order until that target is reached (the document that
   reaches it is kept, so the target is met or exceeded by less than one document).
   "Use all of the scarcer data" is the Pruned-Yi recipe's choice: the Chinese side
   (Wikipedia) is the limited one, the English side (Cosmopedia) can be sampled at will.
4. The training documents of all languages are shuffled together with the seed.
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


def mix_corpora(english: Sequence[str | os.PathLike], chinese: Sequence[str | os.PathLike],
                tokenizer_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                ratio: Mapping[str, float] | None = None, heldout_docs: int = 50, seed: int = 0,
                threads: int = 1, batch_size: int = 1000) -> dict:
    """Write the mixed training set and per-language held-out sets to `out_dir`; return stats.

    `english`/`chinese` are Parquet files with a `text` column; each row's `source` is the
    file's stem (e.g. "cosmopedia", "zhwiki"). `ratio` maps language to weight, default
    {"en": 2, "zh": 1}.
    """
    ratio = dict(ratio or {"en": 2, "zh": 1})
    corpora = {"en": list(english), "zh": list(chinese)}
    _check_ratio(ratio, corpora)
    tokenizer = load_tokenizer(tokenizer_dir)
    rng = np.random.default_rng(seed)

    docs, heldout, stats = {}, {}, {"seed": seed, "ratio": ratio, "tokenizer": str(tokenizer_dir)}
    for lang, files in corpora.items():
        table, stats[f"empty_docs_dropped_{lang}"] = _read_texts(files, lang)
        table = table.append_column("n_tokens", pa.array(
            count_tokens(table.column("text").to_pylist(), tokenizer, threads=threads,
                         batch_size=batch_size), pa.int64()))
        heldout[lang], docs[lang], stats[f"duplicates_of_heldout_removed_{lang}"] = _split_heldout(
            table, heldout_docs, rng, files)

    targets = token_targets({lang: _tokens(t) for lang, t in docs.items()}, ratio)
    train_parts = [_take_to_target(docs[lang], targets[lang], rng) for lang in docs]
    train = pa.concat_tables(train_parts)
    train = train.take(rng.permutation(train.num_rows))

    stats.update(_stats(train, heldout, docs, targets, ratio))
    with atomic_output(out_dir, directory=True) as tmp:
        pq.write_table(train, tmp / "train.parquet", compression="zstd")
        for lang, table in heldout.items():
            pq.write_table(table, tmp / f"heldout_{lang}.parquet", compression="zstd")
        write_json(stats, tmp / "stats.json")
    log.info("mixed %s; achieved ratio %s", stats["train"], stats["achieved_ratio"])
    return stats


def token_targets(available: Mapping[str, int], ratio: Mapping[str, float]) -> dict[str, int]:
    """Training tokens to take per language: all of the scarcest (relative to its weight)."""
    scale = min(available[lang] / ratio[lang] for lang in available)
    return {lang: min(available[lang], int(round(scale * ratio[lang]))) for lang in available}


def _check_ratio(ratio: Mapping[str, float], corpora: Mapping[str, list]) -> None:
    if set(ratio) != set(corpora):
        raise ValueError(f"mix ratio keys {sorted(ratio)} must be exactly {sorted(corpora)} "
                         "(config: mix.ratio, e.g. {en: 2, zh: 1})")
    bad = {k: v for k, v in ratio.items() if not (isinstance(v, (int, float)) and v > 0)}
    if bad:
        raise ValueError(f"mix ratio weights must be positive numbers, got {bad}")
    empty = [lang for lang, files in corpora.items() if not files]
    if empty:
        raise ValueError(f"mix: no input files for {empty}; give at least one Parquet file each")


def _read_texts(files: Sequence, lang: str) -> tuple[pa.Table, int]:
    """Concatenate the `text` columns of `files`, tagging rows with lang and source.

    Returns the table of non-empty documents and the number of empty/null ones dropped.
    """
    parts = []
    for path in files:
        schema = pq.read_schema(path)
        if "text" not in schema.names:
            raise ValueError(f"{path}: no 'text' column (has {schema.names}); the mix stage "
                             "needs the Cosmopedia sample or the converted Wikipedia articles")
        text = pq.read_table(path, columns=["text"]).column("text").cast(pa.string())
        n = len(text)
        parts.append(pa.table({"text": text, "lang": pa.array([lang] * n, pa.string()),
                               "source": pa.array([Path(path).name.split(".")[0]] * n,
                                                  pa.string())}))
    table = pa.concat_tables(parts).combine_chunks()
    texts = table.column("text").to_pylist()
    keep = np.fromiter((bool(t) for t in texts), dtype=bool, count=len(texts))
    return table.filter(pa.array(keep)), int((~keep).sum())


def _split_heldout(table: pa.Table, n_heldout: int, rng: np.random.Generator,
                   files: Sequence) -> tuple[pa.Table, pa.Table, int]:
    """Draw `n_heldout` documents; return (held-out, train without their texts, n removed)."""
    if n_heldout < 0 or n_heldout >= table.num_rows:
        raise ValueError(
            f"{[str(f) for f in files]}: {table.num_rows} non-empty documents, cannot hold out "
            f"{n_heldout} and still train; lower mix.heldout_docs or add data")
    chosen = np.zeros(table.num_rows, dtype=bool)
    chosen[rng.choice(table.num_rows, size=n_heldout, replace=False)] = True
    heldout = table.filter(pa.array(chosen))
    heldout_hashes = {_digest(t) for t in heldout.column("text").to_pylist()}
    train_mask = np.array([not c and _digest(t) not in heldout_hashes
                           for c, t in zip(chosen, table.column("text").to_pylist())], dtype=bool)
    duplicates = int((~chosen).sum() - train_mask.sum())
    return heldout, table.filter(pa.array(train_mask)), duplicates


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


def _achieved_ratio(train_stats: Mapping[str, dict], ratio: Mapping[str, float]) -> dict:
    ref = list(ratio)[-1]
    ref_tokens = train_stats[ref]["tokens"]
    if not ref_tokens:
        return {lang: None for lang in ratio}
    return {lang: round(s["tokens"] / ref_tokens * ratio[ref], 4) for lang, s in train_stats.items()}


def _stats(train: pa.Table, heldout: Mapping[str, pa.Table], available: Mapping[str, pa.Table],
           targets: Mapping[str, int], ratio: Mapping[str, float]) -> dict:
    langs = list(heldout)
    train_langs = np.array(train.column("lang").to_pylist(), dtype=object)
    n_tokens = train.column("n_tokens").to_numpy()
    train_stats = {lang: {"docs": int((train_langs == lang).sum()),
                          "tokens": int(n_tokens[train_langs == lang].sum()),
                          "available_docs": available[lang].num_rows,
                          "available_tokens": _tokens(available[lang]),
                          "target_tokens": targets[lang]} for lang in langs}
    total = sum(s["tokens"] for s in train_stats.values()) or 1
    return {
        "train": train_stats,
        "heldout": {lang: {"docs": t.num_rows, "tokens": _tokens(t)} for lang, t in heldout.items()},
        # Scaled so the last language shows its configured weight: {"en": 2.01, "zh": 1}.
        "achieved_ratio": _achieved_ratio(train_stats, ratio),
        "achieved_share": {lang: train_stats[lang]["tokens"] / total for lang in langs},
        "train_docs": train.num_rows,
        "train_tokens": int(n_tokens.sum()),
    }
