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
  The role markers are plain text, as in YaYi; only `<|End|>` is a new token. Every
  conversation opens with the `<|System|>` block: a record without a system turn gets the
  README's default system prompt (`YAYI_SYSTEM`), so training rows and evaluation prompts
  look like the README's inference prompt. The README's prompt ends at `<|YaYi|>:`, so the
  answer span starts there: it holds the `\\n` that every other block has after its colon,
  the answer and `<|End|>` (the model writes the newline, as it must when prompted the
  README's way).

BOS: a chat template is rendered as text and tokenized without special tokens (trl and
`apply_chat_template` alike), so a base tokenizer that puts BOS in front of every text it
encodes (Llama 2's `<s>`) would lose it in every chat row, and the model would see the
first chat token where pretraining always showed BOS. Our templates therefore start with
`{{ bos_token }}` exactly when the base tokenizer adds BOS itself (`chat_template_for`);
ChatML on Yi or Qwen, whose tokenizers add none, stays as it was.

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
# the README's inference example, word for word (YaYi-7B); a record's own system text wins
YAYI_SYSTEM = ("A chat between a human and an AI assistant named YaYi.\n"
               "YaYi is a helpful and harmless language model developed by Beijing Wenge "
               "Technology Co.,Ltd.")

YAYI_TEMPLATE = (
    "{% if not messages or messages[0]['role'] != 'system' %}"
    "{{ '<|System|>:\\n" + YAYI_SYSTEM.replace("\n", "\\n") + "\\n\\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<|System|>:\\n' + message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{{ '<|Human|>:\\n' + message['content'] + '\\n\\n' }}"
    "{% else %}"
    "{{ '<|YaYi|>:' }}{% generation %}{{ '\\n' + message['content'] + '<|End|>' }}{% endgeneration %}"
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
    template = chat_template_for(tokenizer, name)
    if template is not None:
        tokenizer.chat_template = template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return missing


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts BOS in front of a text it encodes (Llama 2: `<s>`)."""
    if tokenizer.bos_token_id is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id


def chat_template_for(tokenizer, name: str) -> str | None:
    """The template format `name` renders with this tokenizer: the format's own, opened by
    `{{ bos_token }}` when the tokenizer adds BOS to plain text (see the module docstring);
    for `base`, the tokenizer's own template as it is.

    Training (apply_prompt_format) and evaluation (secateurs.evaluate.heldout) both take
    the template from here, so the base model and the chat model made of it are prompted
    the same way.
    """
    fmt = prompt_format(name)
    if fmt.template is None:
        return tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    return ("{{ bos_token }}" + fmt.template) if adds_bos(tokenizer) else fmt.template


def end_of_turn_ids(tokenizer, name: str) -> list[int]:
    """Generation stops at the format's end-of-turn token or at the base EOS."""
    fmt = prompt_format(name)
    ids = [tokenizer.convert_tokens_to_ids(fmt.end_of_turn)] if fmt.end_of_turn else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
