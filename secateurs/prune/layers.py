"""Where a model keeps its decoder layers, under every name the architectures use.

Owns the per-architecture knowledge that scoring, planning and slicing share:

- the module path of the decoder-layer list (`model.layers` for Llama/Mistral/Qwen/Gemma,
  `transformer.h` for Falcon/GPT-2, `gpt_neox.layers` for GPT-NeoX, ...);
- the config keys that hold the layer count (`num_hidden_layers` and its aliases such as
  Falcon's and GPT-2's `n_layer`), read from the raw `config.json` (nested `text_config`
  included), because slicing edits that raw file rather than a re-serialised config;
- the tensor-name pattern of per-layer weights (`<prefix>.<index>.<rest>`);
- the checks every stage makes on a model directory before reading it: safetensors
  present (pickled `.bin` refused unless allowed), remote code refused unless trusted.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import torch

# Module paths of the decoder-layer ModuleList, most common first.
LAYER_CONTAINERS = (
    "model.layers",                 # Llama, Mistral, Qwen2/3, Gemma/Gemma2, Phi3, Yi
    "transformer.h",                # Falcon, GPT-2, GPT-J, Bloom
    "gpt_neox.layers",              # GPT-NeoX, Pythia
    "model.decoder.layers",         # OPT
    "transformer.layers",           # ChatGLM-style
    "transformer.blocks",           # MPT
    "model.language_model.layers",  # multimodal wrappers (Gemma3, Llava-style)
    "language_model.model.layers",
)

# Keys that hold the number of decoder layers, in the order transformers reads them.
NUM_LAYERS_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")

# Per-layer weights: `<prefix>.<index>.<rest>`; the prefix is one of LAYER_CONTAINERS.
_LAYER_NAME = re.compile(r"^(?P<prefix>.+?)\.(?P<index>\d+)\.(?P<rest>.+)$")

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


class ModelDirError(ValueError):
    """A model directory that cannot be read safely or is not shaped as expected."""


# --------------------------------------------------------------------------- modules


def find_decoder_layers(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    """Return (module path, ModuleList) of the model's decoder layers.

    Tries the known paths first, then falls back to the largest ModuleList whose length is
    the config's layer count, so an unlisted architecture still works if it is built the
    usual way.
    """
    for path in LAYER_CONTAINERS:
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            return path, module
    expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    candidates = [(name, m) for name, m in model.named_modules()
                  if isinstance(m, torch.nn.ModuleList) and len(m) > 0
                  and (expected is None or len(m) == expected)]
    if not candidates:
        raise ModelDirError(
            f"{type(model).__name__}: no decoder-layer list found at {', '.join(LAYER_CONTAINERS)} "
            "or any ModuleList of num_hidden_layers modules; add its path to "
            "secateurs.prune.layers.LAYER_CONTAINERS")
    return max(candidates, key=lambda item: len(item[1]))


def delete_layers_in_memory(model: torch.nn.Module, keep: list[int]) -> torch.nn.Module:
    """Keep only `keep` (old indices, in order) in the live model and fix what depends on it.

    This is the reference the sliced checkpoint must equal: the ModuleList is rebuilt, the
    config's layer count and per-layer lists follow, and each attention module's
    `layer_idx` (used by the KV cache) is renumbered.
    """
    path, layers = find_decoder_layers(model)
    kept = torch.nn.ModuleList([layers[i] for i in keep])
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, attr, kept)
    for new_index, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    _slice_live_config(model.config, keep)
    return model


def _slice_live_config(config, keep: list[int]) -> None:
    """Apply `slice_config_dict` to a live PretrainedConfig (and its text_config)."""
    configs = [config] + ([config.text_config] if hasattr(config, "text_config") else [])
    for cfg in configs:
        raw = cfg.to_dict()
        new = slice_config_dict(raw, keep, cfg.num_hidden_layers, warn=False)
        for key, value in new.items():
            if raw.get(key) != value:
                setattr(cfg, key, value)


# --------------------------------------------------------------------------- config.json


def read_config(model_dir: str | os.PathLike) -> dict:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: no config.json; pass a Hugging Face model directory")
    return json.loads(path.read_text(encoding="utf-8"))


def text_config(config: dict) -> dict:
    """The part of a config that describes the decoder (multimodal configs nest it)."""
    nested = config.get("text_config")
    if not any(k in config for k in NUM_LAYERS_KEYS) and isinstance(nested, dict):
        return nested
    return config


def num_layers(config: dict, source: str = "config.json") -> int:
    """Number of decoder layers from a raw config dict, whatever the key is called."""
    cfg = text_config(config)
    for key in NUM_LAYERS_KEYS:
        if isinstance(cfg.get(key), int):
            return cfg[key]
    raise ModelDirError(
        f"{source}: none of {', '.join(NUM_LAYERS_KEYS)} is set; add the layer count under "
        "num_hidden_layers")


# Lists with one entry per layer that are NOT about layers although their length may match.
_NOT_PER_LAYER = {"architectures", "eos_token_id", "bos_token_id", "pad_token_id",
                  "bad_words_ids", "suppress_tokens", "begin_suppress_tokens", "id2label",
                  "label2id", "task_specific_params", "auto_map", "transformers_version"}
# Lists of layer INDICES (not one entry per layer): remapped to new indices.
_LAYER_INDEX_LISTS = {"mlp_only_layers", "global_attn_layers", "full_attn_idxs",
                      "full_attention_layers", "swa_layers", "no_rope_layer_indices",
                      "attention_layer_indices", "kv_shared_layers"}
# Integers that count a prefix of layers ("layers < k behave differently").
_PREFIX_COUNTS = {"max_window_layers", "first_k_dense_replace", "num_full_attention_prefix"}


def slice_config_dict(config: dict, keep: list[int], old_n: int | None = None, *,
                      warn: bool = True) -> dict:
    """A copy of one (flat) config dict describing the model with only layers `keep`.

    Updates the layer count under every alias present, every list with one entry per
    layer (`layer_types`, per-layer head counts, ...), lists of layer indices
    (`mlp_only_layers`) and prefix counts (`max_window_layers`: Qwen2 layers with index
    >= it use sliding-window attention, so the new value counts kept layers below it).
    """
    old_n = old_n if old_n is not None else num_layers(config)
    out = dict(config)
    position = {old: new for new, old in enumerate(keep)}
    for key in NUM_LAYERS_KEYS:
        if isinstance(out.get(key), int) and out[key] == old_n:
            out[key] = len(keep)
    for key, value in config.items():
        if key in _NOT_PER_LAYER:
            continue
        if isinstance(value, list) and len(value) == old_n and key not in _LAYER_INDEX_LISTS:
            out[key] = [value[i] for i in keep]
        elif key in _LAYER_INDEX_LISTS and isinstance(value, list):
            out[key] = [position[i] for i in value if i in position]
        elif key in _PREFIX_COUNTS and isinstance(value, int):
            out[key] = sum(1 for i in keep if i < value)
    if warn:
        warn_pattern_shift(config, keep, old_n)
    return out


def warn_pattern_shift(config: dict, keep: list[int], old_n: int) -> bool:
    """Log a warning when the kept layers no longer follow the model's layer pattern.

    Gemma2 alternates sliding-window and global attention (even layers local); removing
    one layer makes the rest out of phase with the pattern the architecture was trained
    with. The sliced config keeps each layer's own type (so logits match the in-memory
    deletion), but code that re-derives the pattern from the index would not; the user
    should know the pattern changed.
    """
    types = config.get("layer_types")
    if not isinstance(types, list) or len(types) != old_n:
        return False
    kept = [types[i] for i in keep]
    if kept == types[: len(keep)]:
        return False
    logging.getLogger(__name__).warning(
        "layer pattern shifts: layer_types was %s..., after slicing %s...; each kept layer "
        "keeps its own attention type in config.json (layer_types), so the sliced model "
        "no longer follows the architecture's default alternation", types[:6], kept[:6])
    return True


# --------------------------------------------------------------------------- tensor names


def split_layer_name(name: str, prefix: str) -> tuple[int, str] | None:
    """(layer index, rest) for `<prefix>.<index>.<rest>`, None for non-layer tensors."""
    if not name.startswith(prefix + "."):
        return None
    match = _LAYER_NAME.match(name)
    if not match or match["prefix"] != prefix:
        return None
    return int(match["index"]), match["rest"]


def detect_layer_prefix(names: list[str], n_layers: int, source: str = "weights") -> str:
    """The tensor-name prefix of the decoder layers (e.g. `model.layers`).

    A known container with exactly `n_layers` distinct indices wins; otherwise the
    unique prefix with that many indices (so `lm_head`/vision towers are never mistaken
    for it).
    """
    indices: dict[str, set[int]] = {}
    for name in names:
        match = _LAYER_NAME.match(name)
        if match:
            indices.setdefault(match["prefix"], set()).add(int(match["index"]))
    full = [p for p, idx in indices.items() if idx == set(range(n_layers))]
    known = [p for p in LAYER_CONTAINERS if p in full]
    if known:
        return known[0]
    if len(full) == 1:
        return full[0]
    raise ModelDirError(
        f"{source}: cannot tell which tensors are the {n_layers} decoder layers "
        f"(prefixes with indices: { {p: len(i) for p, i in indices.items()} }); "
        "check num_hidden_layers in config.json or add the prefix to LAYER_CONTAINERS")


# --------------------------------------------------------------------------- safety checks


def source_name(model: str | os.PathLike) -> str:
    """How outputs name the source: an absolute path for a local directory, else the hub id.

    Absolute, because mergekit resolves a relative `model:` against its own working
    directory.
    """
    path = Path(model)
    return str(path.resolve()) if path.exists() else str(model)


def resolve_model_dir(model: str | os.PathLike) -> Path:
    """A local directory for `model`: the path itself, or a hub snapshot of a repo id.

    Only safetensors, JSON, tokenizer and template files are fetched, never pickles.
    """
    path = Path(model)
    if path.exists():
        return path
    if str(model).count("/") != 1 or str(model).startswith((".", "/")):
        raise ModelDirError(f"{model}: no such directory, and not a hub repo id 'org/name'")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(model), allow_patterns=[
        "*.safetensors", "*.json", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.md"]))


def check_model_dir(model_dir: str | os.PathLike, *, allow_pickle: bool = False,
                    trust_remote_code: bool = False) -> None:
    """Refuse what would run foreign code: pickled weights and `auto_map` remote code.

    Pickle can execute arbitrary code on load; remote code runs the repository's Python.
    Both need an explicit opt-in from the config (allow_pickle / trust_remote_code).
    """
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    if "auto_map" in config and not trust_remote_code:
        raise ModelDirError(
            f"{model_dir / 'config.json'}: field auto_map asks to run the repository's own "
            "Python code; set base_model.trust_remote_code: true for this model if you trust it")
    has_safetensors = any(model_dir.glob("*.safetensors"))
    pickles = [p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if not has_safetensors and pickles and not allow_pickle:
        raise ModelDirError(
            f"{model_dir}: weights are pickled ({', '.join(sorted(pickles)[:3])}), which can run "
            "arbitrary code when loaded; convert them to safetensors or set base_model.allow_pickle: true")
    if not has_safetensors and not pickles:
        raise ModelDirError(f"{model_dir}: no *.safetensors weights found")
