"""Layer-redundancy scores from one hooked forward pass per calibration batch.

Owns the `score_layers` stage: calibration batches, forward hooks on the decoder layers,
running sums, and the scores it writes (JSON, CSV, heatmap PNG).

Metrics, all from the same pass:

- Block Influence (ShortGPT, Men et al. 2024, arXiv:2403.03853): BI_l = 1 - E[cos(x_l,
  x_{l+1})] where x_l is the input of layer l, averaged over every non-padding token.
- Angular distance (Gromov et al. 2024, "The Unreasonable Ineffectiveness of the Deeper
  Layers", arXiv:2403.17887): d(l, n) = arccos(cos(x_l, x_{l+n})) / pi for the block of n
  layers [l, l+n), at the last non-padding token of each sample (their choice), averaged
  over samples; plus the same averaged over all non-padding tokens.

Pitfalls of the usual scripts that this module avoids on purpose:

- x_L (the output of the last layer) is taken from a hook, never from
  `output_hidden_states[-1]`, which transformers returns after the final norm;
- padding is masked (right padding, so real tokens never attend to pads), and means are
  means (sums divided by token or sample counts), not sums;
- cosines are clamped to [-1, 1] before arccos, which otherwise gives NaN on rounding;
- the model is loaded unquantized in the requested dtype, never a 4-bit stand-in;
- nothing per layer outlives a batch except running sums (during a batch, only the last
  max_block states of its real tokens, in the model's dtype); `use_cache=False` so packed
  or padded inputs are not cached and documents do not attend to each other.

Cost (bench/score.py, 1.4B Llama, bf16, H100, 8x1024 tokens): ~1.1-1.2x the time and
~1.0-1.1x the peak memory of a plain forward pass, which scoring stops after the last
decoder layer (no final norm, no logits).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from secateurs.devices import resolve_device, resolve_dtype
from secateurs.io import atomic_output, read_parquet, write_json
from secateurs.prune.layers import (check_model_dir, delete_layers_in_memory, find_decoder_layers,
                              read_config, resolve_model_dir, source_name)

log = logging.getLogger(__name__)

MIXED = "all"  # the name of the whole calibration sample, every language together

CSV_HEADER = (
    "# block [block_start, block_end) of n = block_end - block_start layers (0-based, end\n"
    "# exclusive, as mergekit's layer_range): removing it joins the input of layer block_start\n"
    "# to the input of layer block_end (block_end = num_layers means the last layer's output,\n"
    "# before the final norm). distance = arccos(cos)/pi between those two hidden states at\n"
    "# the last non-padding token, mean over samples (Gromov et al. 2024); distance_all_tokens\n"
    "# = the same, mean over all non-padding tokens. Lower = more redundant block.\n"
    "# calibration: the set the row was scored on, `all` (every language) or one language.\n")


# --------------------------------------------------------------------------- settings


# --------------------------------------------------------------------------- data


def calibration_texts(parquet: str | os.PathLike, num_samples: int) -> list[str]:
    """The first `num_samples` non-empty rows of the `text` column.

    The mix is already shuffled by the data stage, so its head is a fair sample and the
    choice is reproducible without a seed.
    """
    return [text for text, _ in calibration_rows(parquet, num_samples)]


def calibration_rows(parquet: str | os.PathLike, num_samples: int) -> list[tuple[str, str]]:
    """(text, lang) for the first `num_samples` non-empty rows; lang "all" without a column.

    The language comes from the mix's `lang` column, so each number can be scored per
    language as well as over the whole sample.
    """
    if not _has_text(parquet):
        raise ValueError(f"{parquet}: no `text` column; pass the training mix Parquet")
    import pyarrow.parquet as pq

    columns = ["text"] + (["lang"] if "lang" in pq.read_schema(parquet).names else [])
    rows = read_parquet(parquet, columns=columns)
    pairs = [(r["text"], str(r.get("lang") or MIXED)) for r in rows
             if isinstance(r["text"], str) and r["text"].strip()]
    if not pairs:
        raise ValueError(f"{parquet}: column `text` has no non-empty rows")
    if len(pairs) < num_samples:
        log.warning("%s has %d texts, fewer than num_samples=%d; using all", parquet,
                    len(pairs), num_samples)
    return pairs[:num_samples]


def _has_text(parquet) -> bool:
    import pyarrow.parquet as pq

    return "text" in pq.read_schema(parquet).names


def calibration_batches(tokenizer, texts: list[str], seq_len: int, batch_size: int,
                        langs: list[str] | None = None) -> list[dict]:
    """Right-padded batches of at most `seq_len` tokens, one language per batch.

    Right padding: under a causal mask real tokens never see the pads after them and keep
    their positions, so a padded batch scores exactly like one sample at a time. With
    `langs`, texts are grouped by language (first-seen order, stable) and each batch
    carries its `lang`, so one pass per batch feeds both its language's sums and the total.
    """
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    langs = list(langs) if langs is not None else [None] * len(texts)
    if len(langs) != len(texts):
        raise ValueError(f"{len(langs)} languages for {len(texts)} texts")
    batches = []
    for lang in dict.fromkeys(langs):
        group = [t for t, l in zip(texts, langs) if l == lang]
        for start in range(0, len(group), batch_size):
            enc = tokenizer(group[start:start + batch_size], max_length=seq_len,
                            truncation=True, padding=True, return_tensors="pt")
            batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
            if lang is not None:
                batch["lang"] = lang
            batches.append(batch)
    return batches


def tensors(batch: dict) -> dict[str, torch.Tensor]:
    """The model inputs of a batch (drops its `lang` label)."""
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


# --------------------------------------------------------------------------- running sums


@dataclass
class RunningSums:
    """Sums of per-token and per-sample metrics for every block (start l, size n).

    `all_sum[n-1, l]` sums arccos(cos)/pi over non-padding tokens, `last_sum[n-1, l]` over
    samples' last tokens, `cos_sum[l]` sums cos(x_l, x_{l+1}) over tokens (for BI).
    """

    num_layers: int
    max_block: int
    all_sum: torch.Tensor = field(init=False)
    last_sum: torch.Tensor = field(init=False)
    cos_sum: torch.Tensor = field(init=False)
    tokens: int = 0
    samples: int = 0

    def __post_init__(self):
        shape = (self.max_block, self.num_layers)
        self.all_sum = torch.zeros(shape, dtype=torch.float64)
        self.last_sum = torch.zeros(shape, dtype=torch.float64)
        self.cos_sum = torch.zeros(self.num_layers, dtype=torch.float64)

    def block_influence(self) -> list[float]:
        return [1.0 - c / self.tokens for c in self.cos_sum.cpu().tolist()]

    def distances(self, sums: torch.Tensor, count: int) -> dict[str, list[float]]:
        """{n: [mean distance for start 0 .. L-n]} as JSON-friendly lists."""
        sums = sums.cpu()
        return {str(n): (sums[n - 1, : self.num_layers - n + 1] / count).tolist()
                for n in range(1, self.max_block + 1)}


class StopForward(Exception):
    """Raised by the last layer's hook: scoring needs nothing after the last layer."""


class LayerTaps:
    """Forward hooks that turn each layer's input/output into running sums.

    The hook on layer i sees x_i (its input) and x_{i+1} (its output). Only non-padding
    tokens are kept, packed as rows (N, hidden), in the model's own dtype: a bf16 state
    is exact in bf16, and its norm is taken in float32. A window of the last `max_block`
    states lives in a ring laid out (token, slot, hidden), so when x_e arrives one batched
    matrix-vector product (float32 accumulation and output) gives its dot product with
    every stored state, i.e. every block ending at e. The window is the least any exact
    method can keep (x_e needs its dot product with each of them); one buffer serves every
    batch and is freed on exit.

    Per-token distances are summed over tokens on the device into a (end, slot) table;
    which block (start, n) a slot held is known on the host, so the table is unfolded
    once at the end (`running_sums`) instead of scattered per layer: a handful of kernels
    per layer and no host-device synchronisation inside the forward pass.

    Each batch names its group (a language); every group has its own tables, and the
    whole sample's sums are their sum, so per-language scores cost no extra pass.
    """

    def __init__(self, layers: torch.nn.ModuleList, max_block: int, stop: bool = True):
        self.layers = layers
        self.num_layers, self.max_block, self.stop = len(layers), max_block, stop
        self.handles = []
        self.ring: torch.Tensor | None = None
        self.norms: torch.Tensor | None = None
        self.keep = self.last_rows = None
        self.groups: dict[str, dict] = {}
        self.group = MIXED

    def __enter__(self):
        for i, layer in enumerate(self.layers):
            self.handles.append(layer.register_forward_hook(self._hook(i), with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.ring = self.norms = None

    def start_batch(self, attention_mask: torch.Tensor, group: str | None = None) -> None:
        """Rows of the real tokens in the flattened batch, and of each sample's last one.

        Found from the host copy of the mask, so the GPU is never waited for.
        """
        mask = attention_mask.cpu().bool()
        self.keep = mask.flatten().nonzero().squeeze(1)
        self.last_rows = mask.sum(dim=1).cumsum(0) - 1  # real tokens are packed row by row
        self.group = group or MIXED
        acc = self.groups.setdefault(self.group, {"tokens": 0, "samples": 0, "all": None})
        acc["tokens"] += int(self.keep.numel())
        acc["samples"] += int(mask.shape[0])

    def _hook(self, index: int):
        def hook(module, args, kwargs, output):
            x_in = args[0] if args else kwargs["hidden_states"]
            x_out = output[0] if isinstance(output, (tuple, list)) else output
            if index == 0:
                self._add_state(0, x_in.detach())
            self._add_state(index + 1, x_out.detach())
            if index == self.num_layers - 1 and self.stop:
                raise StopForward
        return hook

    def _accumulators(self, device: torch.device) -> dict:
        """The current group's (end, slot) tables, made on first use."""
        acc = self.groups[self.group]
        if acc["all"] is None:
            shape = (self.num_layers + 1, self.max_block)
            acc["all"] = torch.zeros(shape, dtype=torch.float64, device=device)
            acc["last"] = torch.zeros(shape, dtype=torch.float64, device=device)
            acc["cos"] = torch.zeros(self.num_layers, dtype=torch.float64, device=device)
        return acc

    def _add_state(self, end: int, x: torch.Tensor) -> None:
        """Score every block ending at `end`, then store x_end in the oldest slot."""
        acc = self._accumulators(x.device)
        if end == 0 or self.keep.device != x.device:
            self.keep = self.keep.to(x.device, non_blocking=True)
            self.last_rows = self.last_rows.to(x.device, non_blocking=True)
        state = x.reshape(-1, x.shape[-1]).index_select(0, self.keep)  # (tokens, hidden)
        norm = torch.linalg.vector_norm(state, dim=-1, dtype=torch.float32)
        ring, norms = self._window(state)
        filled = min(end, self.max_block)
        if filled:
            dot = _dots(ring[:, :filled], state)  # (tokens, slot), float32
            cos = (dot / (norms[:, :filled] * norm.unsqueeze(1)).clamp_min(1e-12))
            cos = cos.clamp_(-1.0, 1.0)
            dist = torch.arccos(cos).div_(math.pi)
            acc["all"][end, :filled] += dist.sum(0)
            acc["last"][end, :filled] += dist.index_select(0, self.last_rows).sum(0)
            neighbour = (end - 1) % self.max_block  # n = 1: Block Influence of layer end-1
            acc["cos"][end - 1] += cos[:, neighbour].sum()
        if end < self.num_layers:  # x_L pairs with nothing later
            slot = end % self.max_block  # held end - max_block, scored above for the last time
            ring[:, slot] = state
            norms[:, slot] = norm

    def _window(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This batch's rows of the window buffer, which is grown only when too small.

        One buffer for all batches: re-allocating a window per batch of a different size
        fragments the allocator's cache and raises the peak on CUDA.
        """
        tokens, hidden = state.shape
        ring = self.ring
        if (ring is None or ring.shape[0] < tokens or ring.dtype != state.dtype
                or ring.device != state.device):
            self.ring = self.norms = ring = None
            self.ring = state.new_empty((tokens, self.max_block, hidden))
            self.norms = state.new_empty((tokens, self.max_block), dtype=torch.float32)
        return self.ring[:tokens], self.norms[:tokens]

    def running_sums(self, group: str | None = None) -> RunningSums:
        """Unfold the (end, slot) tables into sums by (block size, start).

        `group`: one group's sums; None: every group's together (the whole sample).
        """
        sums = RunningSums(self.num_layers, self.max_block)
        chosen = [self.groups[group]] if group is not None else list(self.groups.values())
        sums.tokens = sum(acc["tokens"] for acc in chosen)
        sums.samples = sum(acc["samples"] for acc in chosen)
        chosen = [acc for acc in chosen if acc["all"] is not None]
        if not chosen:
            return sums
        acc_all = sum(acc["all"].cpu() for acc in chosen)
        acc_last = sum(acc["last"].cpu() for acc in chosen)
        for end in range(1, self.num_layers + 1):
            for slot in range(min(end, self.max_block)):
                n = (end - slot - 1) % self.max_block + 1  # slot holds x_{end-n}
                sums.all_sum[n - 1, end - n] = acc_all[end, slot]
                sums.last_sum[n - 1, end - n] = acc_last[end, slot]
        sums.cos_sum = sum(acc["cos"].cpu() for acc in chosen)
        return sums


def _dots(window: torch.Tensor, state: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Dot product of each token's state with each of its stored states, in float32.

    (tokens, slot, hidden) x (tokens, hidden) -> (tokens, slot). bf16/fp16 products are
    exact in float32, and CUDA's bmm accumulates and writes float32 (`out_dtype`), so the
    window never needs a float32 copy; elsewhere the upcast is done a chunk of tokens at a
    time. A bf16 output would round cos to 3 digits, which arccos amplifies near cos = 1.
    """
    if window.dtype == torch.float32 or window.dtype == torch.float64:
        return torch.bmm(window, state.unsqueeze(-1)).squeeze(-1).float()
    if window.is_cuda:
        return torch.bmm(window, state.unsqueeze(-1), out_dtype=torch.float32).squeeze(-1)
    return torch.cat([torch.bmm(window[i:i + chunk].float(),
                                state[i:i + chunk].float().unsqueeze(-1)).squeeze(-1)
                      for i in range(0, state.shape[0], chunk)])


# --------------------------------------------------------------------------- scoring


@torch.inference_mode()
def score_model(model, batches: list[dict[str, torch.Tensor]], *, max_block: int | None = None,
                ppl: bool = False, ppl_block_sizes=(), progress: bool = True,
                micro_batch: int | None = None) -> dict:
    """Every metric for an in-memory model over pre-tokenized batches (no files).

    The forward pass stops after the last decoder layer (the final norm and the logits,
    often the largest activation of a forward pass, are never computed). `micro_batch`
    rows go through at a time; by default a batch is split only as far as needed for the
    window of stored states to take no more memory than the logits it saves (rows are
    independent under right padding, so the split changes no score).

    The perplexity criterion (ppl=True) costs one extra pass per layer and per candidate
    block, so it is off by default.
    """
    path, layers = find_decoder_layers(model)
    n_layers = len(layers)
    max_block = n_layers - 1 if max_block is None else int(max_block)
    if not 1 <= max_block <= n_layers:
        raise ValueError(f"max_block={max_block} must be between 1 and num_layers={n_layers}")
    if micro_batch is not None and int(micro_batch) < 1:
        raise ValueError(f"micro_batch={micro_batch} must be a positive number of rows")
    device = next(model.parameters()).device
    with LayerTaps(layers, max_block) as taps:
        for batch in _progress(batches, progress, "score"):
            rows = micro_batch or _auto_micro_batch(model, batch["attention_mask"], max_block)
            inputs = tensors(batch)
            for start in range(0, batch["attention_mask"].shape[0], int(rows)):
                part = {k: v[start:start + int(rows)] for k, v in inputs.items()}
                # before the copy: no GPU sync
                taps.start_batch(part["attention_mask"], batch.get("lang"))
                part = {k: v.to(device) for k, v in part.items()}
                try:
                    model(**part, use_cache=False)
                except StopForward:
                    pass
    result = {"num_layers": n_layers, "layers_module": path, **_metrics(taps.running_sums()),
              "max_block": max_block}
    langs = [g for g in taps.groups if g != MIXED]
    if langs:  # every metric again per language, from the same pass
        result["by_language"] = {lang: _metrics(taps.running_sums(lang)) for lang in langs}
    if ppl:
        perplexity = layer_removal_perplexity(
            model, batches, block_sizes=ppl_block_sizes or (), progress=progress)
        for lang, values in perplexity.pop("by_language", {}).items():
            result.setdefault("by_language", {}).setdefault(lang, {})["perplexity"] = values
        result["perplexity"] = perplexity
    return result


def _metrics(sums: RunningSums) -> dict:
    return {
        "block_influence": sums.block_influence(),
        "angular_distance": {
            "last_token": sums.distances(sums.last_sum, sums.samples),
            "all_tokens": sums.distances(sums.all_sum, sums.tokens),
        },
        "samples": sums.samples,
        "tokens": sums.tokens,
    }


def _auto_micro_batch(model, attention_mask: torch.Tensor, max_block: int) -> int:
    """Rows per pass so that scoring's peak memory stays within a plain forward's.

    Window: max_block states (model dtype) and norms (float32) per real token. Logits: a
    plain forward's (rows, seq, vocab) output, often its peak, which scoring never makes.
    The window may take as much memory as those logits (a layer's own transients come on
    top: on a 1.4B Llama this costs ~1.1x a forward's peak where splitting in two gives
    1.0x, but every extra pass costs time, ~1.2x instead of ~1.1x; `micro_batch` picks).
    Whole batch when the window already fits.
    """
    rows, seq = attention_mask.shape
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or getattr(head, "weight", None) is None or embed is None:
        return rows
    hidden, itemsize = embed.weight.shape[-1], embed.weight.element_size()
    window = int(attention_mask.sum()) * max_block * (hidden * itemsize + 4)
    logits = rows * seq * head.weight.shape[0] * head.weight.element_size()
    splits = min(rows, max(1, math.ceil(window / max(logits, 1))))
    return math.ceil(rows / splits)


def best_blocks(distance: dict[str, list[float]]) -> dict[str, int]:
    """For each block size n, the start of the block with the smallest distance."""
    return {n: min(range(len(d)), key=d.__getitem__) for n, d in distance.items()}


# --------------------------------------------------------------------------- perplexity


@torch.inference_mode()
def batches_nll(model, batches, device) -> tuple[float, int]:
    """Summed next-token NLL over non-padding targets, and the number of targets."""
    groups = grouped_nll(model, batches, device)
    return sum(g[0] for g in groups.values()), sum(g[1] for g in groups.values())


@torch.inference_mode()
def grouped_nll(model, batches, device) -> dict[str, tuple[float, int]]:
    """{lang: (summed next-token NLL, targets)} over the batches of each `lang` label."""
    groups: dict[str, list] = {}
    for batch in batches:
        ids = batch["input_ids"].to(device)
        mask = batch["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        target_mask = mask[:, 1:].bool()
        nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:],
                              reduction="none")
        group = groups.setdefault(batch.get("lang") or MIXED, [0.0, 0])
        group[0] += float(nll[target_mask].double().sum())
        group[1] += int(target_mask.sum())
    return {lang: (nll, count) for lang, (nll, count) in groups.items()}


@torch.inference_mode()
def layer_removal_perplexity(model, batches, *, block_sizes=(), progress: bool = True) -> dict:
    """Calibration perplexity of the full model, with each layer and each block removed.

    Kim et al. 2024 (Shortened LLaMA, arXiv:2402.02834): the layer (or contiguous block of
    n layers, for each n in `block_sizes`) whose removal raises perplexity least matters
    least. Layers are removed from the live model in place (no copy of any weight) and
    restored after each measurement. Returns {full, without_layer: [L], without_block:
    {n: [start 0..L-n]}, tokens}, and the same per language under `by_language` when the
    batches carry languages (each pass serves every language at once).
    """
    device = next(model.parameters()).device
    _, layers = find_decoder_layers(model)
    n_layers = len(layers)
    base = grouped_nll(model, batches, device)
    blocks = [(1, start) for start in range(n_layers)]
    blocks += [(int(n), start) for n in block_sizes for start in range(n_layers - int(n) + 1)]
    measured = {}
    for n, start in _progress(blocks, progress, "ppl"):
        keep = [i for i in range(n_layers) if not start <= i < start + n]
        if not keep:
            raise ValueError(f"ppl block size {n} removes all {n_layers} layers; lower it")
        with layers_removed(model, keep):
            measured[n, start] = grouped_nll(model, batches, device)

    def table(groups: list[str]) -> dict:
        def ppl(nlls: dict) -> float:
            return math.exp(sum(nlls[g][0] for g in groups) / sum(nlls[g][1] for g in groups))
        return {
            "full": ppl(base),
            "without_layer": [ppl(measured[1, start]) for start in range(n_layers)],
            "without_block": {str(n): [ppl(measured[int(n), s])
                                       for s in range(n_layers - int(n) + 1)]
                              for n in block_sizes},
            "tokens": sum(base[g][1] for g in groups),
        }

    result = table(list(base))
    langs = [g for g in base if g != MIXED]
    if langs:
        result["by_language"] = {lang: table([lang]) for lang in langs}
    return result


@contextlib.contextmanager
def layers_removed(model, keep: list[int]):
    """Temporarily run the live model with only layers `keep`; restore everything after."""
    path, layers = find_decoder_layers(model)
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    configs = [model.config] + ([model.config.text_config]
                                if hasattr(model.config, "text_config") else [])
    saved_config = [cfg.to_dict() for cfg in configs]
    saved_idx = [(m, m.layer_idx) for m in model.modules() if hasattr(m, "layer_idx")]
    try:
        delete_layers_in_memory(model, keep)
        yield model
    finally:
        setattr(parent, attr, layers)
        for cfg, saved in zip(configs, saved_config):
            current = cfg.to_dict()
            for key, value in saved.items():
                if key in current and current[key] != value:
                    setattr(cfg, key, value)
        for module, idx in saved_idx:
            module.layer_idx = idx


# --------------------------------------------------------------------------- stage


def load_model(model_dir, *, dtype="float32", device="auto", allow_pickle=False,
               trust_remote_code=False):
    """The real, unquantized model in `dtype` on `device`, with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = resolve_model_dir(model_dir)
    check_model_dir(model_dir, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    config = read_config(model_dir)
    if "quantization_config" in config:
        raise ValueError(
            f"{model_dir / 'config.json'}: field quantization_config says the checkpoint is "
            "quantized; score the original full-precision model, whose layers are the ones "
            "that will be sliced")
    dev = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=resolve_dtype(dtype), trust_remote_code=trust_remote_code,
        use_safetensors=None if allow_pickle else True, device_map=str(dev))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    return model, tokenizer


def score_layers(model_dir, calibration_parquet, out_json, out_csv, out_png, *,
                 num_samples: int = 256, seq_len: int = 1024, batch_size: int = 4,
                 max_block: int | None = None, dtype: str = "float32", device: str = "auto",
                 allow_pickle: bool = False, trust_remote_code: bool = False,
                 progress: bool = True, ppl: bool = False, ppl_block_sizes=None,
                 mark_n: int | None = None) -> dict:
    """Score every layer and block of `model_dir` on the calibration mix; write 3 files.

    out_json: {model, model_type, num_layers, block_influence[L], angular_distance:
    {last_token: {n: [start 0..L-n]}, all_tokens: {...}}, best_block: {n: start},
    perplexity (if ppl), settings, convention}. out_csv: one row per block (see
    CSV_HEADER). out_png: heatmap of distance by start layer and block size.
    """
    model, tokenizer = load_model(model_dir, dtype=dtype, device=device,
                                  allow_pickle=allow_pickle,
                                  trust_remote_code=trust_remote_code)
    rows = calibration_rows(calibration_parquet, num_samples)
    langs = [lang for _, lang in rows]
    batches = calibration_batches(tokenizer, [text for text, _ in rows], seq_len, batch_size,
                                  langs=None if set(langs) == {MIXED} else langs)
    log.info("scoring %s on %d samples (%d batches)", model_dir, len(rows), len(batches))
    ppl_block_sizes = _int_list(ppl_block_sizes)
    result = score_model(model, batches, max_block=max_block, ppl=ppl or bool(ppl_block_sizes),
                         ppl_block_sizes=ppl_block_sizes, progress=progress)
    scores = {
        "model": source_name(model_dir),
        "model_type": model.config.model_type,
        **result,
        "best_block": best_blocks(result["angular_distance"]["last_token"]),
        "calibration": {"set": MIXED, "languages": {lang: langs.count(lang)
                                                   for lang in dict.fromkeys(langs)}},
        "settings": {"calibration": str(calibration_parquet), "num_samples": num_samples,
                     "seq_len": seq_len, "batch_size": batch_size, "max_block": max_block,
                     "ppl_block_sizes": ppl_block_sizes,
                     "dtype": str(model.dtype).removeprefix("torch."),
                     "device": str(next(model.parameters()).device)},
        "convention": CSV_HEADER.replace("# ", "").replace("\n", " ").strip(),
    }
    write_json(scores, out_json)
    write_scores_csv(scores, out_csv)
    from secateurs.prune.heatmap import plot_distance_heatmap

    plot_distance_heatmap(scores, out_png, mark_n=mark_n)
    return scores


def write_scores_csv(scores: dict, out_csv) -> None:
    """block_start, block_end, n, distance, distance_all_tokens, calibration: one row per
    block and calibration set (all languages, then each language)."""
    lines = [CSV_HEADER, "block_start,block_end,n,distance,distance_all_tokens,calibration\n"]
    sets = {MIXED: scores, **scores.get("by_language", {})}
    for name, metrics in sets.items():
        last = metrics["angular_distance"]["last_token"]
        every = metrics["angular_distance"]["all_tokens"]
        for n, row in last.items():
            for start, value in enumerate(row):
                lines.append(f"{start},{start + int(n)},{n},{value:.8g},{every[n][start]:.8g},"
                             f"{name}\n")
    with atomic_output(out_csv) as tmp:
        Path(tmp).write_text("".join(lines), encoding="utf-8")


def _int_list(value) -> list[int]:
    """[2, 4] from [2, 4], "2,4" or 3 (plain types, for argparse and Snakemake params)."""
    if value is None or value == "":
        return []
    if isinstance(value, (int, str)):
        value = str(value).split(",")
    return [int(v) for v in value]


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)
