"""What the pruning rules take from the config and the mix (no torch: the Snakefile reads it).

Scoring computes the perplexity criterion whenever the plan will read it, so a config
that asks for `strategy: ppl` (or `measured`, whose candidates include it) cannot pass
validation and then fail after scoring for want of perplexities.
"""

from __future__ import annotations

import os
from pathlib import Path

from secateurs.locations import looks_local

NEEDS_PERPLEXITY = ("ppl", "measured")


def score_params(prune: dict) -> dict:
    """prune.score's settings, with the perplexity criterion on when the plan needs it.

    `ppl` with metric `block` also needs the perplexity of the block of n_remove layers.
    """
    plan = prune["plan"]
    settings = dict(prune["score"])
    settings["ppl"] = bool(settings["ppl"]) or plan["strategy"] in NEEDS_PERPLEXITY
    if plan["strategy"] == "ppl" and plan.get("metric") == "block" and plan.get("n_remove"):
        settings["ppl_block_sizes"] = [int(plan["n_remove"])]
    return settings


def heldout_files(mix_dir: str | os.PathLike) -> dict[str, Path]:
    """{lang: heldout_<lang>.parquet} of a mix directory (secateurs.data.mix writes them)."""
    files = {path.stem.removeprefix("heldout_"): path
             for path in sorted(Path(mix_dir).glob("heldout_*.parquet"))}
    if not files:
        raise FileNotFoundError(f"{mix_dir}: no heldout_<lang>.parquet; measured and greedy "
                                "plans need the mix stage's held-out files")
    return files


def model_name(source: str) -> str:
    """The base model's name for titles: the demo, a hub id, or a directory's name."""
    if source == "demo":
        return "demo base model"
    return Path(source).name if looks_local(source) else source
