"""A GGUF base model imported into a safetensors directory: the real SmolLM2-135M-Instruct."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.slow


def test_imported_model_matches_the_gguf_logit_for_logit(smollm2_gguf, smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from secateurs.base_model.gguf_import import load_dequantized

    imported = AutoModelForCausalLM.from_pretrained(smollm2_dir, use_safetensors=True).eval()
    original, _ = load_dequantized(smollm2_gguf)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected, actual = original(ids).logits, imported(ids).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert tokenizer.decode(actual[0, -1].argmax()) == " Paris"
    assert imported.config.num_hidden_layers == 30 and imported.config.tie_word_embeddings
    assert imported.lm_head.weight.data_ptr() == imported.model.embed_tokens.weight.data_ptr()


def test_import_records_its_source_and_keeps_chat_files(smollm2_gguf, smollm2_dir):
    from secateurs.base_model.gguf_import import SOURCE_FILE, sha256

    record = json.loads((smollm2_dir / SOURCE_FILE).read_text())
    assert record["sha256"] == sha256(smollm2_gguf)
    assert record["tensor_types"] == {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    assert record["num_parameters"] == 134_515_008
    assert "<|im_start|>" in (smollm2_dir / "chat_template.jinja").read_text()
    assert json.loads((smollm2_dir / "generation_config.json").read_text())["eos_token_id"] == 2
    assert not any(p.suffix == ".bin" for p in smollm2_dir.iterdir())


def test_smollm2_documents_are_separated_by_endoftext(smollm2_dir, tmp_path):
    from transformers import AutoTokenizer

    from secateurs.data.packing import tokenize_and_pack
    from secateurs.documents import framing
    from secateurs.io import write_parquet

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert (tokenizer.bos_token, tokenizer.eos_token) == ("<|im_start|>", "<|im_end|>")
    frame = framing(tokenizer)
    assert (frame.separator_token, frame.start_token) == ("<|endoftext|>", "<|endoftext|>")
    write_parquet([{"text": "One document."}, {"text": "Another one."}], tmp_path / "t.parquet")
    meta = tokenize_and_pack(tmp_path / "t.parquet", smollm2_dir, tmp_path / "packed", seq_len=8,
                             threads=1)
    assert meta["separator_token"] == "<|endoftext|>" and meta["eos_token_id"] == 0
    import pyarrow.parquet as pq

    ids = [i for row in pq.read_table(tmp_path / "packed" / "train.parquet")["input_ids"].to_pylist()
           for i in row]
    real = ids[:meta["num_tokens"] - meta["padding_tokens"]]
    assert real.count(0) == 2 and 1 not in real and 2 not in real  # no chat markers in the text
