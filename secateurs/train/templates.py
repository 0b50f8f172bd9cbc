"""Prompt formats for chat fine-tuning: which chat template, added tokens and stop token.

`chat.prompt_format` picks one:

- `chatml` (default): `<|im_start|>{role}\\n{content}<|im_end|>\\n` (Yi, Qwen, AEZAKMI);
  the tokens are added when the base tokenizer lacks them (secateurs.chatml).
- `base`: the base model's own chat template, used as it is. trl 1.16 computes the
  assistant-only loss mask from `{% generation %}` markers and refuses a template without
  them, so a template without markers is refused here, before any training step, with the fix.
- `yayi`: YaYi's format (wenge-research/YaYi, README "Inference"): `<|System|>:\\n...`,
  `<|Human|>:\\n...` and `<|YaYi|>:` blocks separated by blank lines, each answer ended by
  `<|End|>`, a token YaYi added to the vocabulary and set as `eos_token_id` for generation.
  The role markers are plain text, as in YaYi; only `<|End|>` is a new token.

Every format's answer span (the `{% generation %}` block) holds the answer and its
end-of-turn token, so the model learns to stop; that token becomes the chat model's stop
token (generation_config.eos_token_id), next to the base EOS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from secateurs.chatml import CHATML_TEMPLATE, IM_END, IM_START

log = logging.getLogger(__name__)

YAYI_END = "<|End|>"

YAYI_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<|System|>:\\n' + message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{{ '<|Human|>:\\n' + message['content'] + '\\n\\n' }}"
    "{% else %}"
    "{{ '<|YaYi|>:' }}{% generation %}{{ message['content'] + '<|End|>' }}{% endgeneration %}"
    "{{ '\\n\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|YaYi|>:' }}{% endif %}"
)


class PromptFormatError(ValueError):
    """A prompt format that cannot be used with this tokenizer."""


@dataclass(frozen=True)
class PromptFormat:
    """template None = the tokenizer's own; end_of_turn None = the tokenizer's EOS."""

    name: str
    template: str | None
    added_tokens: tuple[str, ...]
    end_of_turn: str | None


FORMATS = {
    "chatml": PromptFormat("chatml", CHATML_TEMPLATE, (IM_START, IM_END), IM_END),
    "base": PromptFormat("base", None, (), None),
    "yayi": PromptFormat("yayi", YAYI_TEMPLATE, (YAYI_END,), YAYI_END),
}


def prompt_format(name: str) -> PromptFormat:
    if name not in FORMATS:
        raise PromptFormatError(f"config key chat.prompt_format={name!r}: use one of {sorted(FORMATS)}")
    return FORMATS[name]


def has_generation_markers(template) -> bool:
    return isinstance(template, str) and "generation %}" in template and "endgeneration" in template


def apply_prompt_format(tokenizer, name: str, model=None) -> list[str]:
    """Give `tokenizer` the format's template and tokens in place; return the tokens added.

    Added tokens grow the embedding matrix of `model` (mean-initialised rows, transformers'
    default), which a LoRA run must then train and save (`modules_to_save`).
    """
    fmt = prompt_format(name)
    if fmt.template is None and not has_generation_markers(tokenizer.chat_template):
        raise PromptFormatError(
            f"chat.prompt_format: base, but the tokenizer of {tokenizer.name_or_path} has "
            f"{'no chat template' if not tokenizer.chat_template else 'a chat template without {% generation %} markers'}"
            ", so the loss cannot be kept on the answers (trl's assistant_only_loss needs them). "
            "Fix: use prompt_format: chatml (or yayi), or a base model whose template marks answers.")
    missing = [t for t in fmt.added_tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
        log.info("added %s to the tokenizer (%d tokens now)", missing, len(tokenizer))
    if fmt.template is not None:
        tokenizer.chat_template = fmt.template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return missing


def end_of_turn_ids(tokenizer, name: str) -> list[int]:
    """Generation stops at the format's end-of-turn token or at the base EOS."""
    fmt = prompt_format(name)
    ids = [tokenizer.convert_tokens_to_ids(fmt.end_of_turn)] if fmt.end_of_turn else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
