"""`python -m secateurs <stage> ...`: one stage by hand, without Snakemake.

Each subcommand calls the same package function as the workflow rule of that name, so a
user can score or slice one model, or clean one dump, with the exact code the workflow
runs. Options are the rule's config keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def _add(sub, name, help_text):
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(stage=name)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m secateurs", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(required=True, metavar="STAGE")

    p = _add(sub, "extract", "MediaWiki XML dump -> plain-text articles (Parquet)")
    p.add_argument("dump"), p.add_argument("out_parquet"), p.add_argument("stats_json")
    p.add_argument("--language"), p.add_argument("--threads", type=int, default=1)

    p = _add(sub, "convert", "OpenCC conversion and quality filters of extracted articles")
    p.add_argument("out_parquet"), p.add_argument("stats_json")
    p.add_argument("inputs", nargs="+"), p.add_argument("--profile", help="OpenCC, e.g. t2s")
    p.add_argument("--language", required=True, help="expected script from it: zh Han, es Latin")
    p.add_argument("--min-chars", type=int, default=200)
    p.add_argument("--min-script-share", type=float, default=0.3)

    p = _add(sub, "score", "Block Influence and angular distance of every decoder layer")
    p.add_argument("model_dir"), p.add_argument("calibration_parquet")
    p.add_argument("out_json"), p.add_argument("out_csv"), p.add_argument("out_png")
    p.add_argument("--num-samples", type=int, default=64), p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4), p.add_argument("--max-block", type=int)
    p.add_argument("--dtype", default="float32"), p.add_argument("--device", default="auto")
    p.add_argument("--ppl", action="store_true", help="also the single-layer perplexity criterion")

    p = _add(sub, "plan", "a pruning plan from layer scores (JSON + mergekit YAML)")
    p.add_argument("scores_json"), p.add_argument("model_dir")
    p.add_argument("out_json"), p.add_argument("out_yaml")
    p.add_argument("--strategy", default="bi"), p.add_argument("--n-remove", type=int)
    p.add_argument("--target-params"), p.add_argument("--slices", type=json.loads,
                                                      help="JSON, e.g. [[0,24],[55,59]]")
    p.add_argument("--metric"), p.add_argument("--calibration", default="all")
    p.add_argument("--protect-first", type=int, default=0)
    p.add_argument("--protect-last", type=int, default=0)
    p.add_argument("--heldout", action="append", default=[], metavar="LANG=PARQUET",
                   help="measured/greedy: held-out file per language (its tail is measured)")
    p.add_argument("--measure-docs", type=int), p.add_argument("--measure-seq-len", type=int)
    p.add_argument("--measure-batch-size", type=int)
    p.add_argument("--language-weights", type=json.loads, help='JSON, e.g. {"en": 2, "zh": 1}')
    p.add_argument("--dtype"), p.add_argument("--device")  # unset: prune.plan.measure's
    p.add_argument("--figure", help="write the pruning figure (PNG) here")

    p = _add(sub, "slice", "write the kept layers as a new model directory")
    p.add_argument("model_dir"), p.add_argument("plan_json"), p.add_argument("out_dir")
    p.add_argument("--max-shard-size", default="2GB")

    p = _add(sub, "evaluate", "held-out perplexity, bits per byte, lm-eval tasks and samples of a model")
    p.add_argument("model_dir"), p.add_argument("out_json")
    p.add_argument("--heldout", action="append", default=[], metavar="LANG=PARQUET")
    p.add_argument("--seq-len", type=int, default=1024), p.add_argument("--prompt", action="append", default=[])
    p.add_argument("--task", action="append", default=[], type=_task, metavar="NAME[:FEWSHOT[:LIMIT]]",
                   help="an lm-eval task, e.g. hellaswag:0:200 (repeatable)")
    p.add_argument("--benchmarks-dir", help="local benchmark files (evaluate.benchmarks_dir)")
    p.add_argument("--allow-download", action="store_true", help="let lm-eval use the hub")
    p.add_argument("--device", default="auto"), p.add_argument("--dtype", default="float32")
    return parser


def _task(text: str) -> dict:
    """`hellaswag:0:200` -> {"name": "hellaswag", "num_fewshot": 0, "limit": 200}."""
    name, fewshot, limit = (text.split(":") + ["0", ""])[:3]
    return {"name": name, "num_fewshot": int(fewshot or 0), "limit": int(limit) if limit else None}


def run(args: argparse.Namespace) -> None:
    if args.stage == "extract":
        from secateurs.data.wiki import extract_dump
        extract_dump(args.dump, args.out_parquet, args.stats_json, language=args.language,
                     threads=args.threads)
    elif args.stage == "convert":
        from secateurs.data.convert import convert_articles
        from secateurs.data.writing import SCRIPTS, expected_scripts
        scripts = expected_scripts(args.language, {})
        if scripts is None:
            raise ValueError(f"--language {args.language}: its script is unknown; use a code "
                             f"of secateurs.data.writing.LANGUAGE_SCRIPTS (scripts: {SCRIPTS})")
        convert_articles(args.inputs, args.out_parquet, args.stats_json, profile=args.profile,
                         min_chars=args.min_chars, min_script_share=args.min_script_share,
                         scripts=scripts, dedup=True)
    elif args.stage == "score":
        from secateurs.prune.scoring import score_layers
        score_layers(args.model_dir, args.calibration_parquet, args.out_json, args.out_csv,
                     args.out_png, num_samples=args.num_samples, seq_len=args.seq_len,
                     batch_size=args.batch_size, max_block=args.max_block, dtype=args.dtype,
                     device=args.device, ppl=args.ppl)
    elif args.stage == "plan":
        from secateurs.prune.plan import plan_pruning
        plan_pruning(args.scores_json, args.model_dir, args.out_json, args.out_yaml,
                     strategy=args.strategy, n_remove=args.n_remove,
                     target_params=args.target_params, slices=args.slices, metric=args.metric,
                     calibration=args.calibration, protect_first=args.protect_first,
                     protect_last=args.protect_last, out_png=args.figure,
                     heldout=dict(item.split("=", 1) for item in args.heldout) or None,
                     measure={k: v for k, v in {
                         "docs": args.measure_docs, "seq_len": args.measure_seq_len,
                         "batch_size": args.measure_batch_size,
                         "language_weights": args.language_weights, "dtype": args.dtype,
                         "device": args.device}.items() if v is not None})
    elif args.stage == "slice":
        from secateurs.io import read_json
        from secateurs.prune.slicing import slice_model
        plan = read_json(args.plan_json)
        slice_model(args.model_dir, plan["keep"], args.out_dir, plan=plan,
                    max_shard_size=args.max_shard_size)
    elif args.stage == "evaluate":
        from secateurs.evaluate.heldout import evaluate_model
        heldout = dict(item.split("=", 1) for item in args.heldout)
        evaluate_model(args.model_dir, heldout, args.out_json, seq_len=args.seq_len,
                       prompts=args.prompt, tasks=args.task, benchmarks_dir=args.benchmarks_dir,
                       allow_download=args.allow_download, device=args.device, dtype=args.dtype)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"secateurs {args.stage}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
