"""Write a depth-pruned copy of a model: kept layers only, renumbered, config fixed.

Owns the `slice_model` stage. The weights are streamed, never loaded: the kept tensors
are renamed and their bytes copied into new shards (`secateurs.prune.shards`, which owns
the safetensors format), so memory stays flat whatever the model size and the bytes are
bit-identical to the source.

Beside the weights: `config.json` with the layer count (every alias) and every per-layer
field updated (`secateurs.prune.layers.slice_config_dict`), all tokenizer / generation /
chat-template files copied, `secateurs_slice.json` recording source and plan, and
`mergekit_config.yml`, the mergekit passthrough recipe that builds the same model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from secateurs import __version__
from secateurs.io import atomic_output, read_json, write_json
from secateurs.prune.layers import (PICKLE_SUFFIXES, ModelDirError, check_model_dir,
                                    detect_layer_prefix, num_layers, read_config,
                                    resolve_model_dir, slice_config_dict, source_name,
                                    split_layer_name, text_config)
from secateurs.prune.mergekit import MERGEKIT_YAML, mergekit_yaml
from secateurs.prune.shards import TensorSource, parse_size, tensor_sources, write_weights

log = logging.getLogger(__name__)

SLICE_RECORD = "secateurs_slice.json"

# Files never copied: weights (rewritten), the config (rewritten), other weight formats,
# and Mistral's native-format description, which would describe the unsliced model.
_SKIP_SUFFIXES = (".safetensors", ".gguf", ".h5", ".msgpack", ".onnx", ".ot") + PICKLE_SUFFIXES
_SKIP_NAMES = {"config.json", "params.json", SLICE_RECORD, MERGEKIT_YAML}


# --------------------------------------------------------------------------- planning


def check_keep(keep_layers, n_layers: int) -> list[int]:
    keep = [int(i) for i in keep_layers]
    if not keep:
        raise ValueError("keep_layers is empty; keep at least one layer")
    if any(b <= a for a, b in zip(keep, keep[1:])):
        raise ValueError(f"keep_layers {keep} must be strictly increasing (depth pruning keeps "
                         "the original order); sort it and drop duplicates")
    if keep[0] < 0 or keep[-1] >= n_layers:
        raise ValueError(f"keep_layers {keep} has indices outside 0..{n_layers - 1} "
                         f"(the model has {n_layers} layers)")
    return keep


def renamed_tensors(sources: list[TensorSource], keep: list[int], n_layers: int,
                    source: str) -> list[tuple[str, TensorSource]]:
    """(new name, source) for every tensor that survives, layers renumbered 0..len(keep)-1."""
    prefix = detect_layer_prefix([s.name for s in sources], n_layers, source)
    new_index = {old: new for new, old in enumerate(keep)}
    out = []
    for src in sources:
        parts = split_layer_name(src.name, prefix)
        if parts is None:
            out.append((src.name, src))
        elif parts[0] in new_index:
            out.append((f"{prefix}.{new_index[parts[0]]}.{parts[1]}", src))
    return out


# --------------------------------------------------------------------------- writing


def sliced_config(model_dir: Path, keep: list[int], *, trust_remote_code: bool) -> dict:
    """config.json for the sliced model.

    A per-layer field that the raw file leaves to a default (Gemma2's and Qwen2's
    `layer_types` are derived from the index when absent) is written out explicitly first:
    re-deriving it for the shorter model would give kept layers a different attention type.
    """
    config = read_config(model_dir)
    n_layers = num_layers(config, str(model_dir / "config.json"))
    decoder = text_config(config)
    if "layer_types" not in decoder:
        derived = _derived_layer_types(model_dir, trust_remote_code)
        if derived is not None and len(derived) == n_layers:
            decoder["layer_types"] = derived
    new_decoder = slice_config_dict(decoder, keep, n_layers)
    if decoder is config:
        return new_decoder
    return {**config, "text_config": new_decoder}


def _derived_layer_types(model_dir: Path, trust_remote_code: bool) -> list | None:
    from transformers import AutoConfig

    loaded = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    loaded = getattr(loaded, "text_config", None) or loaded
    types = getattr(loaded, "layer_types", None)
    return list(types) if isinstance(types, (list, tuple)) else None


def copy_side_files(model_dir: Path, out_dir: Path, *, trust_remote_code: bool) -> list[str]:
    """Tokenizer, generation config, chat template, README/licence: every small file."""
    copied = []
    for path in sorted(model_dir.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith(".") or name in _SKIP_NAMES:
            continue
        if name.endswith(_SKIP_SUFFIXES) or name.endswith(".index.json"):
            continue
        if name.endswith(".py") and not trust_remote_code:
            continue
        shutil.copy2(path, out_dir / name)
        copied.append(name)
    return copied


def _keep_from(keep_layers, plan: dict | None) -> list[int]:
    if isinstance(keep_layers, str):
        keep_layers = [int(v) for v in keep_layers.replace(" ", "").split(",") if v]
    if keep_layers is None:
        if not plan or "keep" not in plan:
            raise ValueError("no keep_layers and no plan with a `keep` list; pass one of them")
        return list(plan["keep"])
    if plan and "keep" in plan and list(plan["keep"]) != [int(i) for i in keep_layers]:
        raise ValueError(f"keep_layers {list(keep_layers)} differ from the plan's keep "
                         f"{plan['keep']}; pass only the plan")
    return list(keep_layers)


def slice_model(model_dir, keep_layers: list | str | None, out_dir, *,
                max_shard_size: int | str = "2GB", allow_pickle: bool = False,
                trust_remote_code: bool = False, plan: dict | str | None = None) -> dict:
    """Write the model with only `keep_layers` (old indices, increasing) to `out_dir`.

    `keep_layers` may be a list, a string "0,1,2" (CLI), or None to take `plan["keep"]`;
    `plan` is the plan dict or the path of plan_pruning's JSON.

    Returns {out_dir, source_model, num_layers_before, num_layers_after, keep, remove,
    shards, total_size, tensors, copied_files}; the same record (plus the plan) is saved
    as secateurs_slice.json, and mergekit_config.yml beside it. The directory appears
    only when complete.
    """
    source = source_name(model_dir)
    model_dir = resolve_model_dir(model_dir)
    check_model_dir(model_dir, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    if not any(model_dir.glob("*.safetensors")):
        raise ModelDirError(f"{model_dir}: only pickled weights; slicing streams safetensors, "
                            "so convert the checkpoint to safetensors first")
    n_layers = num_layers(read_config(model_dir), str(model_dir / "config.json"))
    plan = read_json(plan) if isinstance(plan, (str, os.PathLike)) else plan
    keep = check_keep(_keep_from(keep_layers, plan), n_layers)
    tensors = renamed_tensors(tensor_sources(model_dir), keep, n_layers, str(model_dir))
    config = sliced_config(model_dir, keep, trust_remote_code=trust_remote_code)
    record = {
        "source_model": source,
        "num_layers_before": n_layers,
        "num_layers_after": len(keep),
        "keep": keep,
        "remove": [i for i in range(n_layers) if i not in set(keep)],
        "created_by": f"secateurs {__version__}",
    }
    with atomic_output(out_dir, directory=True) as tmp:
        record.update(write_weights(tmp, tensors, parse_size(max_shard_size)))
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        record["copied_files"] = copy_side_files(model_dir, tmp,
                                                 trust_remote_code=trust_remote_code)
        write_json({**record, "plan": plan}, tmp / SLICE_RECORD)
        dtype = text_config(config).get("dtype") or text_config(config).get("torch_dtype")
        (tmp / MERGEKIT_YAML).write_text(mergekit_yaml(source, keep, dtype=dtype),
                                         encoding="utf-8")
    log.info("sliced %s: %d -> %d layers, %d shards, %.1f MB -> %s", source, n_layers,
             len(keep), record["shards"], record["total_size"] / 1e6, out_dir)
    return {"out_dir": str(out_dir), **record}
