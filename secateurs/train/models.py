"""The model a stage trains: loaded in the dtype training wants, with its LoRA adapter.

- `check_method`: full, lora or qlora (the schema's choices), refused before anything
  loads when this machine cannot run it;
- `load_causal_lm`: safetensors only (DESIGN.md), fp32 master weights for full training,
  a 4-bit NF4 base for QLoRA, the KV cache off (packed documents stay apart only without it);
- `wrap_lora` / `lora_config`: the peft adapter of `lora: {r, alpha, dropout, target_modules}`;
- `config_overrides` / `apply_tokenizer_overrides`: model and tokenizer fields a stage
  sets and publishes with the trained model.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

import torch

from secateurs.train.arguments import TrainingConfigError, schema_choices

log = logging.getLogger(__name__)

METHODS = schema_choices("method")


def check_method(config: dict) -> str:
    method = config["method"]
    if method not in METHODS:
        raise TrainingConfigError(f"config key method={method!r}: use one of {sorted(METHODS)}")
    if method == "qlora":
        if not torch.cuda.is_available():
            raise TrainingConfigError("method=qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); "
                                      "use method: lora or full on this machine")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise TrainingConfigError("method=qlora needs bitsandbytes: pip install bitsandbytes, "
                                      "or use method: lora")
    return method


def attention_implementation(setting: str = "auto") -> str:
    """flash_attention_2 where installed on CUDA, else sdpa.

    Both keep packed documents apart when the batch carries position_ids and no
    attention_mask (transformers' `find_packed_sequence_indices`), so packing never lets
    one document attend to another with either.
    """
    if setting != "auto":
        return setting
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def config_overrides(config: dict) -> dict:
    """Model config fields a stage sets (AEZAKMI lowered Yi-200K's max_position_embeddings to
    4096 to train at all); written into the trained model's config.json."""
    value = config["max_position_embeddings"]
    return {} if value is None else {"max_position_embeddings": int(value)}


def apply_tokenizer_overrides(tokenizer, config: dict) -> None:
    """`model_max_length` saved with the trained model's tokenizer (AEZAKMI: 4096)."""
    if config["model_max_length"] is not None:
        tokenizer.model_max_length = int(config["model_max_length"])


def load_causal_lm(model_dir: str | os.PathLike, config: dict, *, bf16: bool):
    """Load the model to train in the dtype training wants.

    Full fine-tuning keeps fp32 master weights (the Trainer's bf16 autocast does the rest);
    QLoRA loads the base in 4-bit NF4 with bf16 compute (Dettmers et al. 2023).
    safetensors only: pickled weights are refused (DESIGN.md).
    """
    from transformers import AutoModelForCausalLM

    method = check_method(config)
    kwargs: dict[str, Any] = {"use_safetensors": True,
                              "attn_implementation": attention_implementation(
                                  config["attn_implementation"])}
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["dtype"] = torch.bfloat16
    else:
        kwargs["dtype"] = torch.bfloat16 if (bf16 and method == "lora") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs, **config_overrides(config))
    model.config.use_cache = False
    return model


def lora_config(config: dict):
    """peft LoraConfig from `lora: {r, alpha, dropout, target_modules}`; defaults follow the
    Pruned Yi recipe (r=16 on all seven Llama projections)."""
    from peft import LoraConfig

    lora = config["lora"]
    targets = lora["target_modules"]
    return LoraConfig(r=int(lora["r"]), lora_alpha=int(lora["alpha"]),
                      lora_dropout=float(lora["dropout"]),
                      target_modules="all-linear" if targets == "all-linear" else list(targets),
                      modules_to_save=lora.get("modules_to_save"), task_type="CAUSAL_LM")


def wrap_lora(model, config: dict):
    """Attach a LoRA adapter (and prepare a k-bit base for QLoRA)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if config["method"] == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(config["gradient_checkpointing"]))
    elif config["gradient_checkpointing"]:
        model.enable_input_require_grads()
    model = get_peft_model(model, lora_config(config))
    trainable, total = model.get_nb_trainable_parameters()
    log.info("LoRA: %d of %d parameters trainable (%.2f%%)", trainable, total, 100 * trainable / total)
    return model
