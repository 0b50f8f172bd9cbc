"""Per-source role names and a record's top-level system prompt (YaYi's multi-turn data)."""

from __future__ import annotations

import json

import pytest

from secateurs.data.chat import ChatSourceError, prepare_chat_data, read_chat_jsonl

YAYI_MULTI_ROUND = [
    {"system": "A chat between a human and an AI assistant named YaYi.",
     "conversations": [{"from": "human", "value": "你好"}, {"from": "yayi", "value": "你好！"},
                       {"from": "human", "value": "长江有多长？"}, {"from": "yayi", "value": "约六千三百公里。"}]},
    {"system": "", "conversations": [{"from": "human", "value": "Hi"}, {"from": "YaYi", "value": "Hello."}]},
    {"system": "Ignored: the record opens with its own.",
     "conversations": [{"from": "system", "value": "Own system."}, {"from": "human", "value": "a"},
                       {"from": "yayi", "value": "b"}]},
]


def write(tmp_path, rows, name="multi.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def test_yayi_records_become_system_user_assistant(tmp_path):
    source = {"path": str(write(tmp_path, YAYI_MULTI_ROUND)), "format": "sharegpt",
              "roles": {"yayi": "assistant"}}
    stats = prepare_chat_data([source], tmp_path / "out.jsonl", tmp_path / "stats.json")
    assert stats["written"] == 3 and stats["dropped"] == {}
    rows = {r["messages"][-1]["content"]: r["messages"] for r in read_chat_jsonl(tmp_path / "out.jsonl")}
    first = rows["约六千三百公里。"]
    assert [m["role"] for m in first] == ["system", "user", "assistant", "user", "assistant"]
    assert first[0]["content"] == YAYI_MULTI_ROUND[0]["system"]
    assert [m["role"] for m in rows["Hello."]] == ["user", "assistant"]  # empty system: no turn
    assert rows["b"][0] == {"role": "system", "content": "Own system."}
    assert sum(m["role"] == "system" for m in rows["b"]) == 1


def test_without_the_mapping_the_yayi_role_is_unknown(tmp_path):
    source = {"path": str(write(tmp_path, YAYI_MULTI_ROUND)), "format": "sharegpt"}
    with pytest.raises(ChatSourceError, match="unknown_role"):
        prepare_chat_data([source], tmp_path / "out.jsonl", tmp_path / "stats.json")


def test_roles_apply_per_source_and_to_messages_records(tmp_path):
    bot = write(tmp_path, [{"messages": [{"role": "customer", "content": "q"},
                                         {"role": "bot", "content": "a"}]}], "bot.json")
    yayi = write(tmp_path, YAYI_MULTI_ROUND[:1])
    sources = [{"path": str(bot), "format": "messages", "roles": {"Customer": "user", "bot": "assistant"}},
               {"path": str(yayi), "format": "sharegpt", "roles": {"yayi": "assistant"}}]
    stats = prepare_chat_data(sources, tmp_path / "out.jsonl", tmp_path / "stats.json")
    assert [s["kept"] for s in stats["sources"]] == [1, 1]


def test_a_role_mapped_to_an_unknown_role_is_refused(tmp_path):
    source = {"path": str(write(tmp_path, YAYI_MULTI_ROUND)), "roles": {"yayi": "model"}}
    with pytest.raises(ChatSourceError, match="yayi"):
        prepare_chat_data([source], tmp_path / "out.jsonl", tmp_path / "stats.json")
