"""Safetensors files of a model directory, read and written without loading a tensor.

Owns the format: a safetensors file is an 8-byte little-endian header length, a JSON
header of {name: dtype, shape, data_offsets}, then the data buffer
(https://github.com/huggingface/safetensors); a sharded model lists its files in
`model.safetensors.index.json`. Reading parses only the headers (where each tensor's
bytes lie); writing copies each tensor's bytes from its source file straight into the
output shard (`os.copy_file_range`, in-kernel where the filesystem allows, else 8 MiB
chunks), so memory stays flat whatever the model size and the bytes are bit-identical
to the source (any dtype, fp8 included). Slicing and the parameter count read it.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from secateurs.prune.layers import ModelDirError

INDEX_NAME = "model.safetensors.index.json"
_CHUNK = 8 << 20
# In-kernel copies (no bytes through user space); set False to force the portable path.
USE_COPY_FILE_RANGE = hasattr(os, "copy_file_range") or hasattr(os, "sendfile")


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


# --------------------------------------------------------------------------- writing


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
