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
- nothing per layer outlives a batch except running sums; `use_cache=False` so packed or
  padded inputs are not cached and documents do not attend to each other.
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

from secateurs.io import atomic_output, read_parquet, write_json
from secateurs.layers import (check_model_dir, delete_layers_in_memory, find_decoder_layers,
                              read_config, resolve_model_dir, source_name)

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}

CSV_HEADER = (
    "# block [block_start, block_end) of n = block_end - block_start layers (0-based, end\n"
    "# exclusive, as mergekit's layer_range): removing it joins the input of layer block_start\n"
    "# to the input of layer block_end (block_end = num_layers means the last layer's output,\n"
    "# before the final norm). distance = arccos(cos)/pi between those two hidden states at\n"
    "# the last non-padding token, mean over samples (Gromov et al. 2024); distance_all_tokens\n"
    "# = the same, mean over all non-padding tokens. Lower = more redundant block.\n")


# --------------------------------------------------------------------------- settings


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    """A torch dtype from "bf16"/"bfloat16"/...; "auto" keeps the checkpoint's own dtype."""
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(DTYPES) + ['auto']}; pick one")
    return DTYPES[dtype]


# --------------------------------------------------------------------------- data


def calibration_texts(parquet: str | os.PathLike, num_samples: int) -> list[str]:
    """The first `num_samples` non-empty rows of the `text` column.

    The mix is already shuffled by the data stage, so its head is a fair sample and the
    choice is reproducible without a seed.
    """
    rows = read_parquet(parquet, columns=["text"]) if _has_text(parquet) else None
    if rows is None:
        raise ValueError(f"{parquet}: no `text` column; pass the training mix Parquet")
    texts = [r["text"] for r in rows if isinstance(r["text"], str) and r["text"].strip()]
    if not texts:
        raise ValueError(f"{parquet}: column `text` has no non-empty rows")
    if len(texts) < num_samples:
        log.warning("%s has %d texts, fewer than num_samples=%d; using all", parquet,
                    len(texts), num_samples)
    return texts[:num_samples]


def _has_text(parquet) -> bool:
    import pyarrow.parquet as pq

    return "text" in pq.read_schema(parquet).names


def calibration_batches(tokenizer, texts: list[str], seq_len: int,
                        batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Right-padded batches of at most `seq_len` tokens.

    Right padding: under a causal mask real tokens never see the pads after them and keep
    their positions, so a padded batch scores exactly like one sample at a time.
    """
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batches = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], max_length=seq_len, truncation=True,
                        padding=True, return_tensors="pt")
        batches.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    return batches


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

    def to(self, device: torch.device) -> "RunningSums":
        """Keep the sums on the hidden states' device (moved once, on first use)."""
        if self.all_sum.device != device:
            for name in ("all_sum", "last_sum", "cos_sum"):
                setattr(self, name, getattr(self, name).to(device))
        return self

    def block_influence(self) -> list[float]:
        return [1.0 - c / self.tokens for c in self.cos_sum.cpu().tolist()]

    def distances(self, sums: torch.Tensor, count: int) -> dict[str, list[float]]:
        """{n: [mean distance for start 0 .. L-n]} as JSON-friendly lists."""
        sums = sums.cpu()
        return {str(n): (sums[n - 1, : self.num_layers - n + 1] / count).tolist()
                for n in range(1, self.max_block + 1)}


class LayerTaps:
    """Forward hooks that turn each layer's input/output into running sums.

    The hook on layer i sees x_i (its input) and x_{i+1} (its output). float32 copies of
    the last `max_block` states (and their norms) live in a ring buffer laid out (batch,
    token, slot, hidden) for this batch only; when x_e arrives, one batched
    matrix-vector product gives its dot product with every stored state, i.e. every block
    ending at e, without a temporary per block.
    """

    def __init__(self, layers: torch.nn.ModuleList, max_block: int):
        self.layers = layers
        self.sums = RunningSums(len(layers), max_block)
        self.handles = []
        self.ring: torch.Tensor | None = None
        self.norms: torch.Tensor | None = None
        self.slot_end: list[int] = []
        self.mask = self.last = None

    def __enter__(self):
        for i, layer in enumerate(self.layers):
            self.handles.append(layer.register_forward_hook(self._hook(i), with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.ring = self.norms = None

    def start_batch(self, attention_mask: torch.Tensor) -> None:
        self.mask = attention_mask.bool()
        self.last = attention_mask.sum(dim=1) - 1  # right padding: last real token
        self.ring = self.norms = None
        self.slot_end = [-1] * self.sums.max_block
        self.sums.tokens += int(self.mask.sum())
        self.sums.samples += int(attention_mask.shape[0])

    def _hook(self, index: int):
        def hook(module, args, kwargs, output):
            x_in = args[0] if args else kwargs["hidden_states"]
            x_out = output[0] if isinstance(output, (tuple, list)) else output
            if index == 0:
                self._add_state(0, x_in.detach().float())
            self._add_state(index + 1, x_out.detach().float())
        return hook

    def _add_state(self, end: int, state: torch.Tensor) -> None:
        """Score every block ending at `end`, then store x_end in the oldest slot.

        Device tensors only (indices are host ints), so a GPU never waits for the host.
        """
        sums = self.sums.to(state.device)
        if self.ring is None:
            self.ring = state.new_zeros(state.shape[:2] + (sums.max_block, state.shape[-1]))
            self.norms = state.new_ones(state.shape[:2] + (sums.max_block,))
        norm = torch.linalg.vector_norm(state, dim=-1)
        slots = [k for k, start in enumerate(self.slot_end) if start >= 0]
        if slots:
            dot = torch.matmul(self.ring, state.unsqueeze(-1)).squeeze(-1)
            cos = (dot / (self.norms * norm.unsqueeze(-1)).clamp_min(1e-12)).clamp(-1.0, 1.0)
            dist = torch.arccos(cos).double() / math.pi  # (batch, token, slot)
            mask = self.mask.to(state.device, torch.float64).unsqueeze(-1)
            rows = torch.arange(state.shape[0], device=state.device)
            starts = [self.slot_end[k] for k in slots]
            blocks = torch.tensor([end - s - 1 for s in starts], device=state.device)
            begin = torch.tensor(starts, device=state.device)
            chosen = torch.tensor(slots, device=state.device)
            sums.all_sum.index_put_((blocks, begin), (dist * mask).sum((0, 1))[chosen],
                                    accumulate=True)
            sums.last_sum.index_put_((blocks, begin),
                                     dist[rows, self.last.to(state.device)].sum(0)[chosen],
                                     accumulate=True)
            neighbour = self.slot_end.index(end - 1)  # n = 1: Block Influence of layer end-1
            sums.cos_sum[end - 1] += (cos[..., neighbour].double() * mask[..., 0]).sum()
        slot = end % sums.max_block  # holds end - max_block, scored above for the last time
        self.ring[:, :, slot] = state
        self.norms[:, :, slot] = norm
        self.slot_end[slot] = end


# --------------------------------------------------------------------------- scoring


@torch.inference_mode()
def score_model(model, batches: list[dict[str, torch.Tensor]], *, max_block: int | None = None,
                ppl: bool = False, ppl_block_sizes=(), progress: bool = True) -> dict:
    """Every metric for an in-memory model over pre-tokenized batches (no files).

    The perplexity criterion (ppl=True) costs one extra pass per layer and per candidate
    block, so it is off by default.
    """
    path, layers = find_decoder_layers(model)
    n_layers = len(layers)
    max_block = n_layers - 1 if max_block is None else int(max_block)
    if not 1 <= max_block <= n_layers:
        raise ValueError(f"max_block={max_block} must be between 1 and num_layers={n_layers}")
    device = next(model.parameters()).device
    with LayerTaps(layers, max_block) as taps:
        for batch in _progress(batches, progress, "score"):
            taps.start_batch(batch["attention_mask"])
            model(**{k: v.to(device) for k, v in batch.items()}, use_cache=False)
    sums = taps.sums
    result = {
        "num_layers": n_layers,
        "layers_module": path,
        "block_influence": sums.block_influence(),
        "angular_distance": {
            "last_token": sums.distances(sums.last_sum, sums.samples),
            "all_tokens": sums.distances(sums.all_sum, sums.tokens),
        },
        "samples": sums.samples,
        "tokens": sums.tokens,
        "max_block": max_block,
    }
    if ppl:
        result["perplexity"] = layer_removal_perplexity(
            model, batches, block_sizes=ppl_block_sizes or (), progress=progress)
    return result


def best_blocks(distance: dict[str, list[float]]) -> dict[str, int]:
    """For each block size n, the start of the block with the smallest distance."""
    return {n: min(range(len(d)), key=d.__getitem__) for n, d in distance.items()}


# --------------------------------------------------------------------------- perplexity


@torch.inference_mode()
def batches_nll(model, batches, device) -> tuple[float, int]:
    """Summed next-token NLL over non-padding targets, and the number of targets."""
    total, count = 0.0, 0
    for batch in batches:
        ids = batch["input_ids"].to(device)
        mask = batch["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        target_mask = mask[:, 1:].bool()
        nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:],
                              reduction="none")
        total += float(nll[target_mask].double().sum())
        count += int(target_mask.sum())
    return total, count


@torch.inference_mode()
def layer_removal_perplexity(model, batches, *, block_sizes=(), progress: bool = True) -> dict:
    """Calibration perplexity of the full model, with each layer and each block removed.

    Kim et al. 2024 (Shortened LLaMA, arXiv:2402.02834): the layer (or contiguous block of
    n layers, for each n in `block_sizes`) whose removal raises perplexity least matters
    least. Layers are removed from the live model in place (no copy of any weight) and
    restored after each measurement. Returns {full, without_layer: [L], without_block:
    {n: [start 0..L-n]}, tokens}.
    """
    device = next(model.parameters()).device
    _, layers = find_decoder_layers(model)
    n_layers = len(layers)
    base_nll, count = batches_nll(model, batches, device)
    blocks = [(1, start) for start in range(n_layers)]
    blocks += [(int(n), start) for n in block_sizes for start in range(n_layers - int(n) + 1)]
    measured = {}
    for n, start in _progress(blocks, progress, "ppl"):
        keep = [i for i in range(n_layers) if not start <= i < start + n]
        if not keep:
            raise ValueError(f"ppl block size {n} removes all {n_layers} layers; lower it")
        with layers_removed(model, keep):
            nll, _ = batches_nll(model, batches, device)
        measured[n, start] = math.exp(nll / count)
    return {
        "full": math.exp(base_nll / count),
        "without_layer": [measured[1, start] for start in range(n_layers)],
        "without_block": {str(n): [measured[int(n), s] for s in range(n_layers - int(n) + 1)]
                          for n in block_sizes},
        "tokens": count,
    }


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
                 num_samples: int = 64, seq_len: int = 256, batch_size: int = 4,
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
    texts = calibration_texts(calibration_parquet, num_samples)
    batches = calibration_batches(tokenizer, texts, seq_len, batch_size)
    log.info("scoring %s on %d samples (%d batches)", model_dir, len(texts), len(batches))
    ppl_block_sizes = _int_list(ppl_block_sizes)
    result = score_model(model, batches, max_block=max_block, ppl=ppl or bool(ppl_block_sizes),
                         ppl_block_sizes=ppl_block_sizes, progress=progress)
    scores = {
        "model": source_name(model_dir),
        "model_type": model.config.model_type,
        **result,
        "best_block": best_blocks(result["angular_distance"]["last_token"]),
        "settings": {"calibration": str(calibration_parquet), "num_samples": num_samples,
                     "seq_len": seq_len, "batch_size": batch_size, "max_block": max_block,
                     "ppl_block_sizes": ppl_block_sizes,
                     "dtype": str(model.dtype).removeprefix("torch."),
                     "device": str(next(model.parameters()).device)},
        "convention": CSV_HEADER.replace("# ", "").replace("\n", " ").strip(),
    }
    write_json(scores, out_json)
    write_scores_csv(scores, out_csv)
    from secateurs.heatmap import plot_distance_heatmap

    plot_distance_heatmap(scores, out_png, mark_n=mark_n)
    return scores


def write_scores_csv(scores: dict, out_csv) -> None:
    """block_start, block_end, n, distance, distance_all_tokens, one row per block."""
    last = scores["angular_distance"]["last_token"]
    every = scores["angular_distance"]["all_tokens"]
    lines = [CSV_HEADER, "block_start,block_end,n,distance,distance_all_tokens\n"]
    for n, row in last.items():
        for start, value in enumerate(row):
            lines.append(f"{start},{start + int(n)},{n},{value:.8g},{every[n][start]:.8g}\n")
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
