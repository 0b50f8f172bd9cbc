"""Benchmark `wiki_extract`: pages/s and MB/s at 1 and 2 processes, parallel efficiency,
peak memory at two dump sizes, and WikiExtractor on the same dump when it is installed.

    .venv/bin/python bench/wiki.py                    # generates a >= 50 MB (XML) dump
    .venv/bin/python bench/wiki.py --size-mb 200      # bigger
    .venv/bin/python bench/wiki.py --dump path/to/zhwiki-...-multistream.xml.bz2

The generated dump is a multistream bz2 with its index, laid out like dumps.wikimedia.org
(one tag per line, 100 pages per stream), from seeded synthetic zhwiki pages (~10 k chars of
wikitext each: infobox, refs with cite templates, tables, files, categories, NoteTA,
`-{...}-`, trailing sections). Every configuration runs in a fresh subprocess so its peak
RSS (main process and largest worker) is its own. Ratios printed: parallel efficiency
t1 / (2 * t2), and our throughput over WikiExtractor's (`--no-templates --json`, same
`--processes`), with markup residue per MB of output for both.
"""

from __future__ import annotations

import sys
import argparse  # noqa: E402
import glob  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from secateurs.data.wiki.residue import count_residue  # noqa: E402
from secateurs.data.wiki.synthetic import write_multistream  # noqa: E402

HAN = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下"
       "过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两"
       "体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内"
       "數學歷史鐵路河流山脈城市語言經濟發展縣區鎮鄉")
WORDS = ("river city province railway mountain history economy language population built "
         "century museum university bridge festival climate valley station market temple").split()


def _zh(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(HAN, k=n))


def synthetic_page(i: int, rng: random.Random) -> tuple:
    """One article of roughly 10 k chars with the markup mix of a real zhwiki page."""
    title = _zh(rng, rng.randint(2, 5)) + str(i)
    if i % 25 == 0:
        return (title, 0, i, f"#重定向 [[{_zh(rng, 3)}]]")
    if i % 40 == 0:
        return (title, 14, i, f"[[Category:{_zh(rng, 4)}]]")
    cite = lambda: ("<ref name=\"r%d\">{{cite web|url=https://example.org/%d|title=%s|"  # noqa: E731
                    "accessdate=2020-01-01|language=zh}}</ref>" % (rng.randint(0, 9), rng.randint(0, 10**6), _zh(rng, 8)))
    link = lambda: f"[[{_zh(rng, 3)}|{_zh(rng, 2)}]]" if rng.random() < .3 else f"[[{_zh(rng, 3)}]]"  # noqa: E731
    parts = ["{{NoteTA|G1=地名|1=zh-hans:铁路; zh-hant:鐵路;}}\n",
             "{{Infobox settlement\n|name = %s\n|population = {{formatnum:%d}}\n|map = {{Location map|%s|lat=%d}}\n"
             "|leader = [[%s]]\n}}\n" % (title, rng.randint(1, 10**6), _zh(rng, 3), rng.randint(0, 90), _zh(rng, 3)),
             f"'''{title}'''（{{{{lang-en|{rng.choice(WORDS).title()}}}}}）"]
    for s in range(rng.randint(4, 7)):
        parts.append(f"\n== {_zh(rng, 2)} ==\n")
        for _ in range(rng.randint(2, 4)):
            sent = []
            for _ in range(rng.randint(4, 8)):
                sent.append(_zh(rng, rng.randint(8, 30)) + link() + _zh(rng, rng.randint(5, 20)))
                if rng.random() < .3:
                    sent.append(cite())
                if rng.random() < .1:
                    sent.append("-{zh-hans:%s; zh-hant:%s}-" % (_zh(rng, 2), _zh(rng, 2)))
                if rng.random() < .1:
                    sent.append(f" ''{rng.choice(WORDS)} {rng.choice(WORDS)}'' ")
                sent.append("，" if rng.random() < .7 else "。")
            parts.append("".join(sent) + "。\n\n")
        if s == 1:
            parts.append(f"[[File:{_zh(rng, 3)}.jpg|thumb|{_zh(rng, 6)}[[{_zh(rng, 2)}]]]]\n")
            rows = "".join(f"|-\n| {_zh(rng, 3)} || {rng.randint(0, 999)} || {_zh(rng, 4)}\n" for _ in range(8))
            parts.append("{| class=\"wikitable\"\n! 名稱 !! 數量 !! 備註\n" + rows + "|}\n")
    parts.append("\n== 參見 ==\n* " + link() + "\n* " + link() + "\n")
    parts.append("\n== 參考文獻 ==\n{{Reflist|2}}\n\n== 外部連結 ==\n* [https://example.org 官方網站]\n")
    parts.append("".join(f"[[Category:{_zh(rng, 4)}]]\n" for _ in range(3)))
    return (title, 0, i, "".join(parts))


def make_dump(folder: Path, size_mb: float, seed: int = 0) -> Path:
    """Write pages until the XML is >= size_mb MB; return the multistream path."""
    rng = random.Random(seed)
    target = size_mb * 1e6
    pages, total = [], 0
    i = 1
    while total < target:
        p = synthetic_page(i, rng)
        pages.append(p)
        total += len(p[3].encode()) + 400       # + the XML around the text
        i += 1
    path, _ = write_multistream(pages, folder / f"zhwiki-bench{int(size_mb)}-multistream.xml.bz2")
    return path


def xml_bytes(path: Path) -> int:
    from secateurs.data.wiki.dump import byte_chunks
    return sum(len(d) for d, _ in byte_chunks(path))


RUNNER = r"""
import json, resource, sys, time, logging
sys.path.insert(0, {repo!r})
from secateurs.data.wiki import extract_dump
t = time.perf_counter()
s = extract_dump({dump!r}, {out!r}, {out!r} + ".json", threads={threads}, progress=False,
                 index={index})
dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "pages": s["pages_seen"], "kept": s["pages_kept"],
    "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""


def run_ours(dump: Path, threads: int, work: Path, use_index: bool = True) -> dict:
    out = str(work / f"ours-{threads}-{int(use_index)}.parquet")
    code = RUNNER.format(repo=str(REPO), dump=str(dump), out=out, threads=threads,
                         index="None" if use_index else "False")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    import pyarrow.parquet as pq
    texts = pq.read_table(out, columns=["text"]).column("text").to_pylist()
    r["out_mb"] = sum(len(t.encode()) for t in texts) / 1e6
    r["residue"] = sum(count_residue(t) for t in texts)
    return r


def run_wikiextractor(dump: Path, processes: int, work: Path) -> dict | None:
    if importlib.util.find_spec("wikiextractor") is None:
        return None
    out = work / f"wx-{processes}"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "wikiextractor.WikiExtractor", str(dump), "--json",
                    "--no-templates", "-q", "--processes", str(processes), "-b", "100M",
                    "-o", str(out)], check=True, capture_output=True)
    dt = time.perf_counter() - t
    texts = [json.loads(line)["text"] for f in glob.glob(str(out / "*" / "wiki_*"))
             for line in open(f, encoding="utf-8")]
    return {"seconds": dt, "docs": len(texts), "out_mb": sum(len(t.encode()) for t in texts) / 1e6,
            "residue": sum(count_residue(t) for t in texts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", type=Path, help="a dump to use instead of generating one")
    ap.add_argument("--size-mb", type=float, default=50.0, help="XML size of the generated dump")
    ap.add_argument("--no-serial", action="store_true", help="skip the no-index (serial reader) runs")
    ap.add_argument("--procs", default="1,2", help="process counts to run, comma-separated; "
                    "efficiency is reported against the first")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-wiki-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        dump = args.dump or make_dump(work, args.size_mb)
        smaller = [] if args.dump else [make_dump(work, args.size_mb / k, seed=k) for k in (4, 2)]
        print(f"dump: {dump.name}: {os.path.getsize(dump) / 1e6:.1f} MB on disk, "
              f"{xml_bytes(dump) / 1e6:.1f} MB XML (made in {time.perf_counter() - t:.0f} s)")
        mb = xml_bytes(dump) / 1e6
        results = {}
        modes = [("multistream+index", True)] + ([] if args.no_serial else [("serial reader", False)])
        procs = [int(p) for p in args.procs.split(",")]
        for label, use_index in modes:
            for n in procs:
                r = run_ours(dump, n, work, use_index)
                results[(label, n)] = r
                print(f"ours  {label:18s} {n} proc: {r['pages'] / r['seconds']:7.1f} pages/s "
                      f"{mb / r['seconds']:6.2f} MB/s  peak RSS main {r['rss_main_mb']:.0f} MB, "
                      f"worker {r['rss_worker_mb']:.0f} MB  residue {r['residue']}")
            t1 = results[(label, procs[0])]["seconds"] * procs[0]
            for n in procs[1:]:
                eff = t1 / (n * results[(label, n)]["seconds"])
                print(f"      {label:18s} parallel efficiency at {n} processes: {eff:.2f}")
        if smaller:
            big = results[("multistream+index", procs[0])]
            rss = [run_ours(d, procs[0], work)["rss_main_mb"] for d in smaller] + [big["rss_main_mb"]]
            sizes = [args.size_mb / 4, args.size_mb / 2, args.size_mb]
            print("peak RSS, multistream, %d proc, by XML size: %s; max/min %.2f (1.00 = flat)" % (
                procs[0], ", ".join(f"{s:.1f} MB: {r:.0f} MB" for s, r in zip(sizes, rss)),
                max(rss) / min(rss)))
        for n in procs:
            wx = run_wikiextractor(dump, n, work)
            if wx is None:
                print("WikiExtractor not installed: pip install wikiextractor==3.1.0 to compare")
                break
            ours = results[("multistream+index", n)]
            print(f"WikiExtractor {n} proc: {wx['docs'] / wx['seconds']:7.1f} docs/s "
                  f"{mb / wx['seconds']:6.2f} MB/s  residue {wx['residue']} "
                  f"({wx['residue'] / max(wx['out_mb'], 1e-9):.1f}/MB vs ours "
                  f"{ours['residue'] / max(ours['out_mb'], 1e-9):.1f}/MB)")
            print(f"ratio ours/WikiExtractor throughput at {n} proc: "
                  f"{wx['seconds'] / ours['seconds']:.2f}")


if __name__ == "__main__":
    main()
