"""Document framing (secateurs.documents): the end-of-text token, never a chat marker."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from secateurs.documents import FramingError, document_separator, framing


def tokenizer_with(vocab: list[str], **special) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token=vocab[0]))
    return PreTrainedTokenizerFast(tokenizer_object=backend, **special)


def test_demo_tokenizer_keeps_its_eos_and_bos(tiny_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    frame = framing(tokenizer)
    assert frame.separator == tokenizer.eos_token_id and frame.separator_token == "<|endoftext|>"
    assert frame.start == tokenizer.bos_token_id


def test_chat_marker_eos_is_replaced_by_endoftext():
    tokenizer = tokenizer_with(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "a"],
                               unk_token="<|endoftext|>", bos_token="<|im_start|>",
                               eos_token="<|im_end|>")
    assert document_separator(tokenizer) == (0, "<|endoftext|>")
    assert framing(tokenizer).start == 0  # a chat-marker bos is not a document start either


def test_no_separator_is_a_clear_error():
    tokenizer = tokenizer_with(["<unk>", "<|im_end|>", "a"], unk_token="<unk>", eos_token="<|im_end|>")
    with pytest.raises(FramingError, match="eos_token"):
        document_separator(tokenizer)
