"""Write a depth-pruned copy of a model: kept layers only, renumbered, config fixed.

Owns the `slice_model` stage. The weights are streamed, never loaded: each kept tensor's
bytes are copied from the source safetensors file straight into the output shard
(`os.copy_file_range`, in-kernel where the filesystem allows, else 8 MiB chunks), so
memory stays flat whatever the model size and the bytes are bit-identical to the source
(any dtype, fp8 included). Only the small JSON headers are parsed; the safetensors format
is an 8-byte little-endian header length, a JSON header of {name: dtype, shape,
data_offsets}, then the data buffer (https://github.com/huggingface/safetensors).

Beside the weights: `config.json` with the layer count (every alias) and every per-layer
field updated (`secateurs.prune.layers.slice_config_dict`), all tokenizer / generation /
chat-template files copied, `secateurs_slice.json` recording source and plan, and
`mergekit_config.yml`, the mergekit passthrough recipe that builds the same model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from secateurs import __version__
from secateurs.io import atomic_output, read_json, write_json
from secateurs.prune.layers import (PICKLE_SUFFIXES, ModelDirError, check_model_dir,
                              detect_layer_prefix, num_layers, read_config, resolve_model_dir,
                              slice_config_dict, source_name, split_layer_name, text_config)

log = logging.getLogger(__name__)

SLICE_RECORD = "secateurs_slice.json"
MERGEKIT_YAML = "mergekit_config.yml"
INDEX_NAME = "model.safetensors.index.json"
_CHUNK = 8 << 20
# In-kernel copies (no bytes through user space); set False to force the portable path.
USE_COPY_FILE_RANGE = hasattr(os, "copy_file_range") or hasattr(os, "sendfile")

# Files never copied: weights (rewritten), the config (rewritten), other weight formats,
# and Mistral's native-format description, which would describe the unsliced model.
_SKIP_SUFFIXES = (".safetensors", ".gguf", ".h5", ".msgpack", ".onnx", ".ot") + PICKLE_SUFFIXES
_SKIP_NAMES = {"config.json", "params.json", SLICE_RECORD, MERGEKIT_YAML}


@dataclass(frozen=True)
class TensorSource:
    """Where one tensor's bytes live in a source safetensors file."""

    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute byte offset in file
    nbytes: int


# --------------------------------------------------------------------------- reading


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict, int]:
    """(header dict, absolute offset of the data buffer) of one safetensors file."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ModelDirError(f"{path}: too short to be a safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > 100 << 20:
            raise ModelDirError(f"{path}: header of {length} bytes; not a safetensors file")
        header = json.loads(f.read(length))
    return header, 8 + length


def weight_files(model_dir: Path) -> list[Path]:
    """Safetensors files of the model: from the index if there is one, else model.safetensors.

    `consolidated.safetensors` (Mistral's native format, a duplicate of the same weights) is
    never read.
    """
    index = model_dir / INDEX_NAME
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return [model_dir / name for name in sorted(set(weight_map.values()))]
    single = model_dir / "model.safetensors"
    if single.is_file():
        return [single]
    files = sorted(p for p in model_dir.glob("*.safetensors")
                   if not p.name.startswith("consolidated"))
    if not files:
        raise ModelDirError(f"{model_dir}: no safetensors weights (model.safetensors or "
                            f"{INDEX_NAME}); convert the checkpoint to safetensors first")
    return files


def tensor_sources(model_dir: Path) -> list[TensorSource]:
    """Every tensor of the model, in file order then byte order (sequential reads)."""
    sources = []
    for path in weight_files(model_dir):
        header, data_start = read_safetensors_header(path)
        entries = [(k, v) for k, v in header.items() if k != "__metadata__"]
        for name, info in sorted(entries, key=lambda kv: kv[1]["data_offsets"][0]):
            begin, end = info["data_offsets"]
            sources.append(TensorSource(name, path, info["dtype"], tuple(info["shape"]),
                                        data_start + begin, end - begin))
    return sources


# --------------------------------------------------------------------------- planning


def parse_size(size: int | str) -> int:
    """Bytes from 2000000, "2GB" (10^9, as transformers), "2GiB" (2^30), "500MB", ..."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?I?B?)\s*", str(size).upper())
    if not match:
        raise ValueError(f"max_shard_size {size!r}: write a byte count or e.g. '2GB', '500MB'")
    number, unit = float(match[1]), match[2]
    powers = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}
    base = 1024 if "I" in unit else 1000
    return int(number * base ** powers[unit.rstrip("IB")[:1] if unit else ""])


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


def plan_shards(tensors: list[tuple[str, TensorSource]],
                max_bytes: int) -> list[list[tuple[str, TensorSource]]]:
    """Greedy shards of at most max_bytes (a bigger tensor gets a shard of its own)."""
    shards, current, size = [], [], 0
    for item in tensors:
        if current and size + item[1].nbytes > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(item)
        size += item[1].nbytes
    if current:
        shards.append(current)
    return shards


# --------------------------------------------------------------------------- writing


def write_shard(path: Path, tensors: list[tuple[str, TensorSource]]) -> None:
    """Write one safetensors file by copying each tensor's bytes from its source."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, src in tensors:
        header[name] = {"dtype": src.dtype, "shape": list(src.shape),
                        "data_offsets": [offset, offset + src.nbytes]}
        offset += src.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # align the data buffer to 8 bytes, as safetensors does
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        handles: dict[Path, object] = {}
        try:
            for _, src in tensors:
                if src.file not in handles:
                    handles[src.file] = open(src.file, "rb")
                copy_range(handles[src.file], out, src.start, src.nbytes)
        finally:
            for handle in handles.values():
                handle.close()


def copy_range(src, dst, start: int, nbytes: int) -> None:
    """Append src[start:start+nbytes] to dst without holding more than one chunk.

    In-kernel first (`copy_file_range`, then `sendfile`, which `shutil.copyfile` uses);
    else a reused 8 MiB buffer, so memory stays flat on any platform.
    """
    dst.flush()
    done = _kernel_copy(src, dst, start, nbytes) if USE_COPY_FILE_RANGE else 0
    dst.seek(0, os.SEEK_END)
    remaining, buffer = nbytes - done, memoryview(bytearray(min(_CHUNK, nbytes - done or 1)))
    src.seek(start + done)
    while remaining:
        read = src.readinto(buffer[: min(len(buffer), remaining)])
        if not read:
            raise ModelDirError(f"{src.name}: file ends before the tensor data does")
        dst.write(buffer[:read])
        remaining -= read


def _kernel_copy(src, dst, start: int, nbytes: int) -> int:
    """Bytes copied in-kernel (0 where the filesystem or platform refuses)."""
    done = 0
    for call in (_copy_file_range, _sendfile):
        try:
            while done < nbytes:
                step = call(src.fileno(), dst.fileno(), nbytes - done, start + done)
                if step == 0:
                    break
                done += step
            return done
        except (OSError, AttributeError):  # unsupported here: try the next way
            continue
    return done


def _copy_file_range(src_fd: int, dst_fd: int, count: int, offset: int) -> int:
    return os.copy_file_range(src_fd, dst_fd, count, offset)


def _sendfile(src_fd: int, dst_fd: int, count: int, offset: int) -> int:
    return os.sendfile(dst_fd, src_fd, offset, count)


def write_weights(out_dir: Path, tensors, max_bytes: int) -> dict:
    """Shards model-0000i-of-0000N.safetensors plus model.safetensors.index.json."""
    shards = plan_shards(tensors, max_bytes)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        write_shard(out_dir / name, shard)
        for tensor_name, src in shard:
            weight_map[tensor_name] = name
            total += src.nbytes
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out_dir / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return {"shards": len(shards), "total_size": total, "tensors": len(weight_map)}


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
    from secateurs.prune.plan import mergekit_yaml

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
