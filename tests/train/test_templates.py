"""Prompt formats: the loss stays on the answers in ChatML, the base's own template and
YaYi's format, checked by decoding the labels of the prepared SFT rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from secateurs.chatml import CHATML_TEMPLATE, IM_END
from secateurs.train.sft import build_sft_trainer
from secateurs.train.templates import (YAYI_END, YAYI_SYSTEM, YAYI_TEMPLATE, PromptFormatError,
                                       apply_prompt_format, chat_template_for, end_of_turn_ids)
from train_helpers import labelled_spans

CONVERSATION = [{"role": "system", "content": "You are YaYi."},
                {"role": "user", "content": "Name a river."},
                {"role": "assistant", "content": "The Yangtze."},
                {"role": "user", "content": "And a city?"},
                {"role": "assistant", "content": "Berlin."}]



def sft_cfg(**over) -> dict:
    cfg = {"method": "full", "learning_rate": 1e-3, "max_steps": 2, "batch_size": 1,
           "max_length": 256, "lr_scheduler": "constant", "warmup_ratio": 0.0, "save_steps": 10,
           "logging_steps": 1, "bf16": False, "disable_tqdm": True}
    return {**cfg, **over}


@pytest.fixture(scope="module")
def chat_jsonl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("chat") / "chat.jsonl"
    path.write_text(json.dumps({"messages": CONVERSATION}) + "\n")
    return path


def prepared_row(model_dir, chat_jsonl, tmp_path, prompt_format):
    trainer, tokenizer = build_sft_trainer(model_dir, chat_jsonl, checkpoint_dir=tmp_path,
                                           config=sft_cfg(prompt_format=prompt_format))
    return trainer, tokenizer, trainer.train_dataset[0]


def test_chatml_labels_are_the_answers(tiny_llama_dir, chat_jsonl, tmp_path):
    _, tokenizer, row = prepared_row(tiny_llama_dir, chat_jsonl, tmp_path, "chatml")
    assert labelled_spans(tokenizer, row["input_ids"], row["labels"]) == [f"The Yangtze.{IM_END}", f"Berlin.{IM_END}"]


def test_yayi_format_labels_stop_token_and_text(tiny_llama_dir, chat_jsonl, tmp_path):
    trainer, tokenizer, row = prepared_row(tiny_llama_dir, chat_jsonl, tmp_path, "yayi")
    assert labelled_spans(tokenizer, row["input_ids"], row["labels"]) == [f"\nThe Yangtze.{YAYI_END}", f"\nBerlin.{YAYI_END}"]
    text = tokenizer.decode(row["input_ids"])
    assert text.startswith("<|System|>:\nYou are YaYi.\n\n<|Human|>:\nName a river.\n\n"
                           "<|YaYi|>:\nThe Yangtze.<|End|>\n\n<|Human|>:\nAnd a city?")
    end = tokenizer.convert_tokens_to_ids(YAYI_END)
    assert row["input_ids"].count(end) == 2  # one token, not pieces of text
    assert trainer.model.get_input_embeddings().weight.shape[0] >= len(tokenizer)
    assert trainer.model.generation_config.eos_token_id[0] == end


def test_base_template_is_used_when_it_marks_generations(tmp_path, tiny_llama_dir, chat_jsonl):
    model_dir = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_llama_dir, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # a template of the base's own, marked: answers framed by "A:" and ended by EOS
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ 'A: ' }}{% generation %}"
        "{{ m['content'] + eos_token }}{% endgeneration %}{% else %}{{ m['role'] + ': ' + "
        "m['content'] + '\\n' }}{% endif %}{% endfor %}")
    tokenizer.save_pretrained(model_dir)
    _, tokenizer, row = prepared_row(model_dir, chat_jsonl, tmp_path / "ck", "base")
    eos = tokenizer.eos_token
    assert labelled_spans(tokenizer, row["input_ids"], row["labels"]) == [f"The Yangtze.{eos}", f"Berlin.{eos}"]
    assert tokenizer.decode(row["input_ids"]).startswith("system: You are YaYi.\nuser: Name a river.\nA: ")


def test_base_template_without_markers_is_refused(tiny_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    tokenizer.chat_template = CHATML_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    with pytest.raises(PromptFormatError, match="generation"):
        apply_prompt_format(tokenizer, "base")


def test_end_of_turn_ids_per_format(tiny_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    assert apply_prompt_format(tokenizer, "yayi") == [YAYI_END]
    assert end_of_turn_ids(tokenizer, "yayi") == [tokenizer.convert_tokens_to_ids(YAYI_END),
                                                 tokenizer.eos_token_id]
    assert end_of_turn_ids(tokenizer, "base") == [tokenizer.eos_token_id]


def test_yayi_rows_on_a_llama2_tokenizer_open_with_bos_and_the_system_block(llama2_style_dir, tmp_path):
    """YaYi-7B-Llama2's case (issue 21): every row starts with Llama 2's `<s>` exactly once
    (the chat template path tokenizes without special tokens), then the `<|System|>` block,
    the README's default system prompt when the record has none; answers follow
    `<|YaYi|>:` on their own line and end with `<|End|>`, the only labelled text."""
    chat = tmp_path / "chat.jsonl"
    rows = [{"messages": CONVERSATION[1:3]}, {"messages": CONVERSATION}]
    chat.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trainer, tokenizer = build_sft_trainer(llama2_style_dir, chat, checkpoint_dir=tmp_path / "ck",
                                           config=sft_cfg(prompt_format="yayi"))
    bos = tokenizer.bos_token_id
    texts = []
    for row in trainer.train_dataset:
        ids = row["input_ids"]
        assert ids[0] == bos and ids.count(bos) == 1
        texts.append(tokenizer.decode(ids))
        spans = labelled_spans(tokenizer, ids, row["labels"])
        assert spans and all(s.startswith("\n") and s.endswith(YAYI_END) for s in spans)
    own, default = sorted(texts, key=lambda text: "And a city?" not in text)
    assert default == (f"<s><|System|>:\n{YAYI_SYSTEM}\n\n<|Human|>:\nName a river.\n\n"
                       f"<|YaYi|>:\nThe Yangtze.{YAYI_END}\n\n")
    assert own.startswith("<s><|System|>:\nYou are YaYi.\n\n<|Human|>:") and YAYI_SYSTEM not in own


def test_chatml_gets_bos_only_from_a_tokenizer_that_adds_it(llama2_style_dir, tiny_llama_dir):
    """BOS comes with the base tokenizer's habit: Llama 2's adds `<s>`, the demo's (like
    Yi's) adds none, and its ChatML rows stay exactly as before."""
    with_bos = AutoTokenizer.from_pretrained(llama2_style_dir)
    without = AutoTokenizer.from_pretrained(tiny_llama_dir)
    assert chat_template_for(with_bos, "chatml") == "{{ bos_token }}" + CHATML_TEMPLATE
    assert chat_template_for(without, "chatml") == CHATML_TEMPLATE
    assert chat_template_for(without, "yayi") == YAYI_TEMPLATE
