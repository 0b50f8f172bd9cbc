"""Benchmark: distillation-healed vs plainly healed perplexity, on a finished workflow run.

    .venv/bin/snakemake --cores all                       # the demo, once
    .venv/bin/python bench/distill.py [--workdir .] [--settings 0.5:2.0 1.0:1.0 ...]

Takes a finished run's pruned model, packed training data, base model (the teacher) and
held-out sets, and heals the pruned model with the run's own `heal:` settings (the
config the run used, read from the workflow config) once plainly and once per distillation
setting `alpha:temperature`, every run at the same token budget, once per `--seeds` seed
(the seed orders the data and initialises nothing else: runs differ only in the batches
they see). Prints held-out perplexity per language for each (mean and spread over seeds),
and the ratio distilled / plain of the means (below 1 = distillation helped; the issue
asks for <= 1), beside the seed-to-seed spread of plain healing, which says how large a
difference has to be before it means anything. The base and pruned rows give the scale: healing should
land between them, or below the base when the base itself is undertrained, as the
demo's is.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is sys.path[0]; bench/tokenize.py would shadow the stdlib module.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

import argparse
import json
import logging
import statistics
import tempfile
import time

import yaml


def heal_settings(configfiles: list[Path]) -> dict:
    """The `heal:` section the run used: the config files merged in order, as Snakemake does."""
    from snakemake.utils import update_config

    merged: dict = {}
    for path in configfiles:
        update_config(merged, yaml.safe_load(path.read_text()))
    return dict(merged["heal"])


def evaluate(model_dir: Path, mix: Path, out: Path) -> dict[str, float]:
    from secateurs.evaluate.heldout import evaluate_model

    result = evaluate_model(model_dir, {"en": mix / "heldout_en.parquet",
                                        "zh": mix / "heldout_zh.parquet"},
                            out, seq_len=128, batch_size=8, max_new_tokens=1)
    return result["perplexity"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO)
    parser.add_argument("--configfile", type=Path, nargs="*",
                        default=[REPO / "config" / "config.yaml"])
    parser.add_argument("--settings", nargs="*", default=["0.5:2.0", "0.2:1.0"],
                        help="alpha:temperature pairs to try")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from secateurs.train.heal import heal

    work = args.workdir.resolve()
    models, mix = work / "results" / "models", work / "results" / "data" / "mix"
    teacher = Path(json.loads((work / "results" / "prune" / "plan.json").read_text())["source_model"])
    if not teacher.is_absolute():
        teacher = work / teacher
    base_cfg = heal_settings(args.configfile)
    runs = {"plain": {**base_cfg, "distill": {"enabled": False}}}
    for setting in args.settings:
        alpha, temperature = (float(v) for v in setting.split(":"))
        runs[f"distill a={alpha:g} T={temperature:g}"] = {
            **base_cfg, "distill": {"enabled": True, "mode": "online", "top_k": None,
                                    "alpha": alpha, "temperature": temperature}}
    table: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        table["base (teacher)"] = [evaluate(teacher, mix, root / "base.json")]
        table["pruned"] = [evaluate(models / "pruned", mix, root / "pruned.json")]
        for name, cfg in runs.items():
            for seed in args.seeds:
                run = root / f"{len(list(root.iterdir()))}"
                started = time.perf_counter()
                summary = heal(models / "pruned", work / "results" / "data" / "packed", run / "model",
                               checkpoint_dir=run / "ckpt", log_csv=run / "log.csv",
                               config={**cfg, "seed": seed, "disable_tqdm": True},
                               teacher_dir=teacher if cfg["distill"]["enabled"] else None)
                table.setdefault(name, []).append(evaluate(run / "model", mix, run / "eval.json"))
                print(f"{name} seed {seed}: {summary['tokens_seen']:,} tokens in "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
    langs = list(table["pruned"][0])
    mean = {name: {lang: statistics.fmean(r[lang] for r in rows) for lang in langs}
            for name, rows in table.items()}
    print(f"\nheld-out perplexity ({work}; seeds {args.seeds}; mean, and min-max over seeds):")
    for name, rows in table.items():
        print(f"{name:>22}: " + "  ".join(
            f"{lang} {mean[name][lang]:7.2f}" + (f" ({min(r[lang] for r in rows):.2f}-"
                                                 f"{max(r[lang] for r in rows):.2f})"
                                                 if len(rows) > 1 else "") for lang in langs))
    plain = mean["plain"]
    if len(args.seeds) > 1:
        print("plain healing, seed-to-seed spread (max-min)/mean: " + "  ".join(
            f"{lang} {(max(r[lang] for r in table['plain']) - min(r[lang] for r in table['plain'])) / plain[lang]:.3f}"
            for lang in langs))
    for name in runs:
        if name != "plain":
            print("RATIO " + name + " / plain: " + "  ".join(
                f"{lang} {mean[name][lang] / plain[lang]:.3f}" for lang in langs) + "  (target <= 1)")


if __name__ == "__main__":
    main()
