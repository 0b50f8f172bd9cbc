"""How documents are framed for a tokenizer: the token between documents, and the one before.

Pretraining corpora are documents joined by an end-of-text token (GPT-2's `<|endoftext|>`,
Llama 3's `<|end_of_text|>`, `</s>`); packing, healing and evaluation must frame text the
same way, or a pretrained model is scored on a framing it never saw. An instruct
tokenizer often names its *chat* markers as bos/eos instead: SmolLM2-135M-Instruct has
bos `<|im_start|>` and eos `<|im_end|>`, while its pretraining separated documents with
`<|endoftext|>` (id 0). Putting `<|im_end|>` between documents would teach (and score) a
turn end where there is none, so a chat marker is never used as a document separator;
the tokenizer's real end-of-text token is looked up instead.
"""

from __future__ import annotations

from dataclasses import dataclass

# Tokens that close or open a chat turn, never a document.
CHAT_MARKERS = frozenset({"<|im_start|>", "<|im_end|>", "<|eot_id|>", "<|start_header_id|>",
                          "<|end_header_id|>", "<start_of_turn>", "<end_of_turn>", "<|end|>",
                          "<|user|>", "<|assistant|>", "<|system|>"})
# End-of-text tokens by family, tried in order when eos is a chat marker.
END_OF_TEXT = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|end▁of▁sentence|>")


class FramingError(ValueError):
    """A tokenizer has no token that can separate documents."""


@dataclass(frozen=True)
class Framing:
    """`separator` ends every document (and starts the next); `start` is put in front of a
    document scored on its own (evaluation, plain prompts)."""
    separator: int
    separator_token: str
    start: int
    start_token: str


def _real_id(tokenizer, token: str | None) -> int | None:
    if not token:
        return None
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return int(token_id)


def document_separator(tokenizer) -> tuple[int, str]:
    """(id, token) that separates documents: eos unless it is a chat marker, then the
    tokenizer's end-of-text token."""
    eos = tokenizer.eos_token
    if eos and eos not in CHAT_MARKERS and _real_id(tokenizer, eos) is not None:
        return _real_id(tokenizer, eos), eos
    for token in END_OF_TEXT:
        token_id = _real_id(tokenizer, token)
        if token_id is not None and token not in CHAT_MARKERS:
            return token_id, token
    raise FramingError(
        f"tokenizer {tokenizer.name_or_path}: its eos_token {eos!r} "
        f"{'is a chat marker' if eos else 'is unset'} and it has none of {list(END_OF_TEXT)}, "
        "so documents cannot be separated. Fix: set eos_token in its tokenizer_config.json "
        "to the token its pretraining put between documents")


def framing(tokenizer) -> Framing:
    """The separator, and the start token: bos unless absent or a chat marker, else the
    separator (a document then starts as it did after the previous one in training)."""
    separator, separator_token = document_separator(tokenizer)
    bos = tokenizer.bos_token
    bos_id = _real_id(tokenizer, bos) if bos not in CHAT_MARKERS else None
    if bos_id is None:
        return Framing(separator, separator_token, separator, separator_token)
    return Framing(separator, separator_token, bos_id, bos)
