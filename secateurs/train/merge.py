"""Fold a LoRA adapter into its base model and write a plain HF model directory.

Evaluation, slicing and serving read ordinary safetensors models, so a LoRA-healed or
LoRA-chat model is merged (W + B·A·alpha/r, peft's `merge_and_unload`) before anything
downstream sees it. The adapter itself is kept in `out_dir/adapter/` so the small delta
can be shared or re-applied. When SFT added ChatML tokens, the adapter directory carries
the grown tokenizer: the base embeddings are resized to it first so the adapter's saved
embedding/lm_head rows load.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from secateurs.io import atomic_output

log = logging.getLogger(__name__)

ADAPTER_SUBDIR = "adapter"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md")


def merge_adapter(base_model_dir: str | os.PathLike, adapter_dir: str | os.PathLike,
                  out_dir: str | os.PathLike, *, keep_adapter: bool = True,
                  dtype: torch.dtype | None = None, config_overrides: dict | None = None) -> None:
    """Merge the LoRA adapter in `adapter_dir` into `base_model_dir`; write `out_dir` atomically."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter_dir}/adapter_config.json is missing: adapter_dir must be "
                                "a peft adapter directory (save_pretrained of a PeftModel)")
    tokenizer_src = adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else Path(base_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_src)
    base = AutoModelForCausalLM.from_pretrained(base_model_dir, use_safetensors=True,
                                                dtype=dtype or "auto")
    if base.get_input_embeddings().weight.shape[0] < len(tokenizer):
        log.info("resizing base embeddings to %d tokens for the adapter's tokenizer", len(tokenizer))
        base.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    for key, value in (config_overrides or {}).items():  # e.g. max_position_embeddings
        setattr(merged.config, key, value)
    with atomic_output(out_dir, directory=True) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        generation = adapter_dir / "generation_config.json"
        if generation.exists():
            GenerationConfig.from_pretrained(adapter_dir).save_pretrained(tmp)
        if keep_adapter:
            (tmp / ADAPTER_SUBDIR).mkdir()
            for name in ADAPTER_FILES:
                if (adapter_dir / name).exists():
                    shutil.copy2(adapter_dir / name, tmp / ADAPTER_SUBDIR / name)
    log.info("merged %s into %s -> %s", adapter_dir, base_model_dir, out_dir)
