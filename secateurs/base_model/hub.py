"""Downloading a base model named by hub id: weights as safetensors, config, tokenizer.

Only the files a Hugging Face model directory needs are fetched; pickled `.bin` weights
are left on the hub unless the config allows them, because unpickling runs code.
"""

from __future__ import annotations

import os

from secateurs.io import atomic_output

MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


def fetch_model(repo_id: str, out_dir: str | os.PathLike, *, revision: str | None = None,
                allow_pickle: bool = False) -> None:
    """Download `repo_id` into `out_dir` (atomically); fail clearly when it has no safetensors."""
    from huggingface_hub import snapshot_download

    patterns = MODEL_FILES + (["*.bin"] if allow_pickle else [])
    with atomic_output(out_dir, directory=True) as tmp:
        snapshot_download(repo_id, revision=revision, local_dir=tmp, allow_patterns=patterns)
        if not allow_pickle and not any(p.suffix == ".safetensors" for p in tmp.iterdir()):
            raise ValueError(
                f"base_model.source {repo_id}: the hub repository has no .safetensors weights. "
                "Fix: convert it to safetensors, or set base_model.allow_pickle: true if you "
                "trust its pickled .bin files.")
