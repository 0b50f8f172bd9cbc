"""Write the embedded demo's input files (three corpora and its benchmark tasks) from one seed.

The demo runs with no network, so its inputs ship in `config/demo/`, and nothing in them is
copied from anywhere: `demo_world` draws a fictional country, `demo_zh` writes its
Chinese Wikipedia (a zhwiki-style XML dump, traditional script), `demo_en` its
Cosmopedia (English synthetic textbooks) and `demo_chat` its SlimOrca (ShareGPT
conversations). The files stand where the real recipe's hub datasets stand, in the same
formats, so the workflow's readers run on them unchanged.

Same seed, same bytes: the world and each text come from seeded generators, bz2 has no
timestamp, and gzip is written with mtime=0 and no file name. Regenerate with

    .venv/bin/python config/demo/generate/demo_corpus.py config/demo

This folder is a tool of the repository, not part of the installed package: the workflow
only reads the files it wrote. Its modules import each other by their plain names (the
script's folder is first on sys.path; tests/demo/ puts it there for the tests).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import logging
import os
import sys
from pathlib import Path

from demo_chat import slimorca_rows
from demo_en import cosmopedia_rows
from demo_tasks import jsonl_bytes, task_items
from demo_world import TextRandom, build_world
from demo_zh import dump_xml, wiki_pages

from secateurs.io import atomic_output

log = logging.getLogger(__name__)

ZHWIKI = "zhwiki-demo-pages-articles.xml.bz2"
COSMOPEDIA = "cosmopedia-demo.jsonl.gz"
SLIMORCA = "slimorca-demo.jsonl.gz"
TASKS = {"en": "demo-world-en.jsonl", "zh": "demo-world-zh.jsonl"}  # secateurs.evaluate.task_files
SHA256SUMS = "SHA256SUMS"


def write_demo_inputs(out_dir: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """Generate the demo's zhwiki dump, Cosmopedia and SlimOrca files into `out_dir`.

    Also writes the demo's benchmark tasks (`demo_tasks`), one JSONL per language.
    Returns {"zhwiki", "cosmopedia", "slimorca", "tasks_en", "tasks_zh", "sha256sums"} ->
    paths written. A
    SHA256SUMS manifest (`sha256sum -c` format) is written beside them so a checkout can
    tell whether its shipped files are the ones this code generates.
    """
    out = Path(out_dir)
    world = build_world(seed)
    log.info("world: %d towns, %d people, %d rivers", len(world.towns), len(world.people),
             len(world.rivers))
    xml = dump_xml_text(world, seed)
    paths = {"zhwiki": out / ZHWIKI, "cosmopedia": out / COSMOPEDIA, "slimorca": out / SLIMORCA}
    _write_bytes(paths["zhwiki"], bz2.compress(xml.encode("utf-8"), 9))
    _write_bytes(paths["cosmopedia"], gzip_jsonl(cosmopedia_rows(world, TextRandom(f"{seed}-en"))))
    _write_bytes(paths["slimorca"], gzip_jsonl(slimorca_rows(world, TextRandom(f"{seed}-chat"))))
    for lang, rows in task_items(world, seed).items():
        paths[f"tasks_{lang}"] = out / TASKS[lang]
        _write_bytes(paths[f"tasks_{lang}"], jsonl_bytes(rows))
    sums = "".join(f"{sha256(p)}  {p.name}\n" for p in paths.values())
    paths["sha256sums"] = out / SHA256SUMS
    _write_bytes(paths["sha256sums"], sums.encode("ascii"))
    for name, path in paths.items():
        log.info("wrote %s (%d bytes)", path, path.stat().st_size)
    return paths


def dump_xml_text(world, seed: int = 0) -> str:
    """The uncompressed XML dump of `world` (exposed for tests and for inspection)."""
    rng = TextRandom(f"{seed}-zh")
    return dump_xml(wiki_pages(world, rng), rng)


def gzip_jsonl(rows: list[dict]) -> bytes:
    """JSON Lines, UTF-8, gzip with mtime=0 and no stored name, so the bytes are reproducible."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for row in rows:
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    return buf.getvalue()


def sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2:
        print("usage: python config/demo/generate/demo_corpus.py OUT_DIR [SEED]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    write_demo_inputs(args[0], seed=int(args[1]) if len(args) == 2 else 0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
