"""Write MediaWiki export XML from (title, ns, id, text) tuples, as dumps.wikimedia.org lays
it out: plain, bz2, or multistream bz2 with its `offset:id:title` index.

For tests and the benchmark, which need dumps of any size and shape (schema version,
encoding, with or without siteinfo) without downloading one.
"""

from __future__ import annotations

import bz2
from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import escape, quoteattr

from secateurs.io import atomic_output

SITEINFO = """  <siteinfo>
    <sitename>Wikipedia</sitename>
    <dbname>{dbname}</dbname>
    <base>https://{lang}.wikipedia.org/wiki/Main_Page</base>
    <generator>MediaWiki 1.41.0-wmf.1</generator>
    <case>first-letter</case>
    <namespaces>
      <namespace key="-2" case="first-letter">Media</namespace>
      <namespace key="0" case="first-letter" />
      <namespace key="4" case="first-letter">Wikipedia</namespace>
      <namespace key="6" case="first-letter">File</namespace>
      <namespace key="10" case="first-letter">Template</namespace>
      <namespace key="14" case="first-letter">Category</namespace>
    </namespaces>
  </siteinfo>
"""


def page_xml(title: str, ns: int, page_id: int, text: str, redirect: str | None = None) -> str:
    red = f"    <redirect title={quoteattr(redirect)} />\n" if redirect is not None else ""
    return (f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n"
            f"    <id>{page_id}</id>\n{red}    <revision>\n      <id>{page_id * 10}</id>\n"
            f"      <timestamp>2024-01-01T00:00:00Z</timestamp>\n"
            f"      <contributor>\n        <username>Bot</username>\n        <id>1</id>\n"
            f"      </contributor>\n      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            f"      <text bytes=\"{len(text.encode())}\" xml:space=\"preserve\">{escape(text)}</text>\n"
            f"    </revision>\n  </page>\n")


def header_xml(schema: str = "0.11", lang: str = "zh", siteinfo: bool = True) -> str:
    ns = f"http://www.mediawiki.org/xml/export-{schema}/"
    head = (f'<mediawiki xmlns="{ns}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{ns} {ns[:-1]}.xsd" version="{schema}" xml:lang="{lang}">\n')
    return head + (SITEINFO.format(dbname=f"{lang}wiki", lang=lang) if siteinfo else "")


def write_dump(pages: Iterable[tuple], path, *, schema: str = "0.11", lang: str = "zh",
               siteinfo: bool = True, encoding: str = "utf-8", compress: bool | None = None) -> Path:
    """Write pages ((title, ns, id, text[, redirect]) tuples) as one XML document; bz2 when
    the name ends in .bz2 (or `compress=True`). `encoding="utf-16"` writes a BOM."""
    path = Path(path)
    compress = path.name.endswith(".bz2") if compress is None else compress
    decl = f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n' if encoding != "utf-8" else ""
    with atomic_output(path) as tmp:
        with (bz2.open(tmp, "wb") if compress else open(tmp, "wb")) as f:
            f.write((decl + header_xml(schema, lang, siteinfo)).encode(encoding))
            for p in pages:
                f.write(page_xml(*p).encode("utf-16-le" if encoding == "utf-16" else encoding))
            f.write("</mediawiki>\n".encode("utf-16-le" if encoding == "utf-16" else encoding))
    return path


def write_multistream(pages: Iterable[tuple], path, index_path=None, *, pages_per_stream: int = 100,
                      schema: str = "0.11", lang: str = "zh") -> tuple[Path, Path]:
    """A multistream dump: stream 0 = header + siteinfo, then one bz2 stream per
    `pages_per_stream` pages, then `</mediawiki>`; and its bz2 index."""
    path = Path(path)
    index_path = Path(index_path or str(path).replace(".xml.bz2", "-index.txt.bz2"))
    with atomic_output(path) as tmp, atomic_output(index_path) as itmp:
        with open(tmp, "wb") as f, bz2.open(itmp, "wt", encoding="utf-8") as idx:
            f.write(bz2.compress(header_xml(schema, lang).encode()))
            batch: list[tuple] = []

            def flush():
                offset = f.tell()
                for p in batch:
                    idx.write(f"{offset}:{p[2]}:{p[0]}\n")
                f.write(bz2.compress("".join(page_xml(*p) for p in batch).encode()))
                batch.clear()

            for p in pages:
                batch.append(p)
                if len(batch) >= pages_per_stream:
                    flush()
            if batch:
                flush()
            f.write(bz2.compress(b"</mediawiki>\n"))
    return path, index_path
