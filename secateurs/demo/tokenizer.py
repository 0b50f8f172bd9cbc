"""Train the demo's byte-level BPE tokenizer, with the ChatML tokens built in."""

from __future__ import annotations

import os
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from secateurs.chatml import CHATML_TEMPLATE, IM_END, IM_START
from secateurs.io import atomic_output

BOS, EOS, PAD = "<|startoftext|>", "<|endoftext|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, IM_START, IM_END]


def train_tokenizer(texts: Iterable[str], out_dir: str | os.PathLike, *, vocab_size: int = 4096,
                    model_max_length: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` and save it as a Hugging Face tokenizer directory.

    Byte-level so that any character (CJK included) is representable even when it did not
    make the vocabulary; BOS is not added automatically because packed pretraining data is
    separated by EOS alone.
    """
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        model_max_length=model_max_length)
    tokenizer.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
    tokenizer.chat_template = CHATML_TEMPLATE
    with atomic_output(out_dir, directory=True) as tmp:
        tokenizer.save_pretrained(tmp)
    return tokenizer


def train_tokenizer_on_parquet(parquet_files: list, out_dir: str | os.PathLike, *,
                               vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    """Train the demo tokenizer on the `text` column of the data stages' Parquet files."""
    import pyarrow.parquet as pq

    def texts():
        for path in parquet_files:
            yield from pq.read_table(path, columns=["text"]).column("text").to_pylist()

    return train_tokenizer(texts(), out_dir, vocab_size=vocab_size)
