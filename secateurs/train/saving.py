"""Publishing a trained model: an HF directory in the rule's output, written atomically.

A run's model reaches `out_dir` one of two ways: `save_trained` after training (every
process takes part, ZeRO-3 gathers its shards), or `stage_from_checkpoint` when a rerun
finds the run already finished. Both end in `publish_model`: tokenizer, generation config
(the stage's stop tokens), a LoRA adapter merged with the adapter kept beside it
(secateurs.train.merge), and the KV cache turned back on for generation.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from secateurs.io import atomic_output

MODEL_FILE_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "config.json",
                       "generation_config.json", "adapter_config.json")


def save_trained(trainer, tokenizer, out_dir: str | os.PathLike, *, base_model_dir: str | os.PathLike,
                 staging: str | os.PathLike, generation_eos: list[int] | None = None,
                 config_overrides: dict | None = None) -> None:
    """Write the trained model to `out_dir` as an HF directory, atomically.

    Every process calls this (ZeRO-3 gathers shards collectively inside `save_model`); the
    main process assembles the directory. LoRA runs write the merged model with the adapter
    kept in `out_dir/adapter` (see `secateurs.train.merge`).
    """
    staging = Path(staging)
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))
    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.generation_config.save_pretrained(staging)
    publish_model(staging, tokenizer, out_dir, base_model_dir=base_model_dir,
                  generation_eos=generation_eos, config_overrides=config_overrides)


def stage_from_checkpoint(checkpoint: str | os.PathLike, staging: str | os.PathLike) -> Path:
    """Copy a finished run's last checkpoint's model files to `staging` (main process only).

    Used when a rerun finds the run already at max_steps: Trainer.train() would take one
    step more (transformers 5.23 does not check global_step before its first step), so we
    publish the checkpoint instead. Trainer checkpoints hold the HF weights even under
    DeepSpeed ZeRO-3 (stage3_gather_16bit_weights_on_model_save in our configs).
    """
    staging = Path(staging)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for pattern in MODEL_FILE_PATTERNS:
        for item in Path(checkpoint).glob(pattern):
            shutil.copy2(item, staging / item.name)
    return staging


def publish_model(staging: str | os.PathLike, tokenizer, out_dir: str | os.PathLike, *,
                  base_model_dir: str | os.PathLike, generation_eos: list[int] | None = None,
                  config_overrides: dict | None = None) -> None:
    """Turn a staged save (full weights or a LoRA adapter) into the final `out_dir`.

    `config_overrides` (see `secateurs.train.models.config_overrides`) reach a merged LoRA model too, whose config
    comes from the base directory, not from the trained (overridden) model.
    """
    from transformers import GenerationConfig

    from secateurs.train.merge import ADAPTER_SUBDIR, merge_adapter

    staging = Path(staging)
    (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; models hold safetensors only
    tokenizer.save_pretrained(staging)
    source = next((d for d in (staging, Path(base_model_dir))
                   if (d / "generation_config.json").exists()), None)
    generation = GenerationConfig.from_pretrained(source) if source else GenerationConfig()
    if generation_eos:
        generation.eos_token_id = generation_eos
    if generation.pad_token_id is None and tokenizer.pad_token_id is not None:
        generation.pad_token_id = tokenizer.pad_token_id
    generation.save_pretrained(staging)
    if (staging / "adapter_config.json").exists():
        merge_adapter(base_model_dir, staging, out_dir, config_overrides=config_overrides)
        if not (Path(out_dir) / ADAPTER_SUBDIR).exists():
            raise RuntimeError(f"merge_adapter did not keep the adapter in {out_dir}/{ADAPTER_SUBDIR}")
        enable_kv_cache(Path(out_dir) / "config.json")
    else:
        enable_kv_cache(staging / "config.json")
        with atomic_output(out_dir, directory=True) as tmp:
            for item in staging.iterdir():
                shutil.move(str(item), tmp / item.name)
    shutil.rmtree(staging, ignore_errors=True)


def enable_kv_cache(config_json: str | os.PathLike) -> None:
    """Set `use_cache: true` in a published model's config.json.

    Training turns the KV cache off (`secateurs.train.models.load_causal_lm`: packed documents stay apart only
    without it), and the Trainer saves that config; a published model is for generation,
    where running without the cache recomputes the whole prefix at every token.
    """
    path = Path(config_json)
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    config["use_cache"] = True
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
