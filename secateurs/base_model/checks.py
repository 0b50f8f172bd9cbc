"""The base model's config checks: the source exists (a GGUF file, a model directory
whose weights the stages can read, or a hub id), and its layer count where it can be
known without downloading anything (the pruning checks compare the plan with it).
"""

from __future__ import annotations

import json
from pathlib import Path

from secateurs.base_model.gguf_header import gguf_num_layers
from secateurs.locations import check_source, is_gguf, looks_local, resolve


def check_base_model(config: dict, basedir: Path) -> list[str]:
    """`base_model.source`: demo, an existing .gguf file, an existing model directory the
    stages can read, or a hub id."""
    source = config["base_model"]["source"]
    if source == "demo":
        return []
    if is_gguf(source):
        if not resolve(source, basedir).is_file():
            return [f"config key `base_model.source`: GGUF file {source} does not exist. "
                    "Fix: give an existing .gguf file (for SmolLM2-135M-Instruct run "
                    "`bash .ci/fetch-smollm2`, which prints its path)."]
        return []
    found = check_source("base_model.source", source, basedir, "model directory")
    if found:
        return found
    if looks_local(source, basedir):
        return check_model_dir(resolve(source, basedir), config["base_model"])
    return []


def check_model_dir(model_dir: Path, access: dict) -> list[str]:
    """What a local base model directory needs before scoring and slicing can read it."""
    key = "base_model.source"
    if not (model_dir / "config.json").exists():
        return [f"config key `{key}`: {model_dir} is not a model directory (no config.json). "
                "Fix: give a Hugging Face model directory, a .gguf file, a hub id, or demo."]
    problems = []
    weights = {p.suffix for p in model_dir.iterdir()}
    if ".safetensors" not in weights and weights & {".bin", ".pt", ".pth", ".ckpt"}:
        problems.append(
            f"config key `{key}`: {model_dir} holds only pickled weights (.bin), which the slicer "
            "cannot read (it streams safetensors), so `base_model.allow_pickle: true` alone does "
            "not help. Fix: convert them once, e.g. AutoModelForCausalLM.from_pretrained(dir)"
            ".save_pretrained(new_dir, safe_serialization=True), and point base_model.source "
            "at new_dir.")
    model_config = json.loads((model_dir / "config.json").read_text())
    if model_config.get("auto_map") and not access["trust_remote_code"]:
        problems.append(
            f"config key `base_model.trust_remote_code` is false but {model_dir}/config.json "
            "has auto_map (the model's own Python code). Fix: read that code, then set "
            "base_model.trust_remote_code: true, or use a model transformers supports natively.")
    return problems


def base_num_layers(config: dict, basedir: Path) -> int | None:
    """The base model's layer count when it can be known without downloading anything."""
    source = config["base_model"]["source"]
    if source == "demo":
        return config["demo"]["model"]["num_hidden_layers"]
    if is_gguf(source):
        return gguf_num_layers(resolve(source, basedir))
    model_config = resolve(source, basedir) / "config.json"
    if looks_local(source, basedir) and model_config.exists():
        fields = json.loads(model_config.read_text())
        fields = fields.get("text_config", fields)
        for name in ("num_hidden_layers", "n_layer", "num_layers"):
            if name in fields:
                return int(fields[name])
    return None
