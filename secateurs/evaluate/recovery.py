"""The report's recovery figure: held-out bits per byte against healing tokens.

Reads the curve healing wrote (`secateurs.train.recovery`: one row per milestone and
language, tokens seen from 0) and the evaluate stage's JSON of the base and pruned models,
whose bits per byte on the whole held-out split are drawn as reference lines: the curve
starts at the pruned model and shows how much of the gap to the base each token budget
closes. The curve is measured on a capped slice of the same held-out documents, so its
first point and the pruned line differ by that sampling only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from secateurs.io import atomic_output

REFERENCES = {"base": "--", "pruned": ":"}


def read_curve(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """{language: [(tokens seen, bits per byte), ...]} from a recovery CSV, in token order."""
    import csv

    curve: dict[str, list[tuple[int, float]]] = {}
    with Path(path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            curve.setdefault(row["language"], []).append(
                (int(row["tokens_seen"]), float(row["bits_per_byte"])))
    return {lang: sorted(points) for lang, points in curve.items()}


def reference_levels(metrics: dict[str, str | os.PathLike]) -> dict[str, dict[str, float]]:
    """{model: {language: bits per byte}} for the reference models among `metrics`."""
    levels = {}
    for model in REFERENCES:
        if model in metrics and Path(metrics[model]).is_file():
            levels[model] = json.loads(Path(metrics[model]).read_text()).get("bits_per_byte", {})
    return levels


def recovery_plot(recovery_csv: str | os.PathLike, metrics: dict[str, str | os.PathLike],
                  path: str | os.PathLike, title: str = "") -> dict:
    """Draw the curve per language with base and pruned as reference lines; return the data.
    `title`: the base model's name, to head the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve, levels = read_curve(recovery_csv), reference_levels(metrics)
    fig = Figure(figsize=(6.8, 4.4), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (lang, points) in enumerate(sorted(curve.items())):
        colour = f"C{i}"
        ax.plot([t for t, _ in points], [b for _, b in points], marker="o", color=colour,
                label=f"healing, {lang}")
        for model, style in REFERENCES.items():
            if lang in levels.get(model, {}):
                ax.axhline(levels[model][lang], color=colour, linestyle=style, linewidth=1,
                           label=f"{model}, {lang}")
    ax.set_xlabel("healing tokens seen")
    ax.set_ylabel("held-out bits per byte (lower is better)")
    ax.set_title(f"{title}: recovery during healing" if title else "Recovery during healing")
    ax.legend(fontsize=8)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return {"curve": curve, "references": levels}
