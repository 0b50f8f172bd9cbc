"""Measured layer selection: judge candidate cuts by held-out loss, per language.

Every proxy (Block Influence, angular distance at the last token and over all tokens, the
single-layer perplexity criterion), computed on every calibration set (all languages and
each one), proposes a cut; the same cut proposed twice is measured once. Each candidate is
measured by running the live model without its layers (`layers_removed`: no slicing, no
copy of a weight) over a capped held-out slice, per language:

- `measured`: the candidate whose worse language loses least, i.e. the smallest maximum
  over languages of (loss without the layers - loss of the full model), in nats per
  token; or, with `language_weights`, the smallest weighted mean of those increases.
  Cost: one forward pass over the slice per distinct candidate, plus one for the full model.
- `greedy` (SLEB, Song et al. 2024, arXiv:2402.09025; BlockPruner): remove one layer at a
  time, each time the one whose removal raises the same objective least. Cost: for L
  removable layers and n steps, L + (L-1) + ... + (L-n+1) passes over the slice.

The slice is the tail of each language's held-out file of the mix (`heldout_<lang>.parquet`):
never calibration text (the head of train.parquet) nor training text (train.parquet).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Mapping

from secateurs.io import read_parquet
from secateurs.prune.scoring import MIXED, calibration_batches, grouped_nll, layers_removed

log = logging.getLogger(__name__)

# (label, strategy, metric) of every proxy that can propose a cut
PROXIES = (
    ("block_influence", "bi", None),
    ("angular_distance/last_token", "block", "last_token"),
    ("angular_distance/all_tokens", "block", "all_tokens"),
    ("perplexity/layer", "ppl", "layer"),
)


# --------------------------------------------------------------------------- held-out slice


def heldout_texts(parquet: str | os.PathLike, docs: int) -> list[str]:
    """The last `docs` non-empty texts of a held-out file.

    The tail, so that an evaluation reading the head (`evaluate.max_docs`) can stay apart.
    """
    texts = [r["text"] for r in read_parquet(parquet, columns=["text"])
             if isinstance(r["text"], str) and r["text"].strip()]
    if not texts:
        raise ValueError(f"{parquet}: no non-empty `text` rows to measure held-out loss on")
    return texts[-docs:]


def heldout_batches(tokenizer, heldout: Mapping[str, str | os.PathLike], *, docs: int,
                    seq_len: int, batch_size: int) -> list[dict]:
    """Right-padded batches of the held-out slice, labelled with their language."""
    texts, langs = [], []
    for lang, path in heldout.items():
        chosen = heldout_texts(path, docs)
        texts += chosen
        langs += [lang] * len(chosen)
    return calibration_batches(tokenizer, texts, seq_len, batch_size, langs=langs)


def slice_tokens(batches: list[dict]) -> int:
    return sum(int(b["attention_mask"].sum()) for b in batches)


# --------------------------------------------------------------------------- losses


class LossMeter:
    """Held-out loss per language of the live model without some layers; counts passes."""

    def __init__(self, model, batches: list[dict], num_layers: int,
                 language_weights: Mapping[str, float] | None = None):
        self.model, self.batches, self.num_layers = model, batches, num_layers
        self.device = next(model.parameters()).device
        self.weights = dict(language_weights) if language_weights else None
        self.passes, self.seconds = 0, 0.0
        self.base = self.losses([])

    def losses(self, remove: list[int]) -> dict[str, float]:
        """{lang: mean next-token loss (nats)} over the slice, without layers `remove`."""
        start = time.perf_counter()
        keep = [i for i in range(self.num_layers) if i not in set(remove)]
        with layers_removed(self.model, keep):
            groups = grouped_nll(self.model, self.batches, self.device)
        self.passes += 1
        self.seconds += time.perf_counter() - start
        return {lang: nll / count for lang, (nll, count) in groups.items()}

    def objective(self, losses: Mapping[str, float]) -> float:
        """Worse language's loss increase over the full model, or their weighted mean."""
        increase = {lang: losses[lang] - self.base[lang] for lang in losses}
        if self.weights is None:
            return max(increase.values())
        missing = set(increase) - set(self.weights)
        if missing:
            raise ValueError(f"prune.plan.measure.language_weights has no weight for "
                             f"{sorted(missing)}; give one per held-out language")
        total = sum(self.weights[lang] for lang in increase)
        return sum(self.weights[lang] * increase[lang] for lang in increase) / total

    def describe(self) -> dict:
        return {"objective": ("max over languages of the loss increase" if self.weights is None
                              else f"weighted mean loss increase, weights {self.weights}"),
                "unit": "nats per token", "full_model_loss": self.base, "passes": self.passes,
                "tokens_per_pass": slice_tokens(self.batches),
                "seconds": round(self.seconds, 3)}


# --------------------------------------------------------------------------- measured


def proxy_candidates(scores: dict, choose: Callable[[str, dict, str | None], list[int]]
                     ) -> list[dict]:
    """Distinct cuts proposed by every proxy on every calibration set, in proposal order.

    `choose(strategy, metrics, metric)` returns the removed layers a plan of that strategy
    would pick from one set's metrics. A proxy whose metric is absent is skipped.
    """
    sets = {MIXED: scores, **scores.get("by_language", {})}
    candidates: dict[tuple, dict] = {}
    for calibration, metrics in sets.items():
        for label, strategy, metric in PROXIES:
            if strategy == "ppl" and "perplexity" not in metrics:
                continue
            if strategy != "ppl" and "block_influence" not in metrics:
                continue
            remove = choose(strategy, metrics, metric)
            entry = candidates.setdefault(tuple(remove), {"remove": list(remove),
                                                          "proposed_by": []})
            entry["proposed_by"].append({"metric": label, "calibration": calibration})
    return list(candidates.values())


def measured_choice(meter: LossMeter, candidates: list[dict]) -> dict:
    """Measure every candidate; return the one of least objective (earliest on ties).

    Each candidate gets `losses` (per language) and `objective`; the chosen one is flagged.
    """
    if not candidates:
        raise ValueError("no candidate cut to measure; the scores have no proxy metric")
    for candidate in candidates:
        candidate["losses"] = meter.losses(candidate["remove"])
        candidate["objective"] = meter.objective(candidate["losses"])
        log.info("candidate %s (%s): losses %s, objective %.4f", candidate["remove"],
                 ", ".join(f"{p['metric']}@{p['calibration']}" for p in candidate["proposed_by"]),
                 {k: round(v, 4) for k, v in candidate["losses"].items()}, candidate["objective"])
    best = min(range(len(candidates)), key=lambda i: (candidates[i]["objective"], i))
    for i, candidate in enumerate(candidates):
        candidate["chosen"] = i == best
    log.info("measured %d candidates in %d passes of %d tokens, %.1f s", len(candidates),
             meter.passes, slice_tokens(meter.batches), meter.seconds)
    return candidates[best]


# --------------------------------------------------------------------------- greedy


def greedy_removal(meter: LossMeter, removable: range,
                   done: Callable[[list[int]], bool]) -> tuple[list[int], list[dict]]:
    """Remove the cheapest layer, measured, until `done(removed)`; return removed and steps.

    Each step records the layer removed, the losses after it, and every layer tried
    (`tried`: {layer: objective}); step 1's `tried` is the measured single-layer cost.
    """
    removed: list[int] = []
    steps = []
    while not done(removed):
        options = [i for i in removable if i not in removed]
        if not options:
            raise ValueError(f"greedy: every removable layer ({removable.start}.."
                             f"{removable.stop - 1}) is gone before the target is reached")
        tried = {}
        for layer in options:
            losses = meter.losses(sorted(removed + [layer]))
            tried[layer] = (meter.objective(losses), losses)
        layer = min(options, key=lambda i: (tried[i][0], i))
        removed.append(layer)
        steps.append({"removed": layer, "losses": tried[layer][1], "objective": tried[layer][0],
                      "tried": {str(i): tried[i][0] for i in options},
                      "tried_losses": {str(i): tried[i][1] for i in options}})
        log.info("greedy step %d: remove layer %d, losses %s", len(steps), layer,
                 {k: round(v, 4) for k, v in tried[layer][1].items()})
    return sorted(removed), steps
