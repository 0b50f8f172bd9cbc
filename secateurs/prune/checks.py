"""The pruning stage's config checks that a schema cannot express: the plan fits the
base model (layers to remove, manual slices), each strategy has what it needs (its
metric, scored block sizes, a calibration set), and measured plans keep their held-out
slice apart from evaluation's.
"""

from __future__ import annotations

from pathlib import Path

from secateurs import settings
from secateurs.base_model.checks import base_num_layers


def check_plan(config: dict, basedir: Path) -> list[str]:
    """The plan says how much to remove, and fits the base model where its layer count
    can be known without downloading anything."""
    if not config["prune"]["enabled"]:
        return []
    plan = config["prune"]["plan"]
    strategy = plan["strategy"]
    if strategy == "manual":
        if not plan["slices"]:
            return ["config key `prune.plan.slices` is empty but strategy is manual. "
                    "Fix: give half-open layer ranges to keep, e.g. [[0, 24], [55, 59]]."]
    elif plan["n_remove"] is None and plan["target_params"] is None:
        return [f"config keys `prune.plan.n_remove` and `prune.plan.target_params` are both unset "
                f"for strategy {strategy}. Fix: set how many layers to remove (n_remove: 8) or a "
                "parameter budget (target_params: 3B)."]
    layers = base_num_layers(config, basedir)
    if layers is None:
        return []
    n_remove = plan["n_remove"]
    protected = plan["protect_first"] + plan["protect_last"]
    if strategy != "manual" and n_remove is not None and n_remove + protected >= layers:
        return [f"config key `prune.plan.n_remove` = {n_remove}: the base model has {layers} layers"
                f" ({protected} protected), so at most {layers - protected - 1} can be removed. "
                "Fix: lower n_remove (or the protected counts)."]
    if strategy == "manual":
        return _check_slices(plan["slices"], layers)
    return []


def _check_slices(slices: list, layers: int) -> list[str]:
    """Manual slices: each within the model, not reversed, not overlapping another."""
    key = "config key `prune.plan.slices`"
    for start, end in slices:
        if start >= end:
            return [f"{key}: range [{start}, {end}) is empty or reversed. Fix: write each range "
                    "as [first kept layer, one past the last kept layer]."]
        if not 0 <= start < end <= layers:
            return [f"{key}: range [{start}, {end}) is outside the model's {layers} layers. "
                    f"Fix: use half-open ranges within [0, {layers})."]
    ordered = sorted(map(tuple, slices))
    for (a0, a1), (b0, b1) in zip(ordered, ordered[1:]):
        if b0 < a1:
            return [f"{key}: ranges [{a0}, {a1}) and [{b0}, {b1}) overlap, so layers "
                    f"{b0}..{min(a1, b1) - 1} would be kept twice. Fix: make the ranges disjoint "
                    "(mergekit allows repeats; secateurs prunes, so it does not)."]
    return []


STRATEGY_METRICS = {"block": ("last_token", "all_tokens"), "ppl": ("layer", "block")}


def check_strategy(config: dict) -> list[str]:
    """What each pruning strategy needs, so none fails after scoring: its metric, the block
    size the scores cover, the calibration set, and a held-out slice kept apart from the
    evaluation's."""
    prune = config["prune"]
    if not prune["enabled"]:
        return []
    plan = settings.complete("prune.plan", prune["plan"])
    score = settings.complete("prune.score", prune.get("score"))
    strategy, metric, problems = plan["strategy"], plan["metric"], []
    if metric is not None and metric not in STRATEGY_METRICS.get(strategy, ()):
        allowed = STRATEGY_METRICS.get(strategy)
        problems.append(f"config key `prune.plan.metric` = {metric!r} does not apply to strategy "
                        f"{strategy}. Fix: " + (f"use one of {list(allowed)}" if allowed else
                                                "remove it (null)") + ".")
    n_remove, max_block = plan["n_remove"], score["max_block"]
    if (strategy == "block" or (strategy == "ppl" and metric == "block")) and n_remove is None:
        problems.append(f"config key `prune.plan.n_remove` is unset but strategy {strategy} "
                        f"removes one contiguous block. Fix: set n_remove.")
    if strategy == "block" and n_remove and max_block is not None and n_remove > max_block:
        problems.append(f"config key `prune.score.max_block` = {max_block} but "
                        f"`prune.plan.n_remove` = {n_remove}: scoring would not measure blocks "
                        f"of {n_remove} layers. Fix: set max_block >= {n_remove} (or null).")
    languages = sorted({source["language"] for source in config["data"]["sources"].values()})
    if plan["calibration"] not in ["all", *languages]:
        problems.append(f"config key `prune.plan.calibration` = {plan['calibration']!r} is not a "
                        f"calibration set. Fix: use all or one of {languages}.")
    if strategy in ("measured", "greedy"):
        problems += _check_measure(config, plan["measure"], languages)
    return problems


def _check_measure(config: dict, measure: dict, languages: list[str]) -> list[str]:
    """The held-out slice of measured/greedy: inside the held-out files, apart from the
    documents evaluation reads (it reads the head, the slice is the tail)."""
    problems = []
    heldout = settings.complete("data.mix", config["data"]["mix"])["heldout_docs"]
    docs = measure["docs"]
    if docs >= heldout:
        problems.append(f"config key `prune.plan.measure.docs` = {docs} but `data.mix."
                        f"heldout_docs` = {heldout}: the plan would be measured on every "
                        "held-out document the evaluation reads. Fix: lower measure.docs or "
                        "raise heldout_docs.")
    else:
        max_docs = settings.complete("evaluate", config.get("evaluate"))["max_docs"]
        if max_docs is None or max_docs > heldout - docs:
            problems.append(f"config key `evaluate.max_docs` = {max_docs}: with strategy "
                            f"measured/greedy the last {docs} held-out documents per language "
                            "(prune.plan.measure.docs) choose the plan, so evaluating them too "
                            f"would flatter it. Fix: set evaluate.max_docs: {heldout - docs} "
                            "(data.mix.heldout_docs - prune.plan.measure.docs).")
    weights = measure["language_weights"]
    if weights is not None and sorted(weights) != languages:
        problems.append(f"config key `prune.plan.measure.language_weights` has languages "
                        f"{sorted(weights)}. Fix: give one weight for each of {languages}.")
    return problems
