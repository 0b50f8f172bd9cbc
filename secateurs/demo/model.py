"""Create the demo's small Llama-architecture model with random weights."""

from __future__ import annotations

import os

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from secateurs.io import atomic_output


def init_llama(tokenizer_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
               hidden_size: int = 128, num_hidden_layers: int = 8, num_attention_heads: int = 4,
               num_key_value_heads: int | None = None, intermediate_size: int | None = None,
               max_position_embeddings: int = 2048, tie_word_embeddings: bool = False,
               seed: int = 0) -> LlamaForCausalLM:
    """Write a randomly initialised Llama (Yi's architecture) sized for the tokenizer.

    Untied embeddings by default, like Yi; tests also build tied ones to check that slicing
    keeps them tied.
    """
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size,
        intermediate_size=intermediate_size or int(hidden_size * 8 / 3 // 8 * 8),
        num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads or num_attention_heads,
        max_position_embeddings=max_position_embeddings, tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with atomic_output(out_dir, directory=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return model


def pretrain_demo_model(tokenizer_dir: str | os.PathLike, packed_dir: str | os.PathLike,
                        out_dir: str | os.PathLike, *, log_csv: str | os.PathLike,
                        architecture: dict, training: dict) -> dict:
    """Initialise the demo Llama and pretrain it with the healing code on the packed mix.

    Pretraining is continued pretraining from random weights, so it reuses `heal` (one
    training loop to trust, resume included). The random initial model is written under
    results/demo/ because heal reads a model directory; its seed is fixed, so a resumed
    run starts from the same weights.
    """
    from pathlib import Path

    from secateurs.train.heal import heal, heal_fingerprint
    from secateurs.train.checkpoints import checkpoint_dir_for

    work = Path(out_dir).parent.parent / "demo"
    init_dir = work / "init"
    init_llama(tokenizer_dir, init_dir, **architecture)
    checkpoint_dir = checkpoint_dir_for(work.parent / "checkpoints" / "demo",
                                        heal_fingerprint(init_dir, packed_dir, training))
    return heal(init_dir, packed_dir, out_dir, checkpoint_dir=checkpoint_dir, log_csv=log_csv,
                config=training)
