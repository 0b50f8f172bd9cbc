"""A pruning plan as mergekit reads it: kept layers as half-open slices, and the
passthrough config that builds the same model (https://github.com/arcee-ai/mergekit).

mergekit's `layer_range: [start, end]` is half-open (end excluded), the same convention
as `prune.plan.slices`; the plan writes this config as `mergekit.yaml` and the slicer
writes it beside the model it made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MERGEKIT_YAML = "mergekit_config.yml"  # the name slice_model writes it under


def kept_ranges(keep: list[int]) -> list[list[int]]:
    """Contiguous half-open ranges covering `keep`: [0,1,2,5,6] -> [[0,3],[5,7]]."""
    ranges = []
    for i in keep:
        if ranges and ranges[-1][1] == i:
            ranges[-1][1] = i + 1
        else:
            ranges.append([i, i + 1])
    return ranges


def mergekit_yaml(source_model: str, keep: list[int], *, dtype: str | None = None) -> str:
    """mergekit passthrough config that builds the model with layers `keep`.

    mergekit's `layer_range: [start, end]` is half-open (end excluded), so kept layers
    [0..23] + [55..58] read as [0, 24] and [55, 59]. Strings are JSON-quoted (valid YAML).
    """
    lines = ["slices:"]
    for start, end in kept_ranges(keep):
        lines += ["  - sources:", f"      - model: {json.dumps(str(source_model))}",
                  f"        layer_range: [{start}, {end}]"]
    lines.append("merge_method: passthrough")
    if dtype:
        lines.append(f"dtype: {dtype}")
    return "\n".join(lines) + "\n"


def mergekit_source(model) -> str:
    """The base model as the user gave it, for a recipe that must work on other machines.

    A hub id stays as it is; a local directory becomes a path relative to the working
    directory (where one runs mergekit), never an absolute path of this machine.
    """
    path = Path(str(model))
    if not path.exists():
        return str(model)
    return os.path.relpath(os.path.abspath(path), os.getcwd())
