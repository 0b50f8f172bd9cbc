"""Streaming reader for MediaWiki XML dumps: page by page, in flat memory.

Owns everything about bytes on disk: compression (plain, bz2 single- or multistream,
gzip), text encoding (UTF-8, or UTF-16 with a BOM as in gensim's bgwiki test dump; expat
detects it from the BOM), export schema 0.9-0.11 (tags are read without their XML
namespace, so every version parses the same), the `<siteinfo>` header, and the
multistream index that lets workers decompress disjoint byte ranges.

Errors in the container (bad or truncated bz2, malformed XML) raise `DumpError` naming the
file and byte offset. A page that is well-formed XML but lacks a field (the broken zhwiki
files of CyberZHG/wiki-dump-reader: no `<title>`, no `<ns>`, `<texts>` instead of `<text>`)
is yielded with `Page.error` set so the caller can log, count and skip it.
"""

from __future__ import annotations

import bz2
import logging
import os
import queue
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from xml.etree.ElementTree import ParseError, XMLPullParser

from .bz2blocks import TRUNCATED, BlockError, decompress_blocks

log = logging.getLogger(__name__)

CHUNK = 1 << 18        # raw bytes read at a time
OUT_CHUNK = 1 << 19    # decompressed bytes handed to the XML parser at a time


class DumpError(ValueError):
    """The dump file itself is unreadable at `offset` (a byte offset in the file on disk)."""

    def __init__(self, path, offset: int, what: str):
        self.path, self.offset, self.what = str(path), offset, what
        super().__init__(f"{path}: {what} at byte offset {offset}; the dump is corrupt or "
                         "truncated, download it again (check its sha1/md5 from dumps.wikimedia.org)")

    def __reduce__(self):            # raised in a worker process, re-raised in the parent
        return type(self), (self.path, self.offset, self.what)


class TruncatedDumpError(DumpError):
    """The dump stops before its end: a compressed stream without its end marker, or XML
    without its closing `</mediawiki>` (an interrupted download)."""


class NotADumpError(ValueError):
    """Well-formed XML that is not a MediaWiki export (an API response, another format)."""

    def __init__(self, path, root: str):
        self.path, self.root = str(path), root
        super().__init__(f"{path}: not a MediaWiki export: its root element is <{root}>, not "
                         "<mediawiki> (or a bare <page>). Fix: point the wiki source's path (data.sources.<name>.path) at a "
                         "pages-articles dump from dumps.wikimedia.org or Special:Export")

    def __reduce__(self):
        return type(self), (self.path, self.root)


@dataclass
class Page:
    id: int | None
    ns: int | None
    title: str | None
    text: str | None
    redirect: str | None = None
    model: str | None = None
    error: str | None = None     # why the page is unusable, or None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def compression_of(path) -> str:
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic == b"BZh":
        return "bz2"
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    return "plain"


def _bz2_chunks(path, f, start: int, end: int | None) -> Iterator[tuple[bytes, int]]:
    """Decompress concatenated bz2 streams from `f` (positioned at `start`) up to `end`;
    yield (data, offset of the raw bytes consumed so far). Output comes in pieces of at
    most OUT_CHUNK bytes: one 1 MB bz2 read can inflate to 5 MB, and buffers that large
    leave the allocator holding memory the run never needs again."""
    pos, dec, started = start, bz2.BZ2Decompressor(), False
    while end is None or pos < end:
        raw = f.read(CHUNK if end is None else min(CHUNK, end - pos))
        if not raw:
            break
        chunk_start, pos = pos, pos + len(raw)
        while raw:
            started = True
            try:
                out = dec.decompress(raw, OUT_CHUNK)
                while out:
                    yield out, pos
                    if dec.eof or dec.needs_input:
                        break
                    out = dec.decompress(b"", OUT_CHUNK)
            except (OSError, ValueError, EOFError) as e:
                raise DumpError(path, chunk_start, f"bad bz2 data ({e})") from None
            if dec.eof:
                raw = dec.unused_data
                dec, started = bz2.BZ2Decompressor(), False
            else:
                raw = b""
    if started and not dec.eof:
        raise TruncatedDumpError(path, pos, TRUNCATED)


def _gzip_chunks(path, f) -> Iterator[tuple[bytes, int]]:
    dec = zlib.decompressobj(wbits=31)
    pos = 0
    while raw := f.read(CHUNK):
        pos += len(raw)
        try:
            out = dec.decompress(raw)
        except zlib.error as e:
            raise DumpError(path, pos - len(raw), f"bad gzip data ({e})") from None
        if out:
            yield out, pos
    if not dec.eof:
        raise TruncatedDumpError(path, pos, "gzip stream ends before its end marker")


def prefetched(chunks: Iterator, depth: int = 4) -> Iterator:
    """Run `chunks` in a thread, `depth` items ahead. bz2 and zlib release the GIL while
    they decompress, so the caller's XML parsing overlaps the next chunk's decompression."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def pump():
        try:
            for item in chunks:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # re-raised in the consumer
            q.put(e)

    thread = threading.Thread(target=pump, daemon=True, name="dump-reader")
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():      # unblock a pump waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)


def _bz2_block_chunks(path, f, start: int) -> Iterator[tuple[bytes, int]]:
    """Like `_bz2_chunks` to the end of the file, but blocks decompress on several cores."""
    try:
        for data, pos in decompress_blocks(f, start):
            if len(data) <= 4 * OUT_CHUNK:          # a text block: about 900 kB
                yield data, pos
                continue
            for i in range(0, len(data), OUT_CHUNK):  # long runs of one byte inflate more
                yield data[i:i + OUT_CHUNK], pos
    except BlockError as e:
        kind = TruncatedDumpError if e.truncated else DumpError
        raise kind(path, e.byte, e.what) from None


def byte_chunks(path, start: int = 0, end: int | None = None, *, parallel: bool = False
                ) -> Iterator[tuple[bytes, int]]:
    """Decompressed bytes of `path` (or of its raw byte range [start, end)), with the raw
    offset reached after each chunk, for progress and error messages. `parallel` decodes
    the bz2 blocks of a whole file on several cores (`bz2blocks`)."""
    kind = compression_of(path)
    with open(path, "rb") as f:
        f.seek(start)
        if kind == "bz2" and parallel and end is None:
            yield from _bz2_block_chunks(path, f, start)
        elif kind == "bz2":
            yield from _bz2_chunks(path, f, start, end)
        elif kind == "gzip":
            yield from _gzip_chunks(path, f)
        else:
            pos = start
            while end is None or pos < end:
                raw = f.read(CHUNK if end is None else min(CHUNK, end - pos))
                if not raw:
                    break
                pos += len(raw)
                yield raw, pos


def _reader(path, start: int, end: int | None, threaded: bool) -> Iterator[tuple[bytes, int]]:
    """The chunks `iter_dump` parses. Threaded, a whole bz2 file decodes block by block in
    threads of its own and is consumed right here (a relay thread between decoder and
    parser would wait for the GIL at every hand-over); anything else is prefetched by one
    reader thread."""
    if threaded and end is None and compression_of(path) == "bz2":
        return byte_chunks(path, start, end, parallel=True)
    chunks = byte_chunks(path, start, end)
    return prefetched(chunks) if threaded else chunks


def _page_from(elem) -> Page:
    fields: dict = {}
    for child in elem:
        tag = _local(child.tag)
        if tag in ("title", "ns", "id"):
            fields[tag] = child.text
        elif tag == "redirect":
            fields["redirect"] = child.get("title", "")
        elif tag == "revision":
            for sub in child:
                stag = _local(sub.tag)
                if stag == "text":
                    fields["text"] = sub.text or ""
                elif stag == "model":
                    fields["model"] = sub.text
    missing = [f"<{k}>" for k in ("title", "ns", "id", "text") if fields.get(k) is None]
    page = Page(id=None, ns=None, title=fields.get("title"), text=fields.get("text"),
                redirect=fields.get("redirect"), model=fields.get("model"))
    try:
        page.id = int(fields["id"]) if fields.get("id") is not None else None
        page.ns = int(fields["ns"]) if fields.get("ns") is not None else None
    except ValueError:
        missing.append("an integer <id>/<ns>")
    if missing:
        page.error = "page has no " + ", ".join(missing)
    return page


def _siteinfo_from(elem, root_lang: str | None) -> dict:
    info: dict = {"lang": root_lang, "namespaces": {}}
    for child in elem:
        tag = _local(child.tag)
        if tag in ("sitename", "dbname", "base", "generator", "case"):
            info[tag] = (child.text or "").strip()
        elif tag == "namespaces":
            for ns in child:
                info["namespaces"][int(ns.get("key"))] = (ns.text or "").strip()
    base = info.get("base") or ""
    if "/wiki/" in base:
        info["base_url"] = base.split("/wiki/")[0]
    return info


# a page exported alone (Special:Export of one page, a test fixture) without the <mediawiki> root
BARE_PAGE = re.compile(rb"\A((?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>)?\s*)<page[\s>]")
UNTERMINATED_SWITCH = "data.wiki.accept_unterminated: true"


def iter_dump(path, *, start: int = 0, end: int | None = None, header: bytes | None = None,
              progress=None, threaded: bool = False, accept_unterminated: bool = False
              ) -> Iterator[dict | Page]:
    """Yield the siteinfo dict (if any) and then each `Page`, streaming.

    With a byte range (multistream), `header` is the dump's first bz2 stream decompressed
    (`<mediawiki ...><siteinfo>...`): it is fed first so the range parses as a whole
    document, and `</mediawiki>` is added when the range stops before the file's end.
    `progress(raw_offset)` is called after each chunk. `threaded` decompresses in
    background threads, overlapping decompression with parsing: a whole bz2 file block by
    block on several cores (`bz2blocks`), anything else in one reader thread.

    A bare `<page>` (no `<mediawiki>` root) is read as a one-page dump; any other root
    raises `NotADumpError`. A dump that stops before its end (an interrupted download)
    raises `TruncatedDumpError` with the number of complete pages read, unless
    `accept_unterminated`: then those pages are kept and a final
    `{"unterminated": what, "pages": n}` dict says so.
    """
    parser = XMLPullParser(events=("start", "end"))
    root, depth, fed, pos, pages, wrapped = None, 0, 0, start, 0, False
    lang_attr = "{http://www.w3.org/XML/1998/namespace}lang"

    def feed(data: bytes) -> Iterator[dict | Page]:
        nonlocal root, depth, pages
        try:
            parser.feed(data)
            events = list(parser.read_events())
        except ParseError as e:
            raise DumpError(path, pos, f"malformed XML ({e}; {fed} bytes decompressed)") from None
        for event, elem in events:
            if event == "start":
                depth += 1
                if root is None:
                    root = elem
                    if _local(elem.tag) != "mediawiki":
                        raise NotADumpError(path, _local(elem.tag))
                continue
            depth -= 1
            if depth != 1:
                continue
            tag = _local(elem.tag)
            if tag == "page":
                pages += 1
                yield _page_from(elem)
            elif tag == "siteinfo":
                yield _siteinfo_from(elem, root.get(lang_attr))
            root.clear()             # flat memory: drop every finished child of <mediawiki>

    def unterminated(what: str, offset: int) -> Iterator[dict]:
        if not accept_unterminated:
            raise TruncatedDumpError(path, offset, f"{what}, after {pages} complete pages (an "
                                     f"interrupted download?); set {UNTERMINATED_SWITCH} to "
                                     f"keep those {pages} pages") from None
        log.warning("%s: %s at byte offset %d; keeping the %d complete pages read "
                    "(accept_unterminated)", path, what, offset, pages)
        yield {"unterminated": what, "pages": pages}

    if header is not None:
        yield from feed(header)
    try:
        for data, pos in _reader(path, start, end, threaded):
            if not fed and header is None and (m := BARE_PAGE.match(data)):
                data, wrapped = data[:m.end(1)] + b"<mediawiki>" + data[m.end(1):], True
            fed += len(data)
            yield from feed(data)
            if progress is not None:
                progress(pos)
    except TruncatedDumpError as e:
        yield from unterminated(e.what, e.offset)
        return
    if wrapped or header is not None and end is not None and end < os.path.getsize(path):
        yield from feed(b"</mediawiki>")
    try:
        parser.close()
    except ParseError as e:
        if header is not None or root is None:
            raise DumpError(path, pos, f"XML ends early ({e}; {fed} bytes decompressed)") from None
        yield from unterminated(f"XML ends before </mediawiki> ({e}; {fed} bytes decompressed)", pos)


def read_siteinfo(path) -> dict | None:
    """The `<siteinfo>` of a dump, reading only its head; None when the dump has none."""
    try:
        for item in iter_dump(path):
            return item if isinstance(item, dict) else None
    except DumpError:
        return None
    return None


# --- multistream --------------------------------------------------------------------

def find_index(path) -> Path | None:
    """`x-multistream.xml.bz2` -> `x-multistream-index.txt.bz2` beside it, if present."""
    p = Path(path)
    name = p.name
    for suffix in (".xml.bz2", ".bz2", ".xml"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            for cand in (f"{stem}-index.txt.bz2", f"{stem}-index.txt"):
                if (p.parent / cand).exists():
                    return p.parent / cand
    return None


def stream_offsets(index_path) -> list[int]:
    """Sorted distinct stream start offsets from a multistream index (`offset:id:title`)."""
    opener = bz2.open if compression_of(index_path) == "bz2" else open
    offsets: set[int] = set()
    last = None
    with opener(index_path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            head = line.split(":", 1)[0]
            if head == last:
                continue
            try:
                offsets.add(int(head))
            except ValueError:
                raise ValueError(f"{index_path}: line {n} does not start with a byte offset "
                                 f"({line[:60]!r}); pass the -index.txt.bz2 that belongs to "
                                 "the dump") from None
            last = head
    return sorted(offsets)


def read_header(path, first_offset: int) -> bytes:
    """The decompressed first stream of a multistream dump (root tag + siteinfo)."""
    return b"".join(data for data, _ in byte_chunks(path, 0, first_offset))
