"""`python -m secateurs <stage> ...`: every stage of the workflow by hand, without Snakemake.

Each stage calls the same package function as the workflow rule of that name, with the
same settings: its options are the stage's config section, read from the schema (help,
defaults and choices included), and `--config recipe.yaml` starts from a config file's
section. Paths (inputs and outputs) are the rule's files.

    python -m secateurs score results/models/base results/data/mix scores.json scores.csv \\
        heatmap.png --num-samples 64
    python -m secateurs heal --model pruned/ --packed packed/ --out healed/ \\
        --checkpoint-dir ckpt/ --log-csv heal.csv --config config/recipes/pruned-yi.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from secateurs.cli import add_section_options, section_settings

SOURCE = "data.sources.*"  # one source of the data stage (a wiki dump or a text dataset)


@dataclass(frozen=True)
class Stage:
    """One subcommand: its rule's paths, its config section, and the package call."""

    name: str
    help: str
    section: str | None
    paths: tuple[tuple[str, str], ...]
    run: Callable[[argparse.Namespace, dict], object]
    options: Callable[[argparse.ArgumentParser], None] | None = None


# ----------------------------------------------------------------------------- data


def _one_source(settings: dict) -> dict:
    """The data stage's helpers read sources from a `data:` mapping; one source here."""
    return {"sources": {"cli": settings}, "scripts": {}}


def _extract(args, s):
    from secateurs.data.sources import extract_settings
    from secateurs.data.wiki import extract_dump

    return extract_dump(args.dump, args.out_parquet, args.stats_json, threads=s["threads"],
                        **extract_settings(_one_source(s), "cli"))


def _convert(args, s):
    from secateurs.data.convert import convert_articles
    from secateurs.data.sources import convert_settings

    return convert_articles(args.articles, args.out_parquet, args.stats_json,
                            **convert_settings(_one_source(s), "cli"))


def _text(args, s):
    from secateurs.data.sources import text_settings
    from secateurs.data.text import sample_text

    return sample_text(s["path"], args.out_parquet, args.stats_json, tokenizer_dir=args.tokenizer,
                       **text_settings(_one_source(s), "cli"))


def _text_options(parser):
    parser.add_argument("--tokenizer", help="the base tokenizer (counts tokens when the "
                        "source has no length column)")


def _mix(args, s):
    from secateurs.data.mix import mix_corpora

    sources = {}
    for item in args.text:
        name, rest = item.split("=", 1)
        path, language, weight = rest.rsplit(":", 2)
        sources[name] = {"path": path, "language": language, "weight": float(weight)}
    return mix_corpora(sources, args.tokenizer_dir, args.out_dir, threads=args.threads, **s)


def _mix_options(parser):
    parser.add_argument("--text", action="append", required=True,
                        metavar="NAME=PARQUET:LANGUAGE:WEIGHT",
                        help="one source's text (repeatable), e.g. wiki=zh.parquet:zh:1")
    parser.add_argument("--threads", type=int, default=1, help="token-counting processes")


def _tokenize(args, s):
    from secateurs.data.packing import tokenize_and_pack

    return tokenize_and_pack(Path(args.mix_dir) / "train.parquet", args.tokenizer_dir,
                             args.out_dir, **s)


def _chat_data(args, s):
    from secateurs.data.chat import prepare_chat_data

    if not s.get("data"):
        raise ValueError("chat-data needs sources: --data '[{path: chat.jsonl, format: "
                         "sharegpt}]' or --config with a chat.data list")
    return prepare_chat_data(s["data"], args.out_jsonl, args.stats_json,
                             max_examples=s["max_examples"], cleaning=s["cleaning"])


# ----------------------------------------------------------------------------- prune


def _access(parser):
    parser.add_argument("--allow-pickle", action="store_true",
                        help="read pickled .bin weights (base_model.allow_pickle)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run the model's own code (base_model.trust_remote_code)")


def _access_of(args) -> dict:
    return {"allow_pickle": args.allow_pickle, "trust_remote_code": args.trust_remote_code}


def _score(args, s):
    from secateurs.prune.scoring import score_layers

    return score_layers(args.model_dir, Path(args.mix_dir) / "train.parquet", args.out_json,
                        args.out_csv, args.out_png, **s, **_access_of(args))


def _plan(args, s):
    from secateurs.prune.plan import plan_pruning
    from secateurs.prune.stage import heldout_files, model_name

    heldout = heldout_files(args.mix) if args.mix else None
    return plan_pruning(args.scores_json, args.model_dir, args.out_json, args.out_yaml,
                        out_png=args.figure, heldout=heldout, model_name=model_name(args.model_dir),
                        **s, **_access_of(args))


def _plan_options(parser):
    parser.add_argument("--mix", help="mix's output: measured and greedy measure the tail of "
                        "its held-out files")
    parser.add_argument("--figure", help="write the pruning figure (PNG) here")
    _access(parser)


def _slice(args, s):
    from secateurs.io import read_json
    from secateurs.prune.slicing import slice_model

    plan = read_json(args.plan_json)
    return slice_model(args.model_dir, plan["keep"], args.out_dir, plan=plan, **s,
                       **_access_of(args))


# ----------------------------------------------------------------------------- train


def _training_options(parser, *, heal: bool):
    """The per-rank entry a launcher starts too: these names are train_stage's arguments."""
    parser.add_argument("--model", required=True, help="the model to train")
    if heal:
        parser.add_argument("--packed", required=True, help="tokenize's packed directory")
        parser.add_argument("--teacher", help="the unpruned model, when distilling (online; "
                            "cached: checked against the cache)")
        parser.add_argument("--teacher-logits", help="the teacher cache (teacher-logits' output), "
                            "when distilling with distill.mode cached")
        parser.add_argument("--heldout", action="append", default=[], metavar="LANG=PARQUET",
                            help="held-out text for the recovery curve (repeat per language)")
        parser.add_argument("--recovery-csv", help="write the recovery curve here")
    else:
        parser.add_argument("--data", required=True, help="chat-data's JSONL")
    parser.add_argument("--out", required=True, help="where the trained model is written")
    parser.add_argument("--checkpoint-dir", required=True, help="checkpoints (resumed from)")
    parser.add_argument("--log-csv", required=True, help="the training log")
    parser.add_argument("--summary-json", help="also write the run's summary here")


def _train(stage: str):
    def run(args, s):
        from secateurs.train.launch import train_stage

        return train_stage(stage, model=args.model, out=args.out, log_csv=args.log_csv,
                           config=s, checkpoint_dir=args.checkpoint_dir,
                           packed=getattr(args, "packed", None), data=getattr(args, "data", None),
                           teacher=getattr(args, "teacher", None), summary_json=args.summary_json,
                           teacher_logits=getattr(args, "teacher_logits", None),
                           heldout=dict(i.split("=", 1) for i in getattr(args, "heldout", [])),
                           recovery_csv=getattr(args, "recovery_csv", None))
    return run


def _teacher_logits(args, s):
    from secateurs.train.teacher_logits import build_teacher_cache

    return build_teacher_cache(args.teacher, args.packed, args.out_dir, work_dir=args.work_dir,
                               top_k=s["top_k"], batch_size=s["batch_size"],
                               rows_per_shard=s["rows_per_shard"])


def _teacher_logits_options(parser):
    parser.add_argument("--work-dir", required=True, help="where a build keeps its finished "
                        "shards until the end (a killed build resumes from them)")


# ----------------------------------------------------------------------------- evaluate


def _evaluate(args, s):
    from secateurs.evaluate.heldout import evaluate_model

    heldout = dict(item.split("=", 1) for item in args.heldout)
    if args.task:
        s = {**s, "tasks": [*s["tasks"], *args.task]}
    return evaluate_model(args.model_dir, heldout, args.out_json, **s, **_access_of(args))


def _task(text: str) -> dict:
    """`hellaswag:0:200` -> {"name": "hellaswag", "num_fewshot": 0, "limit": 200}."""
    name, fewshot, limit = (text.split(":") + ["0", ""])[:3]
    return {"name": name, "num_fewshot": int(fewshot or 0), "limit": int(limit) if limit else None}


def _evaluate_options(parser):
    parser.add_argument("--heldout", action="append", default=[], metavar="LANG=PARQUET",
                        help="held-out text of one language (repeatable), e.g. en=heldout_en.parquet")
    parser.add_argument("--task", action="append", default=[], type=_task,
                        metavar="NAME[:FEWSHOT[:LIMIT]]",
                        help="an lm-eval task, e.g. hellaswag:0:200 (repeatable; adds to --tasks)")
    _access(parser)


def _report(args, _):
    from secateurs.evaluate.report import write_report

    metrics = dict(item.split("=", 1) for item in args.metrics)
    logs = {stage: path for stage, path in (("heal", args.heal_log), ("chat", args.chat_log)) if path}
    return write_report(metrics, args.out_dir, plan_json=args.plan, scores_png=args.heatmap,
                        train_logs=logs)


def _report_options(parser):
    parser.add_argument("--metrics", action="append", required=True, metavar="MODEL=JSON",
                        help="one model's evaluation (repeatable), e.g. base=results/eval/base.json")
    parser.add_argument("--plan", help="plan.json"), parser.add_argument("--heatmap")
    parser.add_argument("--heal-log"), parser.add_argument("--chat-log")


STAGES = [
    Stage("extract", "MediaWiki XML dump -> plain-text articles (Parquet)", SOURCE,
          (("dump", "the dump (.xml, .xml.bz2, UTF-8 or UTF-16)"), ("out_parquet", ""),
           ("stats_json", "")), _extract),
    Stage("convert", "script conversion (OpenCC) and quality filters of extracted articles",
          SOURCE, (("out_parquet", ""), ("stats_json", ""), ("articles", "extract's Parquet files")),
          _convert),
    Stage("text", "a text dataset (local file or hub) sampled to a token budget", SOURCE,
          (("out_parquet", ""), ("stats_json", "")), _text, _text_options),
    Stage("mix", "sources mixed by tokens, held-out documents per language", "data.mix",
          (("tokenizer_dir", "the base model's tokenizer"), ("out_dir", "")), _mix, _mix_options),
    Stage("tokenize", "tokenize and pack the mix into rows of seq_len tokens", "data.tokenize",
          (("mix_dir", "mix's output"), ("tokenizer_dir", ""), ("out_dir", "")), _tokenize),
    Stage("chat-data", "chat sources -> cleaned conversations (JSONL)", "chat",
          (("out_jsonl", ""), ("stats_json", "")), _chat_data),
    Stage("score", "layer scores (Block Influence, angular distance, ...) of every decoder layer",
          "prune.score", (("model_dir", ""), ("mix_dir", "mix's output (calibration text)"),
                          ("out_json", ""), ("out_csv", ""), ("out_png", "")), _score, _access),
    Stage("plan", "a pruning plan from layer scores (JSON + mergekit YAML)", "prune.plan",
          (("scores_json", ""), ("model_dir", ""), ("out_json", ""), ("out_yaml", "")), _plan,
          _plan_options),
    Stage("slice", "write the kept layers as a new model directory", "prune.slice",
          (("model_dir", ""), ("plan_json", ""), ("out_dir", "")), _slice, _access),
    Stage("teacher-logits", "the teacher's top-k log-probabilities over the packed data, once "
          "(distillation with heal.distill.mode cached)", "heal.distill",
          (("teacher", "the unpruned model"), ("packed", "tokenize's packed directory"),
           ("out_dir", "")), _teacher_logits, _teacher_logits_options),
    Stage("heal", "continued pretraining of a pruned model (full, LoRA, QLoRA; distillation)",
          "heal", (), _train("heal"), lambda p: _training_options(p, heal=True)),
    Stage("chat", "chat fine-tuning, loss on the assistant's turns only", "chat", (),
          _train("chat-sft"), lambda p: _training_options(p, heal=False)),
    Stage("evaluate", "bits per byte, perplexity, lm-eval tasks and sample answers of a model",
          "evaluate", (("model_dir", ""), ("out_json", "")), _evaluate, _evaluate_options),
    Stage("report", "the summary, tables and figures of a run", None, (("out_dir", ""),),
          _report, _report_options),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m secateurs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(required=True, metavar="STAGE")
    for stage in STAGES:
        p = sub.add_parser(stage.name, help=stage.help, description=stage.help)
        p.set_defaults(stage=stage)
        for name, text in stage.paths:
            p.add_argument(name, nargs="+" if name == "articles" else None, help=text or None)
        if stage.options:
            stage.options(p)
        if stage.section:
            add_section_options(p, stage.section)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stage: Stage = args.stage
    try:
        settings = section_settings(args, stage.section) if stage.section else {}
        stage.run(args, settings)
    except (ValueError, FileNotFoundError) as error:
        print(f"secateurs {stage.name}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
