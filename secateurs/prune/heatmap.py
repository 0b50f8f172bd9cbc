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
