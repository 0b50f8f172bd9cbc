"""Benchmark the pruning strategies: held-out bits per byte per language, and their cost.

    .venv/bin/python bench/plan.py MODEL_DIR --name NAME --n-remove N [--out result.json]

Real text, each language cut into three disjoint parts in file order: calibration (the
head of a mix's train.parquet, what score_layers reads), the measured slice (the tail of
heldout_<lang>.parquet, what measured/greedy read) and evaluation (the rest of the held-out
file, read by nobody else). English: LLaMA-Factory's c4_demo.jsonl; Chinese: the
instruction and output of LLaMA-Factory's alpaca_zh_demo.json (outputs of 150+ chars).

Runs, in one process on the same machine:
- score_layers without the perplexity criterion (plain scoring, the baseline) and with it;
- plan_pruning for bi, block (last token, all tokens), ppl, measured and greedy;
- bits per byte per language on the evaluation part, for the full model, every strategy's
  plan and every measured candidate, with the layers removed in memory (before healing).
Prints a markdown table and the cost ratios over plain scoring; writes JSON with --out.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

import argparse
import json
import tempfile
import time

import torch

REAL = REPO.parent / "shared" / "real-data" / "hiyouga+LLaMA-Factory"
if not REAL.is_dir():
    REAL = Path("/work/shared/real-data/hiyouga+LLaMA-Factory")
PROXIES = {"bi": ("bi", None), "block/last_token": ("block", "last_token"),
           "block/all_tokens": ("block", "all_tokens"), "ppl/layer": ("ppl", "layer")}


def texts(lang: str) -> list[str]:
    if lang == "en":
        lines = (REAL / "c4_demo.jsonl").read_text().splitlines()
        return [json.loads(line)["text"] for line in lines if line.strip()]
    rows = json.loads((REAL / "alpaca_zh_demo.json").read_text())
    return [f"{r['instruction']}\n{r['output']}" for r in rows if len(r["output"]) >= 150]


def write_mix(out: Path, args) -> dict[str, list[str]]:
    """train.parquet (calibration), heldout_<lang>.parquet (evaluation + measured tail)."""
    from secateurs.io import write_parquet

    train, evaluation = [], {}
    for lang in ("en", "zh"):
        docs = texts(lang)
        need = args.calib_docs + args.eval_docs + args.measure_docs
        if len(docs) < need:
            raise SystemExit(f"{lang}: {len(docs)} documents, need {need}")
        calib = docs[:args.calib_docs]
        evaluation[lang] = [t[:args.eval_chars] for t in
                            docs[args.calib_docs:args.calib_docs + args.eval_docs]]
        measured = docs[args.calib_docs + args.eval_docs:need]
        train += [{"text": t, "lang": lang} for t in calib]
        write_parquet([{"text": t, "lang": lang} for t in evaluation[lang] + measured],
                      out / f"heldout_{lang}.parquet")
    train = [train[i // 2 + (i % 2) * args.calib_docs] for i in range(len(train))]  # interleave
    write_parquet(train, out / "train.parquet")
    return evaluation


def timed(fn, *a, **k):
    start = time.perf_counter()
    result = fn(*a, **k)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir"), parser.add_argument("--name", required=True)
    parser.add_argument("--n-remove", type=int, required=True)
    parser.add_argument("--calib-docs", type=int, default=32)
    parser.add_argument("--measure-docs", type=int, default=8)
    parser.add_argument("--eval-docs", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=256, help="calibration tokens per doc")
    parser.add_argument("--measure-seq-len", type=int, default=256)
    parser.add_argument("--eval-chars", type=int, default=None,
                        help="evaluate the first N characters of each document (CPU time)")
    parser.add_argument("--heal-packed", help="also heal the two best plans on this packed "
                        "data (results/data/packed) with config/config.yaml's heal settings")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.manual_seed(0)

    from secateurs.evaluate.heldout import perplexity
    from secateurs.prune.plan import plan_pruning
    from secateurs.prune.scoring import layers_removed, load_model, score_layers
    from secateurs.prune.stage import heldout_files

    work = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    evaluation = write_mix(work, args)
    score_kw = dict(num_samples=2 * args.calib_docs, seq_len=args.seq_len, batch_size=4,
                    device="cpu", progress=False)
    _, plain_s = timed(score_layers, args.model_dir, work / "train.parquet", work / "s0.json",
                       work / "s0.csv", work / "s0.png", **score_kw)
    _, ppl_s = timed(score_layers, args.model_dir, work / "train.parquet", work / "s.json",
                     work / "s.csv", work / "s.png", ppl=True, **score_kw)
    measure = {"docs": args.measure_docs, "seq_len": args.measure_seq_len, "batch_size": 4,
               "language_weights": None, "dtype": "float32", "device": "cpu"}
    plans, plan_s = {}, {}
    for name in [*PROXIES, "measured", "greedy"]:
        strategy, metric = PROXIES.get(name, (name, None))
        plans[name], plan_s[name] = timed(
            plan_pruning, work / "s.json", args.model_dir, work / f"{name.replace('/', '_')}.json",
            work / "p.yml", strategy=strategy, metric=metric, n_remove=args.n_remove,
            heldout=heldout_files(work), measure=measure, model_name=args.name,
            out_png=work / f"{name.replace('/', '_')}.png")

    model, tokenizer = load_model(args.model_dir, device="cpu")
    n_layers = plans["bi"]["num_layers_before"]
    cuts = {"full model": []}
    cuts.update({name: plan["remove"] for name, plan in plans.items()})
    for c in plans["measured"]["candidates"]:
        cuts.setdefault("candidate " + "; ".join(f"{p['metric']}@{p['calibration']}"
                                                 for p in c["proposed_by"]), c["remove"])
    bpb = {}
    for name, remove in cuts.items():
        keep = [i for i in range(n_layers) if i not in set(remove)]
        with layers_removed(model, keep):
            bpb[name] = {lang: perplexity(model, tokenizer, docs, seq_len=args.seq_len,
                                          batch_size=4)["bits_per_byte"]
                         for lang, docs in evaluation.items()}
    sel = plans["measured"]["selection"]
    result = {
        "model": args.name, "num_layers": n_layers, "n_remove": args.n_remove,
        "docs": {"calibration": args.calib_docs, "measured": args.measure_docs,
                 "evaluation": args.eval_docs, "eval_chars": args.eval_chars,
                 "seq_len": args.seq_len, "measure_seq_len": args.measure_seq_len},
        "remove": {name: remove for name, remove in cuts.items()}, "bits_per_byte": bpb,
        "seconds": {"score_plain": plain_s, "score_with_ppl": ppl_s, **plan_s},
        "passes": {"measured": sel["passes"],
                   "greedy": plans["greedy"]["selection"]["passes"],
                   "tokens_per_pass": sel["tokens_per_pass"]},
        "measured_choice": plans["measured"]["metric"] + "@" + plans["measured"]["calibration"],
        "figures": str(work),
    }
    if args.heal_packed:
        result["healed_bits_per_byte"] = heal_best(result, args, evaluation, work)
    print(report(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


def heal_best(result: dict, args, evaluation: dict, work: Path) -> dict:
    """Slice and heal the two strategies of least worse-language bpb; bpb after healing."""
    import yaml

    from secateurs.evaluate.heldout import perplexity
    from secateurs.prune.scoring import load_model
    from secateurs.prune.slicing import slice_model
    from secateurs.train.launch import train_stage

    strategies = [*PROXIES, "measured", "greedy"]
    ranked = sorted(strategies, key=lambda n: max(result["bits_per_byte"][n].values()))
    best, seen = [], set()
    for name in ranked:  # two different cuts
        if tuple(result["remove"][name]) not in seen:
            seen.add(tuple(result["remove"][name]))
            best.append(name)
        if len(best) == 2:
            break
    heal_config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["heal"]
    healed = {}
    for name in best:
        tag = name.replace("/", "_")
        n_layers = result["num_layers"]
        keep = [i for i in range(n_layers) if i not in set(result["remove"][name])]
        slice_model(args.model_dir, keep, work / f"pruned-{tag}")
        start = time.perf_counter()
        train_stage("heal", model=str(work / f"pruned-{tag}"), packed=args.heal_packed,
                    out=str(work / f"healed-{tag}"), log_csv=str(work / f"heal-{tag}.csv"),
                    config=heal_config, checkpoint_dir=work / f"ckpt-{tag}")
        model, tokenizer = load_model(work / f"healed-{tag}", device="cpu")
        healed[name] = {lang: perplexity(model, tokenizer, docs, seq_len=args.seq_len,
                                         batch_size=4)["bits_per_byte"]
                        for lang, docs in evaluation.items()}
        healed[name]["heal_seconds"] = time.perf_counter() - start
    return healed


def report(r: dict) -> str:
    s = r["seconds"]
    lines = [f"{r['model']}: remove {r['n_remove']} of {r['num_layers']} layers; held-out bits "
             "per byte (evaluation part, before healing)", "",
             "| plan | removed | en | zh | worse |", "|---|---|---|---|---|"]
    for name, values in r["bits_per_byte"].items():
        lines.append(f"| {name} | {','.join(map(str, r['remove'][name])) or '-'} | "
                     f"{values['en']:.3f} | {values['zh']:.3f} | {max(values.values()):.3f} |")
    for name, values in r.get("healed_bits_per_byte", {}).items():
        lines.append(f"| {name}, healed | {','.join(map(str, r['remove'][name]))} | "
                     f"{values['en']:.3f} | {values['zh']:.3f} | "
                     f"{max(values['en'], values['zh']):.3f} |")
    measured_cost = s["score_with_ppl"] + s["measured"]
    lines += ["", f"measured chose {r['measured_choice']}",
              f"plain scoring {s['score_plain']:.1f} s; scoring with ppl {s['score_with_ppl']:.1f}"
              f" s; measured selection {s['measured']:.1f} s ({r['passes']['measured']} passes"
              f" of {r['passes']['tokens_per_pass']} tokens); greedy {s['greedy']:.1f} s "
              f"({r['passes']['greedy']} passes)",
              f"RATIO measured (scoring with ppl + selection) / plain scoring: "
              f"{measured_cost / s['score_plain']:.2f}",
              f"RATIO greedy (selection only, no scores needed) / plain scoring: "
              f"{s['greedy'] / s['score_plain']:.2f}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
