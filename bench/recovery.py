"""Benchmark: what the recovery curve costs healing at the demo's settings.

    .venv/bin/python bench/recovery.py [--token-budget 120000]

Builds the demo's shapes from the demo's own inputs, without running the workflow: a BPE
tokenizer (vocab 4096) trained on the demo's English and Chinese text, a Llama of the
demo base's width with the 5 layers the demo keeps after pruning (random weights: the
cost of a forward pass does not depend on the values), the English text packed at
seq_len 128, and 40 held-out documents per language. It then heals with the demo's `heal:`
section of config/config.yaml (and the schema's defaults, `heal.recovery` included) and prints the
seconds spent measuring the curve against the seconds healing took, both from heal()'s
own summary of one run, so machine load scales both alike.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is sys.path[0]; bench/tokenize.py would shadow the stdlib module.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

import argparse
import bz2
import gzip
import json
import logging
import re
import tempfile

import yaml


def demo_texts() -> tuple[list[str], list[str]]:
    """English documents of the demo's Cosmopedia sample; Chinese page texts of its dump."""
    with gzip.open(REPO / "config/demo/cosmopedia-demo.jsonl.gz", "rt", encoding="utf-8") as f:
        english = [json.loads(line)["text"] for line in f]
    dump = bz2.open(REPO / "config/demo/zhwiki-demo-pages-articles.xml.bz2", "rt",
                    encoding="utf-8").read()
    chinese = [re.sub(r"\[\[|\]\]|\{\{[^}]*\}\}|'''?|==+", "", page)
               for page in re.findall(r"<text[^>]*>(.*?)</text>", dump, flags=re.S)]
    return english, [t for t in chinese if len(t) > 200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token-budget", type=int, default=None,
                        help="healing tokens (default: the demo's heal.token_budget)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from secateurs.data.packing import tokenize_and_pack
    from secateurs.demo.model import init_llama
    from secateurs.demo.tokenizer import train_tokenizer
    from secateurs.io import write_parquet
    from secateurs.settings import complete
    from secateurs.train.heal import heal

    demo = yaml.safe_load((REPO / "config/config.yaml").read_text())
    settings = {**complete("heal", demo["heal"]), "disable_tqdm": True}
    if args.token_budget:
        settings["token_budget"] = args.token_budget
    english, chinese = demo_texts()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_tokenizer(english[:400] + chinese[:200], tmp / "tok",
                        vocab_size=demo["demo"]["tokenizer"]["vocab_size"])
        model = demo["demo"]["model"]
        init_llama(tmp / "tok", tmp / "model", hidden_size=model["hidden_size"],
                   num_hidden_layers=model["num_hidden_layers"] - demo["prune"]["plan"]["n_remove"],
                   num_attention_heads=model["num_attention_heads"],
                   intermediate_size=model["intermediate_size"])
        heldout = {"en": english[-40:], "zh": chinese[-40:]}
        write_parquet([{"text": t} for t in english[:-40]], tmp / "train.parquet")
        tokenize_and_pack(tmp / "train.parquet", tmp / "tok", tmp / "packed",
                          seq_len=demo["data"]["tokenize"]["seq_len"], threads=1)
        paths = {}
        for lang, texts in heldout.items():
            paths[lang] = str(tmp / f"heldout_{lang}.parquet")
            write_parquet([{"text": t} for t in texts], paths[lang])
        summary = heal(tmp / "model", tmp / "packed", tmp / "healed", checkpoint_dir=tmp / "ckpt",
                       log_csv=tmp / "heal.csv", config=settings, heldout=paths,
                       recovery_csv=tmp / "recovery.csv")
        points = (tmp / "recovery.csv").read_text().count("\n") - 1
    share = summary["recovery_seconds"] / summary["seconds"]
    print(f"healing: {summary['tokens_seen']} tokens in {summary['seconds']:.1f} s; recovery "
          f"curve: {points} measurements ({settings['recovery']}) in "
          f"{summary['recovery_seconds']:.2f} s = {share:.2%} of healing")


if __name__ == "__main__":
    main()
