"""Which layers to remove: strategies, parameter budgets and the mergekit recipe.

Owns the `plan_pruning` stage. A plan turns layer scores into the list of kept layers:

- `bi`: the n layers of lowest Block Influence, anywhere (ShortGPT, arXiv:2403.03853);
- `block`: the contiguous block of n layers whose ends are closest in angular distance
  (Gromov et al., arXiv:2403.17887; PruneMe);
- `ppl`: the n layers whose single removal raises calibration perplexity least
  (Shortened LLaMA, Kim et al., arXiv:2402.02834), from `score_layers(..., ppl=True)`;
- `measured`: every cut the proxies above propose, on every calibration set (all
  languages and each one), measured by held-out loss per language; the cut whose worse
  language loses least wins (secateurs.prune.measure);
- `greedy`: one layer at a time, each the one whose measured removal costs least (SLEB);
- `manual`: mergekit-style kept slices such as [[0, 24], [55, 59]], half-open like
  mergekit's `layer_range`.

`bi`, `block` and `ppl` read the metrics of one calibration set (`calibration`: "all", or
a language of the mix); the plan records which metric and which set chose the cut.

The size is given as n layers to remove or as a parameter budget ("3B"): parameters are
counted exactly from the safetensors headers (shapes only, no weights read), or from the
model built on the meta device when only config.json is at hand.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

from secateurs import settings
from secateurs.io import atomic_output, read_json, write_json
from secateurs.prune.layers import (detect_layer_prefix, num_layers, read_config, resolve_model_dir,
                                    source_name, split_layer_name, text_config)
from secateurs.prune.mergekit import kept_ranges, mergekit_source, mergekit_yaml
from secateurs.prune.shards import tensor_sources

log = logging.getLogger(__name__)

STRATEGIES = settings.enum("prune.plan", "strategy")  # the schema's, in its order
MEASURED = ("measured", "greedy")  # strategies that load the model and measure held-out loss
_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}


class PlanError(ValueError):
    """A pruning plan that cannot be made as asked."""


# --------------------------------------------------------------------------- parameters


def parse_param_count(value: int | float | str) -> int:
    """3_000_000_000, "3B", "3.5b", "350M", "3e9" -> an int number of parameters."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = re.fullmatch(r"\s*([\d.]+(?:e\d+)?)\s*([KMBGT]?)\s*", str(value).upper().replace(
        "E", "e"))
    if not match:
        raise PlanError(f"target_params {value!r}: write an int or a number with K/M/B/T, "
                        "e.g. '3B' or '350M'")
    return int(float(match[1]) * _SUFFIX[match[2]])


def count_parameters(model_dir) -> dict:
    """{total, per_layer: [L], non_layer, exact} for a model directory.

    Exact from the safetensors headers (element counts of every tensor; a tied lm_head
    stored twice is counted once, as `model.parameters()` would). Without weights, the
    model is built from config.json on the meta device, which allocates nothing.
    """
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    n_layers = num_layers(config, str(model_dir / "config.json"))
    if any(model_dir.glob("*.safetensors")):
        return _count_from_headers(model_dir, config, n_layers)
    return _count_from_config(model_dir, n_layers)


def _count_from_headers(model_dir: Path, config: dict, n_layers: int) -> dict:
    sources = tensor_sources(model_dir)
    prefix = detect_layer_prefix([s.name for s in sources], n_layers, str(model_dir))
    per_layer, non_layer = [0] * n_layers, 0
    embed_sizes = {}
    for src in sources:
        size = math.prod(src.shape)
        parts = split_layer_name(src.name, prefix)
        if parts is None:
            non_layer += size
            embed_sizes[src.name] = size
        else:
            per_layer[parts[0]] += size
    if text_config(config).get("tie_word_embeddings", config.get("tie_word_embeddings")):
        heads = [n for n in embed_sizes if n.endswith("lm_head.weight")]
        if heads and len(embed_sizes) > 1:
            non_layer -= sum(embed_sizes[n] for n in heads)
    return {"total": non_layer + sum(per_layer), "per_layer": per_layer,
            "non_layer": non_layer, "exact": True}


def _count_from_config(model_dir: Path, n_layers: int) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from secateurs.prune.layers import find_decoder_layers

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    _, layers = find_decoder_layers(model)
    per_layer = [sum(p.numel() for p in layer.parameters()) for layer in layers]
    total = sum(p.numel() for p in model.parameters())
    return {"total": total, "per_layer": per_layer, "non_layer": total - sum(per_layer),
            "exact": True}


def params_after(counts: dict, keep: list[int]) -> int:
    return counts["non_layer"] + sum(counts["per_layer"][i] for i in keep)


# --------------------------------------------------------------------------- strategies


def candidate_layers(n_layers: int, protect_first: int, protect_last: int) -> range:
    if protect_first < 0 or protect_last < 0 or protect_first + protect_last >= n_layers:
        raise PlanError(f"protect_first={protect_first} + protect_last={protect_last} leaves "
                        f"no removable layer of {n_layers}; lower them")
    return range(protect_first, n_layers - protect_last)


def remove_by_score(scores: list[float], n: int, candidates: range) -> list[int]:
    """The n candidate layers of lowest score (ties: the earlier layer)."""
    order = sorted(candidates, key=lambda i: (scores[i], i))
    return sorted(order[:n])


def remove_block(distance: dict[str, list[float]], n: int, candidates: range) -> list[int]:
    """The contiguous block [l, l+n) inside `candidates` with the smallest distance."""
    if n == 0:
        return []
    if str(n) not in distance:
        raise PlanError(f"the scores have angular distances for blocks up to "
                        f"{max(map(int, distance))} layers, not n_remove={n}; rerun "
                        f"score_layers with max_block >= {n}")
    row = distance[str(n)]
    starts = [s for s in range(candidates.start, candidates.stop - n + 1) if s < len(row)]
    if not starts:
        raise PlanError(f"no block of {n} layers fits between the protected layers")
    start = min(starts, key=lambda s: (row[s], s))
    return list(range(start, start + n))


def keep_from_slices(slices, n_layers: int) -> list[int]:
    """Kept layers from mergekit-style half-open slices [[start, end), ...]."""
    if isinstance(slices, str):
        slices = json.loads(slices)
    if not slices:
        raise PlanError("slices is empty; give kept ranges such as [[0, 24], [55, 59]]")
    keep, previous_end = [], 0
    for pair in slices:
        if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
            raise PlanError(f"slices entry {pair!r} must be [start, end] with integers")
        start, end = pair
        if not 0 <= start < end <= n_layers:
            raise PlanError(f"slices entry [{start}, {end}] is out of range: need "
                            f"0 <= start < end <= {n_layers} (half-open, like mergekit)")
        if start < previous_end:
            raise PlanError(f"slices entry [{start}, {end}] overlaps or precedes the previous "
                            "one; list kept ranges in increasing order without overlap")
        keep.extend(range(start, end))
        previous_end = end
    return keep


def choose_removal(strategy: str, scores: dict, n: int, candidates: range,
                   metric: str = "last_token") -> list[int]:
    if n > len(candidates):
        raise PlanError(f"n_remove={n} exceeds the {len(candidates)} removable layers "
                        f"({candidates.start}..{candidates.stop - 1}); lower n_remove or the "
                        "protected layers")
    if strategy == "bi":
        return remove_by_score(scores["block_influence"], n, candidates)
    if strategy == "block":
        if metric not in scores["angular_distance"]:
            raise PlanError(f"metric {metric!r} is not in the scores' angular_distance "
                            f"({', '.join(scores['angular_distance'])}); pick one of them")
        return remove_block(scores["angular_distance"][metric], n, candidates)
    if strategy == "ppl":
        if "perplexity" not in scores:
            raise PlanError("strategy ppl needs perplexities in the scores; run score_layers "
                            "with ppl=True")
        if metric not in ("layer", "block"):
            raise PlanError(f"metric {metric!r} for strategy ppl must be 'layer' or 'block'")
        if metric == "block":  # one contiguous block, measured removed as a whole
            blocks = scores["perplexity"].get("without_block", {})
            if str(n) not in blocks and n:
                raise PlanError(f"no block perplexities for n={n} in the scores; run "
                                f"score_layers with ppl_block_sizes including {n}")
            return remove_block(blocks, n, candidates)
        return remove_by_score(scores["perplexity"]["without_layer"], n, candidates)
    raise PlanError(f"strategy {strategy!r} is not one of {STRATEGIES}")


def removal_for_budget(strategy, scores, counts, target: int, candidates,
                       metric: str) -> list[int]:
    """The fewest layers whose removal brings the model to at most `target` parameters."""
    most = min(len(candidates), len(counts["per_layer"]) - 1)  # at least one layer stays
    for n in range(0, most + 1):
        remove = choose_removal(strategy, scores, n, candidates, metric)
        keep = [i for i in range(len(counts["per_layer"])) if i not in set(remove)]
        if params_after(counts, keep) <= target:
            return remove
    smallest = counts["non_layer"] + sum(counts["per_layer"][i] for i in range(
        len(counts["per_layer"])) if i not in candidates)
    raise PlanError(f"target_params={target:,} is unreachable: removing every removable layer "
                    f"still leaves {smallest:,} parameters; raise target_params or lower "
                    "protect_first/protect_last")


# --------------------------------------------------------------------------- outputs


def metric_label(strategy: str, metric: str | None) -> str | None:
    """The name plan.json gives the proxy metric that chose the cut."""
    return {"bi": "block_influence", "block": f"angular_distance/{metric}",
            "ppl": f"perplexity/{metric}"}.get(strategy)


def plan_pruning(scores_json, model_dir, out_json, out_yaml, *, strategy: str = "bi",
                 n_remove: int | None = None, target_params: int | str | None = None,
                 protect_first: int = 0, protect_last: int = 0, slices=None,
                 metric: str | None = None, calibration: str = "all", heldout=None,
                 measure: dict | None = None, out_png=None, model_name: str | None = None,
                 allow_pickle: bool = False, trust_remote_code: bool = False) -> dict:
    """Decide the kept layers and write the plan JSON and mergekit YAML.

    `metric`: for `block`, "last_token" (default, Gromov et al.) or "all_tokens"; for `ppl`,
    "layer" (default: the n single layers whose removal costs least, Kim et al.'s one-shot
    ranking) or "block" (the contiguous block of n measured removed as a whole).

    `calibration`: the scores' set a proxy strategy reads ("all" or a language).
    `heldout` ({lang: parquet}) and `measure` ({docs, seq_len, batch_size,
    language_weights, dtype, device}): the held-out slice of `measured` and `greedy`.
    `out_png`: the pruning figure (metric used, per language, removed layers marked),
    titled `model_name`.

    out_json: {strategy, keep, remove, slices (kept half-open ranges), num_layers_before,
    num_layers_after, params_before, params_after, source_model, n_remove, target_params,
    protect_first, protect_last, metric, calibration, scores; for measured: candidates
    (each with its per-language losses), selection; for greedy: steps, selection}.
    `scores_json` may be None for `manual`.
    """
    source = source_name(model_dir)
    metric = metric or {"block": "last_token", "ppl": "layer"}.get(strategy)
    n_remove = _optional_int(n_remove, "n_remove")
    protect_first = _optional_int(protect_first, "protect_first") or 0
    protect_last = _optional_int(protect_last, "protect_last") or 0
    model_dir = resolve_model_dir(model_dir)
    config = read_config(model_dir)
    n_layers = num_layers(config, str(model_dir / "config.json"))
    scores = _load_scores(scores_json, n_layers, strategy)
    counts = count_parameters(model_dir)
    extra = {"metric": metric_label(strategy, metric), "calibration": calibration}
    if strategy not in MEASURED and strategy != "manual" and scores is not None:
        scores = calibration_scores(scores, calibration, scores_json)
    if strategy in MEASURED:
        remove, extra = _measured(strategy, scores, counts, n_layers, n_remove, target_params,
                                  protect_first, protect_last, model_dir, heldout, measure,
                                  allow_pickle, trust_remote_code)
    else:
        remove = _decide(strategy, scores, counts, n_layers, n_remove, target_params,
                         protect_first, protect_last, slices, metric)
    if strategy == "manual":
        extra = {"metric": None, "calibration": None}
    keep = [i for i in range(n_layers) if i not in set(remove)]
    plan = {
        "strategy": strategy, "keep": keep, "remove": remove, "slices": kept_ranges(keep),
        "num_layers_before": n_layers, "num_layers_after": len(keep),
        "params_before": counts["total"], "params_after": params_after(counts, keep),
        "source_model": source, "n_remove": len(remove),
        "target_params": None if target_params is None else parse_param_count(target_params),
        "protect_first": protect_first, "protect_last": protect_last,
        **extra,
        "scores": None if scores_json is None else str(scores_json),
        "model_name": model_name or display_name(source),
        "figure": None if out_png is None else str(out_png),
    }
    if out_png is not None:
        from secateurs.prune.heatmap import plot_plan

        plot_plan(scores, plan, out_png)
    write_json(plan, out_json)
    dtype = text_config(config).get("dtype") or text_config(config).get("torch_dtype")
    with atomic_output(out_yaml) as tmp:
        tmp.write_text(mergekit_yaml(mergekit_source(model_dir if Path(str(source)).exists()
                                                     else source), keep, dtype=dtype),
                       encoding="utf-8")
    log.info("plan %s: remove %s, %d -> %d layers, %s -> %s parameters", strategy, remove,
             n_layers, len(keep), f"{plan['params_before']:,}", f"{plan['params_after']:,}")
    return plan


def display_name(source: str) -> str:
    """A model's name for titles: the hub id, or a local directory's name (never a path)."""
    path = Path(str(source))
    if not path.exists():
        return str(source)
    name = read_config(path).get("_name_or_path") or ""
    if name and not Path(name).exists() and not name.startswith(("/", ".")):
        return name
    return path.name


def calibration_scores(scores: dict, calibration: str, scores_json=None) -> dict:
    """The metrics of one calibration set: the whole sample ("all") or one language."""
    if calibration in (None, "all"):
        return scores
    sets = scores.get("by_language", {})
    if calibration not in sets:
        raise PlanError(f"{scores_json}: no scores for calibration set {calibration!r} (has "
                        f"all, {', '.join(sets) or 'no language'}); set prune.plan.calibration "
                        "to one of them")
    return {**scores, **sets[calibration]}


def _measured(strategy, scores, counts, n_layers, n_remove, target_params, protect_first,
              protect_last, model_dir, heldout, measure, allow_pickle, trust_remote_code):
    """The cut of `measured` or `greedy`, and the plan fields that explain it."""
    from secateurs.prune import measure as measuring
    from secateurs.prune.scoring import load_model

    if not heldout:
        raise PlanError(f"strategy {strategy} measures held-out loss: give heldout "
                        "({lang: parquet}, the mix's heldout_<lang>.parquet files)")
    measure = settings.complete("prune.plan.measure", measure)
    n_remove = _size(n_remove, target_params, n_layers)
    removable = candidate_layers(n_layers, protect_first, protect_last)
    model, tokenizer = load_model(model_dir, dtype=measure["dtype"], device=measure["device"],
                                  allow_pickle=allow_pickle,
                                  trust_remote_code=trust_remote_code)
    batches = measuring.heldout_batches(tokenizer, heldout, docs=measure["docs"],
                                        seq_len=measure["seq_len"],
                                        batch_size=measure["batch_size"])
    meter = measuring.LossMeter(model, batches, n_layers, measure["language_weights"])
    selection = {"heldout": {lang: {"file": str(path), "docs": measure["docs"], "slice": "tail"}
                             for lang, path in heldout.items()},
                 "seq_len": measure["seq_len"]}
    if strategy == "greedy":
        def done(removed):
            if n_remove is not None:
                return len(removed) >= n_remove
            keep = [i for i in range(n_layers) if i not in set(removed)]
            return params_after(counts, keep) <= parse_param_count(target_params)
        remove, steps = measuring.greedy_removal(meter, removable, done)
        selection.update(meter.describe())
        return remove, {"metric": "heldout_loss", "calibration": "heldout",
                        "steps": steps, "selection": selection}

    def choose(proxy, metrics, metric):
        if n_remove is not None:
            return choose_removal(proxy, metrics, n_remove, removable, metric)
        return removal_for_budget(proxy, metrics, counts, parse_param_count(target_params),
                                  removable, metric)
    candidates = measuring.proxy_candidates(scores, choose)
    best = measuring.measured_choice(meter, candidates)
    selection.update(meter.describe())
    first = best["proposed_by"][0]
    return best["remove"], {"metric": first["metric"], "calibration": first["calibration"],
                            "candidates": candidates, "selection": selection}


def _size(n_remove, target_params, n_layers) -> int | None:
    """n_remove, checked, or None when a parameter budget is given instead."""
    if (n_remove is None) == (target_params is None):
        raise PlanError("give exactly one of n_remove (layers to remove) or target_params "
                        "(a parameter budget such as '3B')")
    if n_remove is not None and not 0 <= n_remove < n_layers:
        raise PlanError(f"n_remove={n_remove} must be between 0 and {n_layers - 1} (the model "
                        f"has {n_layers} layers)")
    return n_remove


def _optional_int(value, field: str) -> int | None:
    """None, or an int from an int or a numeric string (CLI and Snakemake params)."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PlanError(f"{field}={value!r} must be an integer") from None


def _load_scores(scores_json, n_layers: int, strategy: str) -> dict | None:
    if scores_json is None:
        if strategy != "manual":
            raise PlanError(f"strategy {strategy} needs scores_json from score_layers")
        return None
    scores = read_json(scores_json)
    if scores.get("num_layers") != n_layers:
        raise PlanError(f"{scores_json}: num_layers={scores.get('num_layers')} but the model "
                        f"has {n_layers}; score this model before planning")
    return scores


def _decide(strategy, scores, counts, n_layers, n_remove, target_params, protect_first,
            protect_last, slices, metric) -> list[int]:
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == "manual":
        if slices is None:
            raise PlanError("strategy manual needs slices, e.g. [[0, 24], [55, 59]]")
        keep = keep_from_slices(slices, n_layers)
        remove = [i for i in range(n_layers) if i not in set(keep)]
        if n_remove is not None and n_remove != len(remove):
            raise PlanError(f"slices remove {len(remove)} layers but n_remove={n_remove}; "
                            "drop n_remove or make them agree")
        return remove
    if slices is not None:
        raise PlanError(f"slices is only used by strategy manual, not {strategy}; remove it")
    if (n_remove is None) == (target_params is None):
        raise PlanError("give exactly one of n_remove (layers to remove) or target_params "
                        "(a parameter budget such as '3B')")
    candidates = candidate_layers(n_layers, protect_first, protect_last)
    if n_remove is not None:
        if not isinstance(n_remove, int) or n_remove < 0:
            raise PlanError(f"n_remove={n_remove!r} must be a non-negative integer")
        if n_remove >= n_layers:
            raise PlanError(f"n_remove={n_remove} but the model has only {n_layers} layers; "
                            f"remove at most {n_layers - 1}")
        return choose_removal(strategy, scores, n_remove, candidates, metric)
    target = parse_param_count(target_params)
    return removal_for_budget(strategy, scores, counts, target, candidates, metric)
