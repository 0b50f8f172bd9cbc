"""The `wiki_extract` stage: a dump in, one Parquet of clean articles and a stats file out.

Owns the orchestration: which pages to keep (main namespace, no redirects, no
disambiguation pages), the worker pool, the progress bar, the output schema and the
stats. Parsing bytes is `dump`'s job, cleaning wikitext `clean`'s.

Parallelism (`threads`): a multistream dump with its index is split by byte ranges, and
each of `threads` worker processes decompresses, parses and cleans its own ranges; this
scales with cores. Any other dump is read by the main process while `threads - 1`
workers clean batches of pages; that is about 2x at 2 threads and bounded by the reader
beyond. Its decompression runs beside the XML parser, at one process too: a single-stream
.xml.bz2 (the usual download) is cut into its bz2 blocks, which decoder threads decompress
in parallel (`bz2blocks`; bz2 releases the GIL), so it costs little more than its XML where
the machine has a free core. At most two tasks per worker are in flight, which keeps memory flat
however large the dump, and results are written in dump order, so the output does not
depend on `threads`.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import multiprocessing as mp
import os
import time
from xml.etree.ElementTree import XMLPullParser
from collections import Counter, deque
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from secateurs.io import atomic_output, write_json
from .clean import COUNTED, CleanOptions, clean_wikitext
from .converter import FALLBACK
from .dump import (DumpError, Page, _local, _siteinfo_from, find_index, iter_dump,
                   read_header, stream_offsets)
from .language import Language, build_language, code_from_siteinfo

log = logging.getLogger(__name__)

SCHEMA = pa.schema([("id", pa.int64()), ("title", pa.string()), ("url", pa.string()),
                    ("text", pa.string())] + [(f"removed_{k}", pa.int64()) for k in COUNTED])
DISAMBIG_TITLE = ("(disambiguation)", "（消歧义）", "（消歧義）", "(消歧义)", "(消歧義)")
BATCH_CHARS = 500_000          # wikitext per task sent to a worker
ROW_GROUP_CHARS = 4_000_000   # clean text per Parquet row group
MAX_BAD_LISTED = 200
SECTIONS_KEY = "_sections"     # per-title counts of dropped trailing sections, not a column
SCRIPT_SAMPLE_ROWS = 200       # kept articles whose script is compared with the language


# --- one page -------------------------------------------------------------------------

def _is_redirect(page: Page, lang: Language) -> bool:
    if page.redirect is not None:
        return True
    head = page.text.lstrip()[:40].upper()
    return any(head.startswith(w.upper()) for w in lang.redirect_words)


def process_page(page: Page, lang: Language, opts: CleanOptions) -> tuple[dict | None, str]:
    """(row, "kept") or (None, reason dropped)."""
    if page.error:
        return None, "bad_page"
    if page.ns != 0:
        return None, "namespace"
    if _is_redirect(page, lang):
        return None, "redirect"
    if page.model and page.model != "wikitext":
        return None, "not_wikitext"
    if not page.text.strip():
        return None, "empty"
    if any(page.title.endswith(t) for t in DISAMBIG_TITLE):
        return None, "disambiguation"
    text, counts, disambig = clean_wikitext(page.text, lang, opts)
    if disambig:
        return None, "disambiguation"
    if not text:
        return None, "empty_after_cleaning"
    row = {"id": page.id, "title": page.title, "url": lang.url(page.id), "text": text}
    row.update({f"removed_{k}": counts.get(k, 0) for k in COUNTED})
    row[SECTIONS_KEY] = {k[len("section:"):]: v for k, v in counts.items() if k.startswith("section:")}
    return row, "kept"


class Batch:
    """What a worker sends back: rows in dump order plus its counts."""

    def __init__(self):
        self.rows: list[dict] = []
        self.reasons: Counter = Counter()
        self.bad: list[dict] = []
        self.chars_in = 0
        self.raw_bytes = 0
        self.sections: Counter = Counter()

    def add(self, page: Page, lang: Language, opts: CleanOptions) -> None:
        self.chars_in += len(page.text or "")
        try:
            row, reason = process_page(page, lang, opts)
        except Exception as e:  # one bad page must not stop a million-page dump
            row, reason = None, "bad_page"
            page.error = f"cleaning failed: {type(e).__name__}: {e}"
        self.reasons[reason] += 1
        if reason == "bad_page":
            log.warning("skipping bad page id=%s title=%r: %s", page.id, page.title, page.error)
            self.bad.append({"id": page.id, "title": page.title, "error": page.error})
        if row is not None:
            self.sections.update(row.pop(SECTIONS_KEY))
            self.rows.append(row)


# --- workers --------------------------------------------------------------------------

_STATE: dict = {}


def _init_worker(lang: Language, opts: CleanOptions) -> None:
    _STATE["lang"], _STATE["opts"] = lang, opts
    _tune_gc()


def _tune_gc() -> tuple[int, ...]:
    """Parsing allocates millions of short-lived objects and makes few reference cycles,
    so CPython's default collector (a pass every 700 allocations, and full passes over
    every object, imported modules included) costs a large share of the run: freeze what
    is already allocated and collect less often. Returns the old thresholds."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    return old


@contextlib.contextmanager
def _gc_tuned():
    old = _tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _clean_pages(pages: list[Page]) -> Batch:
    batch = Batch()
    for page in pages:
        batch.add(page, _STATE["lang"], _STATE["opts"])
    return batch


def _clean_range(path: str, start: int, end: int, header: bytes) -> Batch:
    batch = Batch()
    for item in iter_dump(path, start=start, end=end, header=header):
        if isinstance(item, Page):
            batch.add(item, _STATE["lang"], _STATE["opts"])
    batch.raw_bytes = end - start
    return batch


def _page_batches(pages: Iterable[Page]) -> Iterator[list[Page]]:
    batch, size = [], 0
    for page in pages:
        batch.append(page)
        size += len(page.text or "")
        if size >= BATCH_CHARS or len(batch) >= 500:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _run(tasks: Iterable[tuple], workers: int, lang: Language, opts: CleanOptions
         ) -> Iterator[Batch]:
    """Run (function, args) tasks in order: in this process (`workers=0`) or in a pool of
    `workers` processes with at most two tasks each in flight."""
    if workers == 0:
        _STATE["lang"], _STATE["opts"] = lang, opts
        for fn, args in tasks:
            yield fn(*args)
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(lang, opts)) as pool:
        pending: deque = deque()
        for fn, args in tasks:
            pending.append(pool.apply_async(fn, args))
            while len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


# --- the stage ------------------------------------------------------------------------

def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total / 1e6, unit="MB", unit_scale=False, disable=not enabled,
                desc="wiki_extract", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} MB "
                "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")


def _multistream_tasks(path: str, index: Path) -> tuple[dict | None, Iterator[tuple]]:
    offsets = stream_offsets(index)
    size = os.path.getsize(path)
    if not offsets:
        raise ValueError(f"{index}: the multistream index lists no streams; pass the index "
                         f"that belongs to {path}, or index=None to read the dump serially")
    header = read_header(path, offsets[0])
    siteinfo = _header_siteinfo(header)
    bounds = offsets + [size]
    target = max(1 << 18, min(8 << 20, (size // 32) or 1))

    def tasks():
        start = bounds[0]
        for i in range(1, len(bounds)):
            if bounds[i] - start >= target or i == len(bounds) - 1:
                yield _clean_range, (path, start, bounds[i], header)
                start = bounds[i]
    return siteinfo, tasks()


def _header_siteinfo(header: bytes) -> dict | None:
    parser = XMLPullParser(events=("start", "end"))
    parser.feed(header)
    root = None
    for event, elem in parser.read_events():
        if event == "start" and root is None:
            root = elem
        if event == "end" and _local(elem.tag) == "siteinfo":
            return _siteinfo_from(elem, root.get("{http://www.w3.org/XML/1998/namespace}lang"))
    return None


def extract_dump(dump_path, out_parquet, stats_json, *, threads: int, language=None,
                 keep_headings=False, keep_math=False, keep_code=False,
                 variant="zh-hans", progress=True, index=None,
                 accept_unterminated=False) -> dict:
    """Extract the main-namespace articles of a MediaWiki dump to Parquet.

    `language=None` takes it from `<siteinfo>` (dbname `zhwiki` -> zh), else "zh".
    `variant` picks the text of `-{zh-hans:...;zh-hant:...}-` (zh-hans, zh-hant, zh-cn,
    zh-tw, zh-hk, zh-sg, zh-mo, zh-my). `index` is a multistream index
    (`...-multistream-index.txt.bz2`); by default one beside the dump is used when
    present; `index=False` reads the dump serially. Output columns: id, title, url, text
    and `removed_<what>` counts (see `clean.COUNTED`). Returns the stats also written to
    `stats_json`. Nothing is written when the dump is corrupt (`DumpError`), truncated
    (`TruncatedDumpError`, unless `accept_unterminated` keeps its complete pages), not a
    MediaWiki export (`NotADumpError`), or when no article survives (`NoArticlesError`).
    """
    path = str(dump_path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"wiki dump {path} does not exist; set data.wiki.dump in the "
                                "config to a pages-articles .xml or .xml.bz2 file")
    if variant not in FALLBACK:
        raise ValueError(f"unknown zh variant {variant!r} (data.wiki.variant in the config); "
                         f"use one of {sorted(FALLBACK)}")
    opts = CleanOptions(keep_headings, keep_math, keep_code, variant)
    threads = max(1, int(threads))
    index = None if index is False else Path(index) if index else find_index(path)
    t0 = time.perf_counter()
    size = os.path.getsize(path)
    bar = _progress(size, progress)
    notes: dict = {}
    # read serially, the main process is busy reading (decompressing in threads): it
    # counts as one of the `threads`, the others clean
    workers = 0 if threads == 1 else threads if index is not None else threads - 1
    if index is not None:
        siteinfo, tasks = _multistream_tasks(path, index)
    else:
        # the siteinfo sits at the head: take it first so the language is known up front;
        # decompression runs in threads beside the parser (bz2 releases the GIL)
        siteinfo, tasks = _serial_tasks(path, bar, accept_unterminated, notes,
                                        forks=workers > 0)
    lang = build_language(language, siteinfo)
    log.info("extracting %s as language %r (siteinfo: %s), %d process(es)%s", path, lang.code,
             code_from_siteinfo(siteinfo) if siteinfo else "none", threads,
             f", multistream index {index}" if index else "")
    try:
        with _gc_tuned():
            stats = _write(path, out_parquet, _run(tasks, workers, lang, opts),
                           bar, multistream=index is not None)
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    scripts = stats.pop("scripts")
    if not stats["pages_kept"]:
        Path(out_parquet).unlink(missing_ok=True)
        raise NoArticlesError(path, stats)
    if notes:
        stats["unterminated"] = notes
    warning = script_mismatch(lang.code, scripts) if language is None and siteinfo else None
    if warning:
        log.warning("%s: %s", path, warning)
        stats["language_warning"] = warning
    stats.update({
        "dump": path, "dump_bytes": size, "language": lang.code, "variant": variant,
        "siteinfo": bool(siteinfo), "multistream_index": str(index) if index else None,
        "threads": threads, "seconds": round(elapsed, 3),
        "pages_per_second": round(stats["pages_seen"] / elapsed, 1) if elapsed else None,
        "mb_per_second": round(size / 1e6 / elapsed, 2) if elapsed else None,
    })
    write_json(stats, stats_json)
    log.info("kept %d of %d pages (%s)", stats["pages_kept"], stats["pages_seen"],
             ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()))
    return stats


def _peek_siteinfo(path: str, accept_unterminated: bool) -> dict | None:
    for item in iter_dump(path, accept_unterminated=accept_unterminated):
        return item if isinstance(item, dict) and "unterminated" not in item else None
    return None


def _serial_tasks(path: str, bar, accept_unterminated: bool, notes: dict, *, forks: bool
                  ) -> tuple[dict | None, Iterator[tuple]]:
    """The dump's siteinfo and its cleaning tasks. Alone (no worker processes) one pass
    over the file gives both. When worker processes will be forked, the siteinfo comes
    from a separate look at the head and the reader starts only when the tasks are
    iterated: a process must not fork while its decoder threads run."""
    stream = iter_dump(path, progress=lambda pos: bar.update(pos / 1e6 - bar.n),
                       threaded=True, accept_unterminated=accept_unterminated)
    if forks:
        siteinfo, head = _peek_siteinfo(path, accept_unterminated), []
    else:
        first = next(stream, None)
        siteinfo = first if isinstance(first, dict) and "unterminated" not in first else None
        head = [] if first is None or siteinfo is not None else [first]

    def pages() -> Iterator[Page]:
        for item in itertools.chain(head, stream):
            if isinstance(item, Page):
                yield item
            elif "unterminated" in item:
                notes.update(item)
    return siteinfo, ((_clean_pages, (batch,)) for batch in _page_batches(pages()))


class NoArticlesError(ValueError):
    """A dump from which no article survives: failing here names the file and why, instead
    of an empty corpus that a later stage blames on its own input."""

    def __init__(self, path: str, stats: dict):
        self.path, self.stats = path, stats
        why = (", ".join(f"{k} {v}" for k, v in stats["dropped"].items())
               if stats["pages_seen"] else "it holds no <page> at all")
        bad = "; ".join(f"{b['title']!r}: {b['error']}" for b in stats["bad_page_list"][:3])
        super().__init__(f"{path}: no article survives extraction ({stats['pages_seen']} pages "
                         f"read; dropped: {why}){'; bad pages: ' + bad if bad else ''}. Fix: "
                         "check that the wiki source's path (data.sources.<name>.path) is a pages-articles dump of "
                         "main-namespace articles")

    def __reduce__(self):
        return type(self), (self.path, self.stats)


# --- is the text in the language the siteinfo says? ------------------------------------

#: the script a wiki's articles are written in, where it is not Latin
SCRIPT_OF = {**dict.fromkeys(("zh", "zh-yue", "yue", "wuu", "gan", "zh-classical", "lzh",
                              "ja"), "han"),
             **dict.fromkeys(("ru", "bg", "uk", "be", "sr", "mk", "kk", "ky", "tg", "mn",
                              "ba", "tt", "cv", "ce", "os", "sah", "be-tarask"), "cyrillic")}
#: scripts this check does not know: no opinion on these wikis
OTHER_SCRIPT_WIKIS = {"ko", "ar", "fa", "he", "hi", "th", "el", "ka", "hy", "ur", "bn", "ta",
                      "te", "ml", "mr", "ne", "si", "km", "my", "lo", "am", "gu", "kn", "pa"}


def script_counts(text: str) -> Counter:
    counts: Counter = Counter()
    for ch in text:
        if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\u3040" <= ch <= "\u30ff":
            counts["han"] += 1
        elif "\u0400" <= ch <= "\u04ff":
            counts["cyrillic"] += 1
        elif ch.isascii() and ch.isalpha() or "\u00c0" <= ch <= "\u024f":
            counts["latin"] += 1
    return counts


def script_mismatch(code: str, scripts: Counter) -> str | None:
    """A warning when the articles are mostly in another script than the language taken
    from the siteinfo expects (DBpedia's zh minidump wraps a zhwiki page in an enwiki
    header): its namespace names and URLs would be the wrong wiki's."""
    if code in OTHER_SCRIPT_WIKIS or not sum(scripts.values()):
        return None
    expected = SCRIPT_OF.get(code, "latin")
    seen, n = scripts.most_common(1)[0]
    if seen == expected or n < 0.5 * sum(scripts.values()):
        return None
    return (f"the siteinfo says language {code!r} ({expected} script) but the articles are "
            f"mostly in {seen} script; set data.wiki.language to the dump's language so "
            "names and article URLs are that wiki's")


def _write(path: str, out_parquet, batches: Iterable[Batch], bar, *, multistream: bool) -> dict:
    reasons: Counter = Counter()
    removed: Counter = Counter()
    bad: list[dict] = []
    sections: Counter = Counter()
    scripts: Counter = Counter()
    kept = chars_in = chars_out = 0
    with atomic_output(out_parquet) as tmp:
        with pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer:
            buffered: list[dict] = []
            buffered_chars = 0
            for batch in batches:
                # row groups of ~ROW_GROUP_CHARS: few enough to read fast, small enough
                # that memory stays flat
                buffered.extend(batch.rows)
                buffered_chars += sum(len(r["text"]) for r in batch.rows)
                if buffered_chars >= ROW_GROUP_CHARS:
                    writer.write_table(pa.Table.from_pylist(buffered, schema=SCHEMA))
                    buffered, buffered_chars = [], 0
                reasons.update(batch.reasons)
                sections.update(batch.sections)
                for row in batch.rows[: max(0, SCRIPT_SAMPLE_ROWS - kept)]:
                    scripts.update(script_counts(row["text"][:1000]))
                bad.extend(batch.bad[: MAX_BAD_LISTED - len(bad)])
                kept += len(batch.rows)
                chars_in += batch.chars_in
                for row in batch.rows:
                    chars_out += len(row["text"])
                    for k in COUNTED:
                        removed[k] += row[f"removed_{k}"]
                if multistream:
                    bar.update(batch.raw_bytes / 1e6)
                bar.set_postfix(pages=sum(reasons.values()), kept=kept, refresh=False)
            if buffered:
                writer.write_table(pa.Table.from_pylist(buffered, schema=SCHEMA))
    seen = sum(reasons.values())
    dropped = {k: v for k, v in sorted(reasons.items()) if k != "kept"}
    return {"pages_seen": seen, "pages_kept": kept, "dropped": dropped,
            "bad_pages": reasons.get("bad_page", 0), "bad_page_list": bad,
            "removed": dict(sorted(removed.items())), "chars_in": chars_in,
            "chars_out": chars_out, "sections_dropped": dict(sections.most_common()),
            "scripts": scripts}


__all__ = ["extract_dump", "process_page", "DumpError", "NoArticlesError", "SCHEMA"]
