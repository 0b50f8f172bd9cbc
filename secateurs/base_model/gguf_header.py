"""The layer count of a GGUF file, read from its metadata header without the gguf package.

The config check runs at every Snakemake start and must know how many layers a GGUF base
model has (to check `prune.plan`) before rule import_gguf has run.
"""

from __future__ import annotations

import struct
from pathlib import Path


def gguf_num_layers(path: Path) -> int | None:
    """`<architecture>.block_count` from a GGUF file's metadata header.

    Read by hand, stopping at that key: gguf's GGUFReader parses every tensor record too,
    which takes seconds, and config validation runs at every Snakemake start.
    """
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        metadata = _gguf_metadata(handle, wanted=lambda key: key.endswith(".block_count"))
    counts = [int(v) for k, v in metadata.items() if k.endswith(".block_count")]
    return counts[0] if counts else None


# GGUF v3 metadata value types: id -> struct format (8: string, 9: array; see the gguf spec)
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}


def _gguf_metadata(handle, wanted) -> dict:
    """Metadata values whose key satisfies `wanted`, read until the first one is found."""
    def read(fmt):
        return struct.unpack(fmt, handle.read(struct.calcsize(fmt)))[0]

    def value(kind):
        if kind in _GGUF_SCALARS:
            return read(_GGUF_SCALARS[kind])
        if kind == 8:
            return handle.read(read("<Q")).decode("utf-8", "replace")
        if kind == 9:
            item_kind, n = read("<I"), read("<Q")
            if item_kind in _GGUF_SCALARS:  # skip a numeric array without decoding it
                handle.seek(n * struct.calcsize(_GGUF_SCALARS[item_kind]), 1)
                return None
            return [value(item_kind) for _ in range(n)]
        raise ValueError(f"unknown GGUF metadata type {kind}")

    if handle.read(4) != b"GGUF":
        return {}
    read("<I"), read("<Q")  # version, tensor count
    found = {}
    for _ in range(read("<Q")):
        key = handle.read(read("<Q")).decode("utf-8", "replace")
        item = value(read("<I"))
        if wanted(key):
            found[key] = item
            break
    return found
