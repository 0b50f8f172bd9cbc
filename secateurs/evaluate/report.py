"""The run's report: a summary table of every model, the pruning plan, samples and plots.

This module owns the `report` stage. It reads the JSON that `secateurs.evaluate.heldout` wrote for
each model (in pipeline order: base, pruned, healed, chat), the pruning plan, an optional
layer-score heatmap and the training logs, and writes into one directory:

- `summary.md`: the summary table (model, layers, parameters, bits per byte and
  perplexity per language, change of bits per byte vs base), the benchmark table
  (lm-eval tasks: acc, acc_norm, stderr, items, share of the base's score kept), a
  parameters-vs-perplexity table, the plan, training figures and the sample answers;
- `summary.json`: the same numbers, machine-readable;
- `perplexity.png`: grouped bars of perplexity per language per model;
- `params_vs_perplexity.png`: perplexity against parameter count, one line per language;
- `loss.png`: heal and chat training loss against tokens seen (when logs are given);
- `layer_scores.png`: a copy of the scoring stage's heatmap (when given).

Optional inputs that are missing are skipped with a warning, never an error: a run
without a chat stage still gets its report. Every file is written atomically; figures
use matplotlib's object API with the Agg canvas, so no display and no global backend.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Sequence

from secateurs.io import atomic_output, read_json, write_json

log = logging.getLogger(__name__)

LANG_ORDER = ("en", "zh")
OPTIONAL_OUTPUTS = ("loss.png", "layer_scores.png", "pruning.png", "params_vs_perplexity.png")


class ReportError(ValueError):
    """An input to the report stage is unusable; the message names it and the fix."""


# ------------------------------------------------------------------------------ inputs

def load_metrics(metrics: dict) -> list[dict]:
    """Read each model's evaluation JSON, keeping the caller's (pipeline) order."""
    loaded = []
    for name, path in metrics.items():
        if not Path(path).is_file():
            raise ReportError(f"report: metrics file {path} for model {name!r} does not "
                              "exist; run its evaluate rule first")
        data = read_json(path)
        if "perplexity" not in data:
            raise ReportError(f"report: {path} has no `perplexity` field; it is not an "
                              "evaluate_model output")
        loaded.append({**data, "model": name})
    return loaded


def languages(models: Sequence[dict]) -> list[str]:
    """Languages present in any model: en, zh first, then others in sorted order."""
    seen = {lang for m in models for lang in m.get("perplexity", {})}
    return [l for l in LANG_ORDER if l in seen] + sorted(seen - set(LANG_ORDER))


def read_train_log(path: str | os.PathLike) -> list[dict]:
    """Rows of a training log CSV with a numeric loss (eval-only rows are dropped)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            parsed = {k: _number(v) for k, v in row.items() if k is not None}
            if parsed.get("loss") is not None and parsed.get("step") is not None:
                rows.append(parsed)
    return rows


def _number(value: str | None) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


# ------------------------------------------------------------------------- formatting

def human_count(n: float | None) -> str:
    """1234567 -> '1.23M', 6.06e9 -> '6.06B' (three significant digits)."""
    if n is None:
        return "-"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.0f}"


def _ppl(value: float | None) -> str:
    """Two decimals where they matter (a trained model), none for a broken one's 25,000."""
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.1f}" if value < 10_000 else f"{value:,.0f}"


def _change(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{(value / base - 1) * 100:+.1f}%"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; `|` in cells is escaped."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def summary_rows(models: Sequence[dict], langs: Sequence[str]) -> list[dict]:
    """One record per model with raw numbers; change is relative to the first model.

    `change_vs_base` is of perplexity, `bpb_change_vs_base` of bits per byte (the figure
    that compares across tokenizers and languages, which the table leads with).
    """
    base = models[0] if models else {}
    rows = []
    for m in models:
        ppl = {l: m["perplexity"].get(l) for l in langs}
        bpb = {l: m.get("bits_per_byte", {}).get(l) for l in langs}
        rows.append({
            "model": m["model"], "layers": m.get("num_layers"),
            "parameters": m.get("num_parameters"), "perplexity": ppl, "bits_per_byte": bpb,
            "bits_per_char": {l: m.get("bits_per_char", {}).get(l) for l in langs},
            "change_vs_base": {l: (None if ppl[l] is None or not base["perplexity"].get(l)
                                   else ppl[l] / base["perplexity"][l] - 1) for l in langs},
            "bpb_change_vs_base": {l: _ratio_change(bpb[l], base.get("bits_per_byte", {}).get(l))
                                   for l in langs},
            "parameters_vs_base": (None if not base.get("num_parameters") or
                                   m.get("num_parameters") is None
                                   else m["num_parameters"] / base["num_parameters"]),
        })
    return rows


def summary_table(rows: Sequence[dict], langs: Sequence[str]) -> str:
    """model | layers | parameters | bits/byte <lang>... | ppl <lang>... | change vs base.

    Bits per byte leads: per-token perplexity does not compare across tokenizers or
    languages, bits per byte does. The change column is that of bits per byte (of
    perplexity for evaluation files written before bits per byte existed).
    """
    header = ["model", "layers", "parameters", *[f"bits/byte {l}" for l in langs],
              *[f"ppl {l}" for l in langs], "change vs base"]
    by_bpb = all(r["bits_per_byte"][l] is not None for r in rows for l in langs)
    key = "bpb_change_vs_base" if by_bpb else "change_vs_base"
    body = []
    for r in rows:
        change = ", ".join(f"{l} {_pct(r[key][l])}" for l in langs)
        body.append([r["model"], r["layers"] if r["layers"] is not None else "-",
                     human_count(r["parameters"]), *[_bpb(r["bits_per_byte"][l]) for l in langs],
                     *[_ppl(r["perplexity"][l]) for l in langs],
                     change if r is not rows[0] else "(base)"])
    return markdown_table(header, body)


def _bpb(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio_change(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base - 1


# ---------------------------------------------------------------------- benchmarks

def benchmark_rows(models: Sequence[dict]) -> list[dict]:
    """One record per (task, model): acc, acc_norm, stderr, n and the share of base kept.

    `kept` is the model's score over the base's (the first model's) on the same task, for
    acc and acc_norm each: how much of the base's benchmark score a stage keeps. Chance is
    not subtracted, so read it beside the score (a 4-way task's floor is 25%).
    """
    base = models[0].get("benchmarks", {}) if models else {}
    tasks = list(dict.fromkeys(t for m in models for t in m.get("benchmarks", {})))
    rows = []
    for task in tasks:
        for m in models:
            score = m.get("benchmarks", {}).get(task)
            if score is None:
                continue
            kept = {metric: (None if score.get(metric) is None or not base.get(task, {}).get(metric)
                             else score[metric] / base[task][metric])
                    for metric in ("acc", "acc_norm")}
            rows.append({"task": task, "model": m["model"], "n": score.get("n"),
                         "num_fewshot": score.get("num_fewshot"),
                         **{k: score.get(k) for k in ("acc", "acc_stderr", "acc_norm",
                                                      "acc_norm_stderr")},
                         "kept": kept})
    return rows


def benchmark_table(rows: Sequence[dict]) -> str:
    """task | model | n | shots | acc ± stderr | acc_norm ± stderr | kept (acc / acc_norm)."""
    header = ["task", "model", "n", "shots", "acc", "acc_norm", "kept of base"]
    body = []
    for r in rows:
        kept = " / ".join(f"{r['kept'][k]:.1%}" for k in ("acc", "acc_norm")
                          if r["kept"][k] is not None)
        body.append([r["task"], r["model"], "-" if r["n"] is None else r["n"],
                     "-" if r["num_fewshot"] is None else r["num_fewshot"],
                     _score(r["acc"], r["acc_stderr"]), _score(r["acc_norm"], r["acc_norm_stderr"]),
                     kept or "-"])
    return markdown_table(header, body)


def _score(value: float | None, stderr: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" + ("" if stderr is None else f" ± {stderr:.1%}")


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:+.1f}%"


def params_vs_perplexity_table(rows: Sequence[dict], langs: Sequence[str]) -> str:
    """Parameters against perplexity, largest model first: what each parameter cut cost.

    `ppl x base` is the factor by which perplexity grew; `% params` the share of the base
    model's parameters kept (ShortGPT and Gromov et al. report pruning this way).
    """
    header = ["model", "parameters", "% of base params",
              *[c for l in langs for c in (f"ppl {l}", f"ppl {l} × base")]]
    base = rows[0]["perplexity"] if rows else {}
    ordered = sorted(rows, key=lambda r: -(r["parameters"] or 0))  # stable: pipeline order
    body = [[r["model"], human_count(r["parameters"]),
             "-" if r["parameters_vs_base"] is None else f"{r['parameters_vs_base']:.1%}",
             *[c for l in langs for c in (
                 _ppl(r["perplexity"][l]),
                 "-" if r["perplexity"][l] is None or not base.get(l)
                 else f"{r['perplexity'][l] / base[l]:.2f}")]]
            for r in ordered]
    return markdown_table(header, body)


def plan_section(plan: dict) -> str:
    """The pruning plan as a short markdown list."""
    before, after = plan.get("params_before"), plan.get("params_after")
    lines = [f"- strategy: {plan['strategy']}",
             f"- layers: {plan.get('num_layers_before', '-')} → "
             f"{plan.get('num_layers_after', '-')}",
             f"- removed: {_layer_list(plan.get('remove'))}",
             f"- kept: {_layer_list(plan.get('keep'))}"]
    if plan.get("slices"):  # secateurs.prune.plan's half-open ranges, as mergekit's passthrough
        lines.append("- kept slices: " + " + ".join(f"[{a}, {b})" for a, b in plan["slices"]))
    if before and after:
        lines.append(f"- parameters: {human_count(before)} → {human_count(after)} "
                     f"({(1 - after / before):.1%} fewer)")
    return "\n".join(lines)


def _layer_list(layers) -> str:
    return "-" if layers is None else ", ".join(map(str, layers)) or "(none)"


def training_section(logs: dict[str, list[dict]], ran: dict[str, dict] | None = None) -> str:
    """Per stage: steps and tokens that ran, loss over all steps, first and last logged
    loss, mean throughput. `ran` is `training_summary`'s (what the trainer finished with,
    not the last logged row, which trails it by up to logging_steps)."""
    ran = ran or training_summary(logs, {})
    header = ["stage", "steps", "tokens seen", "loss (all steps)", "first loss", "last loss",
              "tokens/s"]
    body = []
    for stage, rows in logs.items():
        speeds = [r["tokens_per_second"] for r in rows if r.get("tokens_per_second")]
        done = ran[stage]
        body.append([stage, f"{done['steps']:.0f}", _count(done.get("tokens_seen")),
                     "-" if done.get("train_loss") is None else f"{done['train_loss']:.3f}",
                     f"{rows[0]['loss']:.3f}", f"{rows[-1]['loss']:.3f}",
                     human_count(sum(speeds) / len(speeds)) if speeds else "-"])
    return markdown_table(header, body)


def distillation_lines(ran: dict[str, dict]) -> list[str]:
    """What healing distilled from, and what the teacher cache cost (disk, build time)."""
    heal = ran.get("heal") or {}
    cache = heal.get("teacher_cache")
    if heal.get("distill_mode") == "online":
        return ["Healing distilled from the unpruned model, run beside it at every step.", ""]
    if not cache:
        return []
    return [f"Healing distilled from the cached top-{cache['top_k']} of the unpruned model "
            f"(results/data/teacher_logits): {cache['bytes'] / 1e6:,.1f} MB, "
            f"{cache['bytes_per_token']:.0f} B per training token, built once in "
            f"{cache['seconds']:,.0f} s; the top {cache['top_k']} hold "
            f"{100 * cache['mean_top_k_mass']:.1f}% of the teacher's probability.", ""]


def _count(n) -> str:
    """An exact count with thousands separators (120,832 tokens, as the trainer counted)."""
    return "-" if n is None else f"{n:,.0f}"


def samples_section(models: Sequence[dict]) -> str:
    """Each prompt once, then every model's answer to it (pipeline order)."""
    prompts: dict[tuple, list[tuple[str, str]]] = {}
    for m in models:
        for s in m.get("samples", []):
            prompts.setdefault((s["prompt"], s.get("chat", False)), []).append(
                (m["model"], s))
    parts = []
    for (prompt, chat), answers in prompts.items():
        parts.append(f"### {'chat' if chat else 'continue'}: {_inline(prompt)}\n")
        parts += [f"- **{name}**: {_inline(s['completion']) or _empty(s)}"
                  for name, s in answers]
        parts.append("")
    return "\n".join(parts).rstrip()


def _empty(sample: dict) -> str:
    """An empty answer, with why: the end token came first, or only whitespace came."""
    if sample.get("new_tokens") == 1 and sample.get("stop") == "end":
        return "(empty: the model stopped at once, its first token was the end token)"
    if sample.get("new_tokens"):
        return f"(empty: {sample['new_tokens']} tokens of whitespace or special tokens)"
    return "(empty)"


def _inline(text: str) -> str:
    """One markdown line: newlines shown as ⏎, markdown control characters escaped."""
    text = text.strip().replace("\r", "").replace("\n", " ⏎ ")
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text


# ------------------------------------------------------------------------------ plots

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")


def perplexity_plot(rows: Sequence[dict], langs: Sequence[str], path: Path,
                    title: str = "") -> None:
    """Grouped bars: one group per model, one bar per language, value printed on top."""
    fig = _figure(max(5.0, 1.4 * len(rows) + 2), 4.2)
    ax = fig.add_subplot()
    width = 0.8 / max(len(langs), 1)
    values = [r["perplexity"][l] for r in rows for l in langs if r["perplexity"][l]]
    for i, lang in enumerate(langs):
        xs = [j + (i - (len(langs) - 1) / 2) * width for j in range(len(rows))]
        ys = [r["perplexity"][lang] or 0 for r in rows]
        bars = ax.bar(xs, ys, width, label=lang)
        ax.bar_label(bars, labels=[_ppl(r["perplexity"][lang]) for r in rows],
                     fontsize=8, padding=2)
    ax.set_ylabel("held-out perplexity (lower is better)")
    _log_if_spread(ax, values)
    ax.set_xticks(range(len(rows)),
                  [f"{r['model']}\n{r['layers']} layers, {human_count(r['parameters'])}"
                   for r in rows], fontsize=8)
    ax.set_title(f"{title}: perplexity per language and model".lstrip(": "))
    ax.margins(y=0.15)
    ax.legend(title="language")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


MARKERS = "osD^vP*Xph"


def params_vs_perplexity_plot(rows: Sequence[dict], langs: Sequence[str], path: Path,
                              title: str = "") -> None:
    """Perplexity against parameter count: colour is the language, marker the model.

    Markers rather than text labels because the pruned, healed and chat models share one
    parameter count and their labels would overprint each other. A dotted line follows
    the pipeline order per language, so the pruning jump and the healing recovery show.
    """
    fig = _figure(6.8, 4.4)
    ax = fig.add_subplot()
    colours = {}
    for lang in langs:
        points = [(r["parameters"], r["perplexity"][lang]) for r in rows
                  if r["parameters"] and r["perplexity"][lang]]
        if points:
            line, = ax.plot(*zip(*points), linestyle=":", alpha=0.5)
            colours[lang] = line.get_color()
    for i, r in enumerate(rows):
        for lang, colour in colours.items():
            if r["parameters"] and r["perplexity"][lang]:
                ax.scatter(r["parameters"], r["perplexity"][lang], color=colour, s=45,
                           marker=MARKERS[i % len(MARKERS)], zorder=3)
    ax.set_xlabel("parameters")
    ax.set_ylabel("held-out perplexity (lower is better)")
    _log_if_spread(ax, [r["perplexity"][l] for r in rows for l in langs])
    ax.set_title(f"{title}: parameters vs perplexity".lstrip(": "))
    ax.xaxis.set_major_formatter(lambda x, _: human_count(x))
    ax.grid(alpha=0.3)
    _two_legends(ax, colours, [r["model"] for r in rows])
    _save(fig, path)


def _two_legends(ax, colours: dict, models: Sequence[str]) -> None:
    from matplotlib.lines import Line2D

    by_lang = [Line2D([], [], color=c, marker="o", linestyle="") for c in colours.values()]
    by_model = [Line2D([], [], color="grey", marker=MARKERS[i % len(MARKERS)], linestyle="")
                for i in range(len(models))]
    # Outside the axes (right), where no point can hide under them.
    first = ax.legend(by_lang, list(colours), title="language", loc="upper left",
                      bbox_to_anchor=(1.02, 1), fontsize=8)
    ax.add_artist(first)
    ax.legend(by_model, list(models), title="model", loc="lower left",
              bbox_to_anchor=(1.02, 0), fontsize=8)


def _log_if_spread(ax, values) -> None:
    """Log scale when values span more than 20x (a random or broken model's perplexity
    would otherwise flatten every other value)."""
    values = [v for v in values if v]
    if values and max(values) / min(values) > 20:
        ax.set_yscale("log")
        ax.set_ylabel(ax.get_ylabel() + ", log scale")


def loss_plot(logs: dict[str, list[dict]], path: Path, title: str = "") -> None:
    """One panel per training stage: loss against tokens seen (or step when absent).

    Long logs also get an exponential moving average (the smoothing TensorBoard shows), and
    the learning rate is drawn faintly on a second axis so warm-up and decay line up with
    the loss.
    """
    fig = _figure(5.2 * len(logs), 4.0)
    axes = fig.subplots(1, len(logs), squeeze=False)[0]
    for ax, (stage, rows) in zip(axes, logs.items()):
        by_tokens = all(r.get("tokens_seen") is not None for r in rows)
        xs = [r["tokens_seen"] if by_tokens else r["step"] for r in rows]
        losses = [r["loss"] for r in rows]
        many = len(rows) >= 50
        ax.plot(xs, losses, marker=None if many else ".", alpha=0.35 if many else 1.0,
                label="loss")
        if many:
            ax.plot(xs, ema(losses), color="C0", label="loss (EMA 0.9)")
        lrs = [r.get("learning_rate") for r in rows]
        twin = None
        if all(lr is not None for lr in lrs):
            twin = ax.twinx()
            twin.plot(xs, lrs, color="C1", alpha=0.5, linestyle="--", label="learning rate")
            twin.set_ylabel("learning rate", color="C1")
            twin.tick_params(axis="y", colors="C1", labelsize=8)
            twin.yaxis.set_major_formatter(lambda y, _: f"{y:.1e}")
        ax.set_xlabel("tokens seen" if by_tokens else "step")
        ax.xaxis.set_major_formatter(lambda x, _: human_count(x))
        ax.set_ylabel("training loss")
        handles = ax.get_lines() + (twin.get_lines() if twin is not None else [])
        # On the top-most axes, so the learning-rate line cannot draw over it.
        (twin or ax).legend(handles, [h.get_label() for h in handles], fontsize=8,
                            loc="upper right", framealpha=0.95)
        ax.set_title(f"{stage}: loss over {rows[-1]['step']:.0f} steps "
                     f"(last {losses[-1]:.3f})")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(f"{title}: training loss")
    _save(fig, path)


def ema(values: Sequence[float], decay: float = 0.9) -> list[float]:
    """Bias-corrected exponential moving average (as in Adam's moment estimates)."""
    out, acc = [], 0.0
    for i, v in enumerate(values, start=1):
        acc = decay * acc + (1 - decay) * v
        out.append(acc / (1 - decay ** i))
    return out


# -------------------------------------------------------------- report landing page

STAGE_FROM = {"pruned": "base", "healed": "pruned", "chat": "healed"}
STAGE_HOW = {"pruned": "layers removed", "healed": "continued pretraining",
             "chat": "chat fine-tuning"}


def rst_escape(text) -> str:
    """Plain text for RST: inline markup characters escaped, so a cell is never markup."""
    text = str(text)
    for ch in "\\`*_|":
        text = text.replace(ch, "\\" + ch)
    return text


def rst_table(header: Sequence[str], rows: Sequence[Sequence], title: str = "") -> str:
    """A docutils list-table (header row first): readable in Snakemake's report page."""
    lines = [f".. list-table:: {rst_escape(title)}".rstrip(), "   :header-rows: 1", ""]
    for row in [header, *rows]:
        cells = [rst_escape(c) if str(c) != "" else "\\ " for c in row]
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {c}" for c in cells[1:]]
    return "\n".join(lines)


def quality_table_rst(rows: Sequence[dict], langs: Sequence[str]) -> str:
    """The headline table, narrow enough for the report's first page: parameters with the
    share of the base's kept, bits per byte per language with its change vs the base.
    (Perplexity and the wide tables are in summary.md.)"""
    header = ["model", "layers", "parameters (kept)",
              *[f"bits/byte {l} (change)" for l in langs]]
    body = []
    for r in rows:
        kept = "" if r["parameters_vs_base"] is None else f" ({r['parameters_vs_base']:.1%})"
        body.append([r["model"], "-" if r["layers"] is None else r["layers"],
                     human_count(r["parameters"]) + kept,
                     *[_bpb(r["bits_per_byte"][l]) + (
                         "" if r is rows[0] or r["bpb_change_vs_base"][l] is None
                         else f" ({_pct(r['bpb_change_vs_base'][l])})") for l in langs]])
    return rst_table(header, body, "Quality: bits per byte, lower is better")


def benchmark_table_rst(benchmarks: Sequence[dict]) -> str:
    """One row per model, one column per task: acc ± standard error (share of the base's
    acc kept); narrow where benchmark_table (summary.md) is long."""
    tasks = list(dict.fromkeys(b["task"] for b in benchmarks))
    models = list(dict.fromkeys(b["model"] for b in benchmarks))
    cell = {(b["task"], b["model"]): b for b in benchmarks}
    body = []
    for model in models:
        row = [model]
        for task in tasks:
            b = cell.get((task, model))
            if b is None or b["acc"] is None:
                row.append("-")
                continue
            err = "" if b["acc_stderr"] is None else f" ± {b['acc_stderr'] * 100:.1f}"
            kept = "" if b["kept"]["acc"] is None else f" ({b['kept']['acc']:.0%})"
            row.append(f"{b['acc'] * 100:.1f}{err}%{kept}")
        body.append(row)
    return rst_table(["model", *tasks], body,
                     "Benchmarks (lm-evaluation-harness): acc ± standard error (kept of base)")


def lineage_lines(rows: Sequence[dict], title: str, plan: dict | None,
                  training: dict[str, dict], settings: dict | None) -> list[str]:
    """What was made from what: one short bullet per model, its source and how it was made
    (the plan for the pruned model; steps, tokens, loss and settings for a trained one).
    Sizes are in the quality table below it."""
    lines = []
    for r in rows:
        name = r["model"]
        if name not in STAGE_FROM:
            lines.append(f"- **{rst_escape(name)}**: {rst_escape(title)}")
            continue
        how = STAGE_HOW[name]
        if name == "pruned" and plan:
            how = f"{plan['strategy']} plan removed layers {_layer_list(plan.get('remove'))}"
            if plan.get("slices"):
                how += " (kept " + " + ".join(f"[{a}, {b})" for a, b in plan["slices"]) + ")"
        done = training.get("heal" if name == "healed" else name)
        if done:
            how += f", {done['steps']:.0f} steps, {human_count(done.get('tokens_seen'))} tokens"
            if done.get("train_loss") is not None:
                how += f", loss {done['train_loss']:.3f}"
            cache = done.get("teacher_cache")
            if cache:
                how += (f", distilled from the cached top-{cache['top_k']} "
                        f"({cache['bytes'] / 1e6:,.1f} MB, built in {cache['seconds']:,.0f} s)")
            elif done.get("distill_mode") == "online":
                how += ", distilled from the unpruned model online"
        chosen = (settings or {}).get("heal" if name == "healed" else name)
        if chosen:
            how += " (" + ", ".join(f"{k} {v}" for k, v in chosen.items()) + ")"
        lines.append(f"- **{rst_escape(name)}** from {STAGE_FROM[name]}: {rst_escape(how)}")
    return lines


def report_rst(rows: Sequence[dict], langs: Sequence[str], *, title: str,
               benchmarks: Sequence[dict] = (), plan: dict | None = None,
               training: dict[str, dict] | None = None, settings: dict | None = None) -> str:
    """The report's landing page (Snakemake's workflow description, RST): the story of the
    run, its headline quality table, the benchmark table and the pruning plan.

    Wrapped in Jinja's raw block: Snakemake renders the description as a Jinja template
    (appending its own links after it), and a sample or model name may hold `{{`.
    """
    heading = f"{title}: " + " → ".join(r["model"] for r in rows)
    # Short enough for one screen: Snakemake centres the page vertically, so a longer one
    # loses its top. The plan is in the pruned model's line; the long tables in summary.md.
    parts = ["{% raw %}", rst_escape(heading), "=" * (len(heading) + 4), "",
             *lineage_lines(rows, title, plan, training or {}, settings), "",
             quality_table_rst(rows, langs), ""]
    if benchmarks:
        parts += [benchmark_table_rst(benchmarks), ""]
    parts += ["Figures: the categories on the left; plan details, training and sample "
              "answers: Summary (summary.md).", "", "{% endraw %}", ""]
    return "\n".join(parts)


def training_summary(logs: dict[str, list[dict]], states: dict[str, dict]) -> dict[str, dict]:
    """Per stage, what ran: the trainer's final step, tokens and loss over all steps
    (`states`: the training stage's summary JSON) where present, else the log's last row."""
    out = {}
    for stage, rows in logs.items():
        state = states.get(stage) or {}
        out[stage] = {"steps": state.get("steps", rows[-1]["step"]),
                      "tokens_seen": state.get("tokens_seen", rows[-1].get("tokens_seen")),
                      "train_loss": state.get("train_loss", logged_mean_loss(rows)),
                      "first_loss": rows[0]["loss"], "last_loss": rows[-1]["loss"],
                      "distill_mode": state.get("distill_mode"),
                      "teacher_cache": state.get("teacher_cache")}
    return out


def logged_mean_loss(rows: Sequence[dict]) -> float | None:
    """Mean loss over the logged steps: each row's loss is the mean since the previous row,
    so rows are weighted by the steps they cover (a log without its run summary)."""
    total, prev = 0.0, 0
    for r in rows:
        total, prev = total + r["loss"] * (r["step"] - prev), r["step"]
    return total / prev if prev else None


# ------------------------------------------------------------------------ entry point

def write_report(metrics: dict, out_dir: str | os.PathLike, *, plan_json=None,
                 scores_png=None, train_logs: dict | None = None,
                 train_summaries: dict | None = None, title: str = "",
                 settings: dict | None = None) -> str:
    """Write the report files into `out_dir` (see the module docstring); return the table.

    `train_summaries`: {stage: the training stage's run summary JSON} (what ran);
    `title`: the base model's name for the figures and the landing page; `settings`:
    {stage: {setting: value}} shown beside each trained model on the landing page.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = load_metrics(metrics)
    if not models:
        raise ReportError("report: no models given; pass {name: evaluate JSON}")
    langs = languages(models)
    rows = summary_rows(models, langs)
    table = summary_table(rows, langs)
    plan = _optional_json(plan_json, "plan")
    logs = _train_logs(train_logs or {})
    ran = training_summary(logs, {k: v for k, v in ((k, _optional_json(p, f"{k} summary"))
                                                    for k, p in (train_summaries or {}).items())
                                  if v})
    _clear_stale(out)

    benchmarks = benchmark_rows(models)
    sections = ["# secateurs report", "", "## Models", "", table, ""]
    if benchmarks:
        sections += ["## Benchmarks (lm-evaluation-harness)", "", benchmark_table(benchmarks),
                     "", "acc ± standard error; kept of base: the model's acc / acc_norm over "
                     "the base's on the same items.", ""]
    sections += ["## Parameters vs perplexity", "", params_vs_perplexity_table(rows, langs),
                 "", "![perplexity](perplexity.png)", ""]
    perplexity_plot(rows, langs, out / "perplexity.png", title)
    if parameters_vary(rows):  # one parameter count would plot stacked identical points
        params_vs_perplexity_plot(rows, langs, out / "params_vs_perplexity.png", title)
        sections += ["![parameters vs perplexity](params_vs_perplexity.png)", ""]
    if plan:
        sections += ["## Pruning plan", "", plan_section(plan), ""]
        from secateurs.prune.table import candidate_table  # measured candidates, greedy steps
        sections += [candidate_table(plan), ""] if candidate_table(plan) else []
        if plan.get("figure") and Path(plan["figure"]).is_file():
            shutil.copyfile(plan["figure"], out / "pruning.png")
            sections += ["![pruning plan](pruning.png)", ""]
    if scores_png and Path(scores_png).is_file():
        with atomic_output(out / "layer_scores.png") as tmp:
            shutil.copyfile(scores_png, tmp)
        sections += ["![layer scores](layer_scores.png)", ""]
    elif scores_png:
        log.warning("report: layer-score heatmap %s does not exist; skipped", scores_png)
    if logs:
        loss_plot(logs, out / "loss.png", title)
        sections += ["## Training", "", training_section(logs, ran), "",
                     *distillation_lines(ran), "![loss](loss.png)", ""]
    samples = samples_section(models)
    if samples:
        sections += ["## Sample answers", "", samples, ""]
    with atomic_output(out / "summary.md") as tmp:
        tmp.write_text("\n".join(sections), encoding="utf-8")
    write_json({"languages": langs, "models": rows, "benchmarks": benchmarks, "plan": plan,
                "training": ran}, out / "summary.json")
    with atomic_output(out / "report.rst") as tmp:
        tmp.write_text(report_rst(rows, langs, title=title or rows[0]["model"],
                                  benchmarks=benchmarks, plan=plan, training=ran,
                                  settings=settings), encoding="utf-8")
    return table


def parameters_vary(rows: Sequence[dict]) -> bool:
    """Whether the models differ in parameter count (a pruned one among them)."""
    return len({r["parameters"] for r in rows if r["parameters"]}) > 1


def _optional_json(path, what: str) -> dict | None:
    if not path:
        return None
    if not Path(path).is_file():
        log.warning("report: %s file %s does not exist; skipped", what, path)
        return None
    return read_json(path)


def _train_logs(paths: dict) -> dict[str, list[dict]]:
    logs = {}
    for stage, path in paths.items():
        if not path or not Path(path).is_file():
            log.warning("report: %s training log %s does not exist; skipped", stage, path)
            continue
        rows = read_train_log(path)
        if rows:
            logs[stage] = rows
        else:
            log.warning("report: %s training log %s has no rows with a loss; skipped",
                        stage, path)
    return logs


def _clear_stale(out: Path) -> None:
    """Remove optional outputs of an earlier run that this run may not rewrite."""
    for name in OPTIONAL_OUTPUTS:
        (out / name).unlink(missing_ok=True)
