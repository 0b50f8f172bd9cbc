"""Benchmark: how much each healing mode recovers per token, on the real SmolLM2-135M.

    .venv/bin/python bench/heal_recovery.py --workdir W [--token-budget 200000]
        [--modes cached,ce,online] [--tasks arc_easy:0:300,piqa:0:300,hellaswag:0:300]
        [--online-steps 0]

The same cut, data and token budget healed three ways: cross-entropy only (`ce`, the
baseline), distillation from the cached teacher top-k (`cached`: the cache is built once,
timed on its own) and distillation with the teacher run beside the student (`online`,
whole-vocabulary KL, the reference the cache approximates). For each it records held-out
bits per byte per language at every milestone of the recovery curve (heal's own
`secateurs.train.recovery`, on the first `--heldout-tokens` tokens of each language's
held-out documents), lm-eval accuracy of the healed model, and wall seconds per training
token, printed as a ratio to the `ce` run measured in the same process (machine load
scales every mode alike only while it stays the same: the load is printed too).
`--online-steps N` stops the online run once its curve has its point at step N (a SIGTERM,
as a preemption would send: the schedule stays the full run's, so its points compare with
the other modes' at the same step): its time per token and the start of its curve where a
full online run does not fit. lm-eval then scores each mode's final model, then the models
kept at the curve's earlier milestones.

Inputs come from a run of config/recipes/smollm2-135m-real.yaml (real English and Chinese
text from ../shared/real-data, the measured plan's cut); the script runs the workflow up to
the pruned model and the packed data when W lacks them. Healing reads the first rows of
the packed data that the budget needs (the mix already shuffled the documents), so the
cache covers exactly what is trained on (`--rows` takes more, and healing then samples its
budget from them, the same rows in every mode). Results go to W/bench/heal_recovery.json and the
figure to bench/heal_recovery.png.
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
import math
import os
import shutil
import signal
import subprocess
import threading
import time

from secateurs.train.checkpoints import checkpoint_step, checkpoints  # noqa: E402
from secateurs.train.loop import TrainingInterrupted  # noqa: E402
from secateurs.train.recovery import read_rows  # noqa: E402

RECIPE = REPO / "config" / "recipes" / "smollm2-135m-real.yaml"
TARGETS = ["results/data/packed", "results/models/pruned", "results/models/base",
           "results/prune/plan.json"]


def ensure_inputs(work: Path) -> None:
    if all((work / t).exists() for t in TARGETS):
        return
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                    str(work), "--configfile", str(RECIPE), "--cores", "2", *TARGETS], check=True)


def packed_subset(packed: Path, out: Path, rows: int) -> Path:
    """The first `rows` packed rows as a packed directory of their own."""
    import pyarrow.parquet as pq

    from secateurs.io import read_json, write_json

    if (out / "meta.json").exists() and read_json(out / "meta.json")["num_sequences"] == rows:
        return out
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pq.read_table(packed / "train.parquet").slice(0, rows), out / "train.parquet")
    meta = read_json(packed / "meta.json")
    write_json({**meta, "num_sequences": rows, "num_tokens": rows * meta["seq_len"],
                "subset_of": str(packed)}, out / "meta.json")
    return out


def recipe_heal() -> dict:
    import yaml

    return yaml.safe_load(RECIPE.read_text())["heal"]


def heal_settings(mode: str, args) -> dict:
    heal = recipe_heal()
    distill = {**heal["distill"], "enabled": mode != "ce", "mode": "cached" if mode == "cached" else "online",
               "top_k": heal["distill"]["top_k"] if mode == "cached" else None}
    if args.alpha is not None:
        distill["alpha"] = args.alpha
    heal = {**heal, "distill": distill, "token_budget": args.token_budget,
            "learning_rate": args.learning_rate or heal["learning_rate"],
            "batch_size": args.batch_size or heal["batch_size"],
            "recovery": {**heal["recovery"], "max_tokens": args.heldout_tokens}}
    # A checkpoint at every milestone of the recovery curve, kept, so lm-eval can score the
    # model the curve measured there (the budget is chosen so the milestones fall on them).
    every = max(1, heal_steps(heal, args) // heal["recovery"]["milestones"])
    heal.update(save_steps=every, save_total_limit=heal["recovery"]["milestones"] + 1,
                keep_checkpoints=True)
    if mode == "online" and args.online_steps:  # stopped early (preempt_after): no snapshots
        heal.update(save_steps=10_000)
    return heal


def heal_steps(heal: dict, args) -> int:
    return math.ceil(args.token_budget / (heal["batch_size"] * args.seq_len))


def milestone_models(out: Path) -> dict[int, Path]:
    """Each kept checkpoint's weights, with the published model's tokenizer, as a model
    directory of its own ({step: directory}); the optimizer state is dropped."""
    from secateurs.train.saving import MODEL_FILE_PATTERNS

    models = {}
    for checkpoint in checkpoints(out / "checkpoints"):
        step = checkpoint_step(str(checkpoint))
        target = out / "milestones" / f"step-{step}"
        target.mkdir(parents=True, exist_ok=True)
        for pattern in MODEL_FILE_PATTERNS:
            for item in checkpoint.glob(pattern):
                shutil.copy2(item, target / item.name)
        for item in (out / "healed").glob("*token*"):
            shutil.copy2(item, target / item.name)
        models[step] = target
    return models


def lm_eval(model_dir: Path, tasks: list[dict], benchmarks: Path) -> dict:
    from secateurs.evaluate.heldout import load_model
    from secateurs.evaluate.lmeval import run_tasks

    if not tasks:
        return {}
    model, tokenizer = load_model(model_dir, device="cpu")
    started = time.perf_counter()
    scores = run_tasks(model, tokenizer, tasks, benchmarks_dir=benchmarks, batch_size=8)
    logging.info("lm-eval of %s: %.0f s", model_dir, time.perf_counter() - started)
    return scores


def base_bits_per_byte(base: Path, heldout: dict, settings: dict, seq_len: int) -> dict:
    """The unpruned model on the same held-out slices the recovery curve scores."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from secateurs.train.recovery import heldout_slice, slice_nll

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    out = {}
    for lang, path in heldout.items():
        data = heldout_slice(path, tokenizer, max_tokens=settings["max_tokens"], seq_len=seq_len)
        nll, _ = slice_nll(model, data["windows"], batch_size=settings["batch_size"],
                           pad_id=tokenizer.pad_token_id or 0)
        out[lang] = nll / math.log(2) / data["bytes"]
    return out


def mode_dir(work: Path, args, mode: str) -> Path:
    return work / "bench" / args.results / mode


def run_mode(mode: str, args, work: Path, packed: Path, heldout: dict, results: dict) -> None:
    from secateurs.train.heal import heal
    from secateurs.train.teacher_logits import build_teacher_cache

    out = mode_dir(work, args, mode)
    shutil.rmtree(out, ignore_errors=True)
    cache = None
    if mode == "cached":  # built once (a later call reuses it), timed by its own meta.json
        cache = work / "bench" / "teacher_logits"
        if not (cache / "meta.json").exists():
            build_teacher_cache(work / "results/models/base", packed, cache,
                                work_dir=work / "bench" / "teacher_logits-work",
                                top_k=heal_settings(mode, args)["distill"]["top_k"],
                                batch_size=8, rows_per_shard=256)
        meta = json.loads((cache / "meta.json").read_text())
        results["cache"] = {**{k: meta[k] for k in ("bytes", "bytes_per_token", "mean_top_k_mass",
                                                     "rows", "seq_len", "top_k", "seconds")},
                            "load": os.getloadavg()}
    started = time.perf_counter()
    stop = args.online_steps if mode == "online" else 0
    if stop:
        preempt_after(out / "checkpoints" / "recovery.csv", stop)
    try:
        summary = heal(work / "results/models/pruned", packed, out / "healed",
                       checkpoint_dir=out / "checkpoints", log_csv=out / "heal.csv",
                       config=heal_settings(mode, args), teacher_dir=work / "results/models/base",
                       teacher_logits=cache, heldout=heldout, recovery_csv=out / "recovery.csv")
    except TrainingInterrupted:
        if not stop:
            raise
        summary = stopped_summary(out / "checkpoints")
    seconds = time.perf_counter() - started
    train_seconds = seconds - (summary["recovery_seconds"] or 0)
    results["modes"][mode] = {
        "steps": summary["steps"], "tokens": summary["tokens_seen"], "seconds": round(seconds, 1),
        "train_seconds": round(train_seconds, 1), "stopped_early": bool(stop),
        "seconds_per_1k_tokens": round(1000 * train_seconds / summary["tokens_seen"], 3),
        "load": os.getloadavg(),
        "recovery": read_rows(out / ("checkpoints/recovery.csv" if stop else "recovery.csv")),
        "milestones": {} if stop else {str(step): {"dir": str(path), "lm_eval": {}} for step, path
                                       in milestone_models(out).items() if step < summary["steps"]}}
    shutil.rmtree(out / "checkpoints", ignore_errors=True)


def preempt_after(recovery_csv: Path, milestone_step: int) -> None:
    """SIGTERM this process, as a SLURM preemption would, once the recovery curve has its
    point at `milestone_step`: healing checkpoints at the end of the step it is in and
    stops, having followed the full run's learning-rate schedule up to there."""

    def watch():
        while True:
            try:
                if any(r["step"] >= milestone_step for r in read_rows(recovery_csv)):
                    break
            except (ValueError, KeyError):  # a row being written
                pass
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def stopped_summary(checkpoint_dir: Path) -> dict:
    """What a preempted run did, from its last checkpoint and its live recovery CSV."""
    state = json.loads(max(checkpoints(checkpoint_dir), key=lambda c: checkpoint_step(str(c)))
                       .joinpath("trainer_state.json").read_text())
    rows = read_rows(checkpoint_dir / "recovery.csv")
    return {"steps": state["global_step"], "tokens_seen": int(state["num_input_tokens_seen"]),
            "recovery_seconds": sum(r["seconds"] for r in rows)}


def models_to_score(work: Path, args, results: dict) -> list[tuple[dict, Path]]:
    """(results row, model directory) for lm-eval: the reference models and each mode's
    healed model first, then the models at the curve's earlier milestones."""
    finals = [(results[name], work / f"results/models/{name}") for name in ("base", "pruned")]
    finals += [(row, mode_dir(work, args, mode) / "healed") for mode, row in results["modes"].items()
               if not (mode == "online" and args.online_steps)]
    earlier = [(point, Path(point["dir"])) for row in results["modes"].values()
               for point in row.get("milestones", {}).values()]
    return finals + earlier


def curve_table(results: dict) -> str:
    """The recovery curve per mode: bits per byte and accuracy at every milestone."""
    tasks = list(results["base"].get("lm_eval") or {})
    head = ["mode", "step", "tokens", "bits/byte en", "bits/byte zh", *(f"{t} acc" for t in tasks)]
    rows = [["pruned", "0", "0", *(f"{results['pruned']['bits_per_byte'][l]:.3f}" for l in ("en", "zh")),
             *(_acc(results["pruned"].get("lm_eval"), t) for t in tasks)]]
    for mode, row in results["modes"].items():
        scored = {**row.get("milestones", {}), str(row["steps"]): row}
        for step in sorted({r["step"] for r in row["recovery"]} - {0}):
            point = {r["language"]: r for r in row["recovery"] if r["step"] == step}
            scores = scored.get(str(step), {}).get("lm_eval")
            rows.append([mode, str(step), f"{next(iter(point.values()))['tokens_seen']:,}",
                         *(f"{point[l]['bits_per_byte']:.3f}" if l in point else "-" for l in ("en", "zh")),
                         *(_acc(scores, t) for t in tasks)])
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows])


def _acc(scores: dict | None, task: str) -> str:
    row = (scores or {}).get(task)
    return f"{100 * row['acc']:.1f}" if row else "-"


def table(results: dict) -> str:
    """The comparison as a markdown table: bits per byte (change vs base), accuracy (kept
    of base), seconds per 1k training tokens and their ratio to the ce run."""
    base, modes = results["base"], results["modes"]
    ce = modes.get("ce")
    tasks = list(base.get("lm_eval") or {})

    def acc(scores, task):
        row, ref = (scores or {}).get(task), base["lm_eval"].get(task)
        if not row:
            return "-"
        return f"{100 * row['acc']:.1f}" + (f" ({100 * row['acc'] / ref['acc']:.0f}%)" if ref else "")

    def bpb(value, lang):
        change = 100 * (value / base["bits_per_byte"][lang] - 1)
        return f"{value:.3f}" + (f" ({change:+.1f}%)" if change else "")

    rows = [["base", "-", *(bpb(base["bits_per_byte"][l], l) for l in ("en", "zh")),
             *(acc(base["lm_eval"], t) for t in tasks), "-", "-"]]
    pruned = results["pruned"]
    rows.append(["pruned", "0", *(bpb(pruned["bits_per_byte"][l], l) for l in ("en", "zh")),
                 *(acc(pruned.get("lm_eval"), t) for t in tasks), "-", "-"])
    for mode, row in modes.items():
        at = max(r["step"] for r in row["recovery"])  # the last step; a stopped run's last point
        last = {r["language"]: r for r in row["recovery"] if r["step"] == at}
        ratio = row["seconds_per_1k_tokens"] / ce["seconds_per_1k_tokens"] if ce else None
        rows.append([f"healed, {mode}", f"{next(iter(last.values()))['tokens_seen']:,}",
                     *(bpb(last[l]["bits_per_byte"], l) if l in last else "-" for l in ("en", "zh")),
                     *(acc(row.get("lm_eval"), t) for t in tasks),
                     f"{row['seconds_per_1k_tokens']:.1f}", f"{ratio:.2f}" if ratio else "-"])
    head = ["model", "tokens", "bits/byte en", "bits/byte zh", *(f"{t} acc" for t in tasks),
            "s / 1k tokens", "vs ce"]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows])


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, lang in zip(axes, ("en", "zh")):
        for mode, row in results["modes"].items():
            points = [(r["tokens_seen"], r["bits_per_byte"]) for r in row["recovery"]
                      if r["language"] == lang]
            if len(points) > 1:
                ax.plot(*zip(*points), marker="o", label=f"healed, {mode}")
        ax.axhline(results["base"]["bits_per_byte"][lang], color="black", ls="--", label="base")
        ax.axhline(results["pruned"]["bits_per_byte"][lang], color="grey", ls=":", label="pruned")
        ax.set(title=f"SmolLM2-135M, held-out {lang}", xlabel="training tokens",
               ylabel="bits per byte")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--token-budget", type=int, default=0, help="default: the recipe's")
    parser.add_argument("--heldout-tokens", type=int, default=8192)
    parser.add_argument("--rows", type=int, default=0, help="packed rows to heal on (default: "
                        "what the budget reads; more: healing samples the budget from them)")
    parser.add_argument("--modes", default="cached,ce,online")
    parser.add_argument("--online-steps", type=int, default=0, help="stop the online run once "
                        "its recovery curve has its point at this step (same schedule as a full run)")
    parser.add_argument("--learning-rate", type=float, default=0.0, help="default: the recipe's")
    parser.add_argument("--batch-size", type=int, default=0, help="default: the recipe's")
    parser.add_argument("--alpha", type=float, default=None, help="distillation's KL weight "
                        "(1 - alpha goes to cross-entropy); default: the recipe's")
    parser.add_argument("--results", default="heal_recovery", help="name of the JSON (in W/bench) "
                        "and of the modes' folders' parent, so variants keep apart")
    parser.add_argument("--tasks", default="arc_easy:0:300,piqa:0:300,hellaswag:0:300")
    parser.add_argument("--benchmarks", type=Path, default=REPO.parent / "shared/real-data/benchmarks")
    args = parser.parse_args()
    from secateurs.__main__ import _task

    args.tasks = [_task(t) for t in args.tasks.split(",") if t]
    args.token_budget = args.token_budget or recipe_heal()["token_budget"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = args.workdir.resolve()
    ensure_inputs(work)
    out_json = work / "bench" / f"{args.results}.json"
    results = json.loads(out_json.read_text()) if out_json.exists() else {"modes": {}}
    from secateurs.io import read_json, write_json

    meta = read_json(work / "results/data/packed/meta.json")
    args.seq_len = per_row = meta["seq_len"]
    settings = heal_settings("ce", args)
    rows = args.rows or math.ceil(args.token_budget / per_row / settings["batch_size"]) * settings["batch_size"]
    packed = packed_subset(work / "results/data/packed", work / "bench" / "packed", rows)
    heldout = {p.stem.removeprefix("heldout_"): str(p)
               for p in sorted((work / "results/data/mix").glob("heldout_*.parquet"))}
    results.update(token_budget=args.token_budget, rows=rows, seq_len=per_row,
                   plan=read_json(work / "results/prune/plan.json").get("remove"))
    for model in ("base", "pruned"):  # the curve's reference levels, on the same slices
        if model not in results:
            results[model] = {"bits_per_byte": base_bits_per_byte(
                work / f"results/models/{model}", heldout, settings["recovery"], per_row), "lm_eval": {}}
            write_json(results, out_json)
    for mode in args.modes.split(","):  # the recovery curves first: they are what is compared
        if mode not in results["modes"]:
            run_mode(mode, args, work, packed, heldout, results)
            write_json(results, out_json)
            print(table(results), flush=True)
    for row, model_dir in models_to_score(work, args, results):
        missing = [t for t in args.tasks if t["name"] not in row.get("lm_eval", {})]
        if missing:  # tasks already scored are kept: a later call can add hellaswag
            row["lm_eval"] = {**row.get("lm_eval", {}), **lm_eval(model_dir, missing, args.benchmarks)}
            write_json(results, out_json)
            print(table(results), curve_table(results), sep="\n\n", flush=True)
    figure(results, REPO / "bench" / f"{args.results}.png")
    print(table(results), curve_table(results), sep="\n\n")
    print(f"cache: {json.dumps(results.get('cache'))}")


if __name__ == "__main__":
    main()
