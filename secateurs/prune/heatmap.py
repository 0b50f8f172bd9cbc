"""The angular-distance heatmap: block size by start layer, best blocks marked.

The picture Gromov et al. (2024, fig. 1) and PruneMe draw: for each block size n (rows)
and start layer l (columns) the distance between the input of layer l and of layer l+n.
The minimum of each row (the block a `block` plan would remove for that n) is marked with
a dot; the row `mark_n` (the plan's n, when known) gets a star.
"""

from __future__ import annotations

import math
import os

from secateurs.io import atomic_output


def distance_matrix(distance: dict[str, list[float]], num_layers: int) -> list[list[float]]:
    """Rows n = 1..max_block, columns start 0..L-1; NaN where the block would overrun."""
    rows = []
    for n in sorted(distance, key=int):
        values = list(distance[n])
        rows.append(values + [math.nan] * (num_layers - len(values)))
    return rows


def plot_distance_heatmap(scores: dict, out_png: str | os.PathLike, *,
                          variant: str = "last_token", mark_n: int | None = None) -> None:
    """Write the heatmap PNG atomically (matplotlib, headless Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    distance = scores["angular_distance"][variant]
    num_layers = scores["num_layers"]
    matrix = np.array(distance_matrix(distance, num_layers), dtype=float)
    height = max(3.0, 0.25 * matrix.shape[0] + 1.5)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.25 * num_layers + 2), height))
    image = ax.imshow(np.ma.masked_invalid(matrix), aspect="auto", origin="lower",
                      cmap="viridis", extent=(-0.5, num_layers - 0.5, 0.5, matrix.shape[0] + 0.5))
    fig.colorbar(image, ax=ax, label="angular distance arccos(cos)/pi")
    for row, values in enumerate(matrix):
        if np.all(np.isnan(values)):
            continue
        best = int(np.nanargmin(values))
        n = row + 1
        star = mark_n is not None and n == mark_n
        ax.plot(best, n, marker="*" if star else "o", color="red" if star else "white",
                markersize=12 if star else 4, markeredgecolor="black", linewidth=0)
    ax.set_xlabel("block start layer l (block removes layers [l, l+n))")
    ax.set_ylabel("block size n")
    title = f"{scores.get('model', '')}: {variant.replace('_', ' ')} angular distance"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- plan figure


def plan_series(scores: dict | None, plan: dict) -> tuple[str, dict[str, list[float]], bool]:
    """(y label, {calibration set: value per layer or block start}, log scale) of the
    metric that chose the plan, for the whole sample and each language."""
    metric = plan.get("metric") or ""
    if metric == "heldout_loss":  # greedy: step 1 measured every single-layer removal
        first = plan["steps"][0]["tried_losses"]
        base = plan["selection"]["full_model_loss"]
        series = {lang: [first[str(i)][lang] - base[lang] if str(i) in first else math.nan
                         for i in range(plan["num_layers_before"])] for lang in base}
        return "held-out loss increase without the layer (nats/token)", series, False
    sets = {"all": scores, **scores.get("by_language", {})} if scores else {}
    if metric == "block_influence":
        return ("Block Influence 1 - cos(x_l, x_l+1)",
                {name: s["block_influence"] for name, s in sets.items()}, False)
    if metric.startswith("angular_distance/"):
        variant, n = metric.split("/", 1)[1], str(max(1, plan["n_remove"]))
        series = {name: s["angular_distance"][variant].get(n, []) for name, s in sets.items()}
        return f"angular distance of the {n}-layer block starting at l", series, False
    if metric.startswith("perplexity/"):
        series = {name: s["perplexity"]["without_layer"] for name, s in sets.items()
                  if "perplexity" in s}
        return "calibration perplexity without the layer", series, True
    return "", {}, False


def plot_plan(scores: dict | None, plan: dict, out_png: str | os.PathLike) -> None:
    """The pruning figure: the metric that chose the cut, per language, removed layers shaded.

    For `measured`, a second panel shows why: each candidate's held-out loss increase per
    language, the chosen one marked. Titled with the model's name, sized to be read.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ylabel, series, log_scale = plan_series(scores, plan)
    candidates = plan.get("candidates") or []
    panels = 2 if candidates else 1
    fig, axes = plt.subplots(panels, 1, figsize=(11, 4.5 * panels), squeeze=False)
    ax = axes[0][0]
    for name, values in series.items():
        ax.plot(range(len(values)), values, marker="o", markersize=4, linewidth=1.5,
                label="all languages" if name == "all" else name)
    for layer in plan.get("remove", []):
        ax.axvspan(layer - 0.5, layer + 0.5, color="red", alpha=0.15, linewidth=0)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlim(-0.5, plan["num_layers_before"] - 0.5)
    ax.set_xlabel("layer (red: removed)", fontsize=11)
    ax.set_ylabel(ylabel, fontsize=10)
    if series:
        ax.legend(title="calibration set", fontsize=10)
    chosen_by = f"{plan.get('metric')} @ {plan.get('calibration')}"
    ax.set_title(f"{plan.get('model_name', '')}: {plan['strategy']} plan removes "
                 f"{plan['n_remove']} of {plan['num_layers_before']} layers (chosen by "
                 f"{chosen_by})", fontsize=12)
    ax.grid(alpha=0.3)
    if candidates:
        _plot_candidates(axes[1][0], candidates, plan["selection"]["full_model_loss"])
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _plot_candidates(ax, candidates: list[dict], base: dict) -> None:
    """Grouped bars: each candidate's loss increase per language; the chosen one marked *"""
    langs = list(base)
    width = 0.8 / len(langs)
    for j, lang in enumerate(langs):
        ax.bar([i + j * width for i in range(len(candidates))],
               [c["losses"][lang] - base[lang] for c in candidates], width, label=lang)
    labels = [("* " if c.get("chosen") else "") + ",".join(map(str, c["remove"]))
              for c in candidates]
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(candidates))], labels,
                  rotation=30, ha="right", fontsize=9)
    ax.set_ylabel("held-out loss increase (nats/token)", fontsize=10)
    ax.set_title("measured candidates (removed layers; * chosen: least worse-language "
                 "increase)", fontsize=11)
    ax.legend(title="held-out language", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
