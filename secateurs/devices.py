"""Where and in what precision a model runs: `device` and `dtype` config values to torch.

Scoring and evaluation take the same two settings; one reading of them keeps `auto` and
the short names (bf16, fp16, fp32) meaning the same thing in both stages.
"""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU; anything else is passed to torch."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype, *, error: type[ValueError] = ValueError,
                  stage: str = "dtype") -> torch.dtype | str:
    """A torch dtype from "bf16"/"bfloat16"/...; "auto" keeps the checkpoint's own dtype."""
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if dtype not in DTYPES:
        raise error(f"{stage}: dtype {dtype!r} is not supported; use one of "
                    f"{sorted(DTYPES)} or 'auto'")
    return DTYPES[dtype]
