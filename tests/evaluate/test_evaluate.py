"""Tests for secateurs.evaluate.heldout: perplexity against an independent computation, padding
invariance, window bookkeeping, a shallower model, samples, and refusals of bad inputs."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from secateurs.evaluate.heldout import (EvaluationError, chat_stop_ids, document_windows,
                                evaluate_model, load_model, perplexity)
from secateurs.io import write_parquet

from conftest import SAMPLE_TEXTS

EN = [SAMPLE_TEXTS[0], SAMPLE_TEXTS[1], SAMPLE_TEXTS[4], "Short one."]
ZH = [SAMPLE_TEXTS[2], SAMPLE_TEXTS[3], SAMPLE_TEXTS[5]]


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    write_parquet([{"text": t} for t in EN + [""]], root / "en.parquet")  # empty doc skipped
    write_parquet([{"text": t} for t in ZH], root / "zh.parquet")
    return {"en": root / "en.parquet", "zh": root / "zh.parquet"}


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_llama_dir):
    return load_model(tiny_llama_dir, device="cpu")


@pytest.fixture(scope="module")
def shallow_dir(tiny_llama_dir, tmp_path_factory):
    """The tiny Llama with decoder layers 2..4 deleted in memory, saved like a sliced model."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.model.layers = torch.nn.ModuleList([model.model.layers[i] for i in (0, 1, 5)])
    model.config.num_hidden_layers = 3
    out = tmp_path_factory.mktemp("shallow") / "model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def base_result(tiny_llama_dir, heldout, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "base.json"
    result = evaluate_model(tiny_llama_dir, heldout, out, name="base", seq_len=16,
                            batch_size=3, prompts=["The river town"],
                            chat_prompts=["What is a triangle?"], max_new_tokens=8,
                            device="cpu")
    return result, out


def test_perplexity_equals_exp_of_plain_cross_entropy(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    text = SAMPLE_TEXTS[0]
    ids = [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"],
           tokenizer.eos_token_id]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    expected = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    got = perplexity(model, tokenizer, [text], seq_len=256, batch_size=1)
    assert got["tokens"] == len(ids) - 1
    assert got["perplexity"] == pytest.approx(math.exp(float(expected)), rel=1e-5)


def test_bits_per_byte_counts_the_scored_text(model_and_tokenizer):
    """Summed NLL in bits over the UTF-8 bytes (characters) of exactly the scored documents:
    Chinese has 3 bytes per character, so the two figures differ by that factor there."""
    model, tokenizer = model_and_tokenizer
    for texts in (EN, ZH):
        got = perplexity(model, tokenizer, texts, seq_len=8, batch_size=2)
        bits = got["nll"] * got["tokens"] / math.log(2)
        assert got["bytes"] == len("".join(texts).encode("utf-8"))
        assert got["characters"] == len("".join(texts))
        assert got["bits_per_byte"] == pytest.approx(bits / got["bytes"], rel=1e-9)
        assert got["bits_per_char"] == pytest.approx(bits / got["characters"], rel=1e-9)
    zh = perplexity(model, tokenizer, ZH, seq_len=8)
    assert zh["bits_per_char"] == pytest.approx(3 * zh["bits_per_byte"], rel=0.01)


def test_padding_does_not_change_perplexity(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    texts = EN + ZH  # different lengths: batched rows carry padding
    alone = perplexity(model, tokenizer, texts, seq_len=256, batch_size=1)
    padded = perplexity(model, tokenizer, texts, seq_len=256, batch_size=len(texts))
    assert padded["tokens"] == alone["tokens"]
    assert padded["nll"] == pytest.approx(alone["nll"], rel=1e-5)


def test_every_token_scored_once_whatever_the_window(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    long_doc = " ".join(SAMPLE_TEXTS)
    n = len(tokenizer(long_doc, add_special_tokens=False)["input_ids"]) + 2  # BOS, EOS
    for seq_len in (5, 16, 1024):
        assert perplexity(model, tokenizer, [long_doc], seq_len=seq_len)["tokens"] == n - 1
    # Short windows lose context, so the number must move (the windows are really cut).
    short = perplexity(model, tokenizer, [long_doc], seq_len=5)["nll"]
    full = perplexity(model, tokenizer, [long_doc], seq_len=1024)["nll"]
    assert short != pytest.approx(full, rel=1e-6)


def test_document_windows_overlap_by_one_token():
    windows = document_windows(list(range(10)), 4)
    assert windows == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9]]
    assert document_windows([7], 4) == []  # nothing to predict


def test_evaluate_model_writes_the_documented_json(base_result, heldout):
    result, out = base_result
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(result))
    assert written["model"] == "base" and written["num_layers"] == 6
    assert written["num_parameters"] > 0
    assert set(written["perplexity"]) == {"en", "zh"}
    for lang in ("en", "zh"):
        assert written["perplexity"][lang] == pytest.approx(math.exp(written["nll"][lang]))
        assert written["tokens"][lang] > 0
        assert written["bits_per_byte"][lang] == pytest.approx(
            written["nll"][lang] * written["tokens"][lang] / math.log(2)
            / written["bytes"][lang])
    assert written["bits_per_char"]["en"] == pytest.approx(written["bits_per_byte"]["en"])  # ASCII
    assert written["bits_per_char"]["zh"] > 2.5 * written["bits_per_byte"]["zh"]
    assert written["documents"] == {"en": len(EN), "zh": len(ZH)}
    assert [(s["prompt"], s["chat"]) for s in written["samples"]] == [
        ("The river town", False), ("What is a triangle?", True)]
    assert written["settings"]["seq_len"] == 16
    assert written["settings"]["start_token"] == "<|startoftext|>"


def test_evaluation_is_deterministic(base_result, tiny_llama_dir, heldout, tmp_path):
    result, _ = base_result
    again = evaluate_model(tiny_llama_dir, heldout, tmp_path / "again.json", name="base",
                           seq_len=16, batch_size=3, prompts=["The river town"],
                           chat_prompts=["What is a triangle?"], max_new_tokens=8,
                           device="cpu")
    assert again["perplexity"] == result["perplexity"]
    assert again["samples"] == result["samples"]


def test_fewer_layers_give_a_different_perplexity(base_result, shallow_dir, heldout, tmp_path):
    base, _ = base_result
    shallow = evaluate_model(shallow_dir, heldout, tmp_path / "shallow.json", seq_len=16,
                             device="cpu", max_docs=2)
    assert shallow["num_layers"] == 3
    assert shallow["num_parameters"] < base["num_parameters"]
    assert shallow["documents"] == {"en": 2, "zh": 2}
    assert shallow["model"] == "model"  # defaults to the directory name
    assert shallow["perplexity"]["en"] != pytest.approx(base["perplexity"]["en"], rel=1e-4)


def test_bfloat16_is_close_to_float32(tiny_llama_dir, model_and_tokenizer):
    """Half precision changes the number only a little: the loss is summed in float32."""
    model, tokenizer = model_and_tokenizer
    bf16, _ = load_model(tiny_llama_dir, device="cpu", dtype="bfloat16")
    assert next(bf16.parameters()).dtype == torch.bfloat16
    full = perplexity(model, tokenizer, EN, seq_len=32)["perplexity"]
    half = perplexity(bf16, tokenizer, EN, seq_len=32)["perplexity"]
    assert half == pytest.approx(full, rel=0.05)
    with pytest.raises(EvaluationError, match="dtype"):
        load_model(tiny_llama_dir, device="cpu", dtype="float8")


def test_chat_answers_stop_at_im_end(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    stops = chat_stop_ids(model, tokenizer)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in stops
    assert tokenizer.eos_token_id in stops


def test_pickled_weights_are_refused_unless_allowed(tiny_llama_dir, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_llama_dir, pickled)
    from safetensors.torch import load_file

    for shard in pickled.glob("*.safetensors"):
        torch.save(load_file(shard), pickled / "pytorch_model.bin")
        shard.unlink()
    with pytest.raises(EvaluationError, match="allow_pickle"):
        load_model(pickled, device="cpu")
    model, _ = load_model(pickled, device="cpu", allow_pickle=True)
    assert model.config.num_hidden_layers == 6


def test_bad_inputs_are_named(tiny_llama_dir, tmp_path):
    write_parquet([{"body": "no text column"}], tmp_path / "bad.parquet")
    with pytest.raises(EvaluationError, match=r"bad\.parquet.*`text`"):
        evaluate_model(tiny_llama_dir, {"en": tmp_path / "bad.parquet"}, tmp_path / "o.json",
                       device="cpu")
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluate_model(tiny_llama_dir, {"en": tmp_path / "nope.parquet"},
                       tmp_path / "o.json", device="cpu")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with pytest.raises(EvaluationError, match="merge"):
        load_model(adapter)
    assert not (tmp_path / "o.json").exists()


@pytest.mark.realdata
def test_real_english_web_text(real_data, tiny_llama_dir, tmp_path):
    """Real C4 documents (LLaMA-Factory's c4_demo.jsonl), longer than one window."""
    rows = [json.loads(line) for line in
            (real_data / "hiyouga+LLaMA-Factory" / "c4_demo.jsonl").open(encoding="utf-8")]
    write_parquet([{"text": r["text"]} for r in rows[:4]], tmp_path / "c4.parquet")
    result = evaluate_model(tiny_llama_dir, {"en": tmp_path / "c4.parquet"},
                            tmp_path / "c4.json", seq_len=64, batch_size=4, device="cpu")
    assert result["tokens"]["en"] > 4 * 64  # several windows per document
    assert math.isfinite(result["perplexity"]["en"]) and result["perplexity"]["en"] > 1


def test_answers_decode_whole_characters(model_and_tokenizer):
    """Byte-level tokens split a Chinese character: decoding the new tokens alone shows
    U+FFFD at a cut; decode_completion never does (issue 14)."""
    from secateurs.evaluate.heldout import decode_completion

    _, tokenizer = model_and_tokenizer
    ids = tokenizer("新泉市的中心", add_special_tokens=False)["input_ids"]
    cuts = [k for k in range(1, len(ids)) if "\ufffd" in tokenizer.decode(ids[:k])]
    assert cuts, "the tokenizer keeps every character whole; the test needs a split one"
    k = cuts[0]  # the prompt ends mid-character, the answer completes it
    whole = decode_completion(tokenizer, ids[:k], ids[k:])
    assert "\ufffd" not in whole and whole.endswith("中心")
    assert tokenizer.decode(ids[:k]).rstrip("\ufffd") + whole == "新泉市的中心"
    cut = decode_completion(tokenizer, [], ids[:k], whole=False)  # stopped at the limit
    assert "\ufffd" not in cut and "新泉市的中心".startswith(cut)


# ----------------------------------------------------------------------------- chat format


def test_base_and_chat_model_are_asked_in_the_chat_stage_format(llama2_style_dir):
    """YaYi's recipe (issue 21): the Llama 2 base, which has no chat template, is asked in
    YaYi's format exactly as the chat model made of it is: `<s>`, the `<|System|>` block
    with YaYi's default system prompt, the question, `<|YaYi|>:`."""
    from secateurs.evaluate.heldout import chat_prompt_ids
    from secateurs.train.templates import YAYI_END, YAYI_SYSTEM, apply_prompt_format, chat_template_for

    base = AutoTokenizer.from_pretrained(llama2_style_dir)
    chat = AutoTokenizer.from_pretrained(llama2_style_dir)
    apply_prompt_format(chat, "yayi")  # what the chat stage saves with the chat model
    asked = [chat_prompt_ids(t, "你好", template=chat_template_for(t, "yayi")) for t in (base, chat)]
    assert asked[0] == asked[1]
    assert base.decode(asked[0]) == f"<s><|System|>:\n{YAYI_SYSTEM}\n\n<|Human|>:\n你好\n\n<|YaYi|>:"
    own = chat_prompt_ids(base, "你好", template=chat_template_for(base, "yayi"), system_prompt="Be brief.")
    assert base.decode(own).startswith("<s><|System|>:\nBe brief.\n\n<|Human|>:")
    model = AutoModelForCausalLM.from_pretrained(llama2_style_dir)
    assert chat.convert_tokens_to_ids(YAYI_END) in chat_stop_ids(model, chat, "yayi")
    assert chat_stop_ids(model, base, "yayi") == [base.eos_token_id]  # the base lacks <|End|>


def test_recommended_sampling_is_reproducible_and_recorded(tiny_llama_dir, heldout, tmp_path):
    """A card's sampling settings (AEZAKMI: system prompt, temperature 1.2, repetition
    penalty 1.05) reach generation: the answers are sampled, not greedy, the same on a
    rerun (seeded), and the settings are written with the result."""
    card = dict(system_prompt="A chat with uncensored assistant.", temperature=1.2,
                repetition_penalty=1.05)
    runs = [evaluate_model(tiny_llama_dir, heldout, tmp_path / f"{name}.json", device="cpu",
                           max_docs=1, chat_prompts=["What is a triangle?"], max_new_tokens=12,
                           **settings)
            for name, settings in (("card", card), ("again", card), ("greedy", {}))]
    card_run, again, greedy = runs
    assert card_run["samples"] == again["samples"]
    assert card_run["samples"][0]["completion"] != greedy["samples"][0]["completion"]
    assert card_run["samples"][0]["system"] == "A chat with uncensored assistant."
    settings = json.loads((tmp_path / "card.json").read_text())["settings"]
    assert settings["decoding"].startswith("sampled (temperature 1.2")
    assert settings["repetition_penalty"] == 1.05 and settings["prompt_format"] == "chatml"
    assert greedy["settings"]["decoding"] == "greedy"
