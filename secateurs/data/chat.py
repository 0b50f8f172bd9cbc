"""Chat data: read ShareGPT/SlimOrca, Alpaca and messages-style conversations into one format.

Output is JSONL, one `{"messages": [{"role": "system"|"user"|"assistant", "content": str}]}`
per line, the conversational format trl's SFTTrainer takes. Every conversation is checked
before it is kept: optional system turn first, then user/assistant alternating, starting
with a user turn and ending with an assistant turn, no empty turns. Anything else is dropped
and counted per reason in the stats JSON, never repaired silently; an answer is never cut:
with `tokenizer_dir` + `max_length` a conversation longer than max_length tokens (after the
chat template) is dropped and counted as `too_long`.

Formats:
- sharegpt: `conversations: [{from, value}]`, from in system/human/gpt plus the aliases seen
  in ShareGPT dumps (user, assistant, chatgpt, bing, bard). SlimOrca is this format. A DPO
  record (LLaMA-Factory `dpo_*_demo.json`) whose `chosen` is a single {from: gpt} turn has
  it appended as the answer, so preference sets give SFT data on their chosen replies.
- alpaca: instruction/input/output (+ optional system, and LLaMA-Factory's `history`
  [[user, assistant], ...] of earlier turns); the input joins the instruction after a blank
  line, as Stanford Alpaca's prompt does. YaYi's data is this format.
- messages: `messages: [{role, content}]` (OpenAI/trl style), roles aliased as above.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

from secateurs.io import atomic_output, write_json

log = logging.getLogger(__name__)

FORMATS = {"sharegpt", "alpaca", "messages", "auto"}
ROLE_ALIASES = {
    "system": "system",
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant",
    "bard": "assistant", "model": "assistant",
}
LOCAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


class Dropped(Exception):
    """A conversation that cannot be used; `reason` is the stats key it is counted under."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ChatSourceError(ValueError):
    """A source entry or file that cannot be read at all."""


# ----------------------------------------------------------------------------- reading


def read_records(path: str, *, split: str = "train") -> Iterator[dict]:
    """Rows of a local .jsonl/.jsonl.gz/.json/.parquet file, or of a hub dataset by name.

    A file that cannot be decoded (corrupt gzip, not UTF-8, truncated) raises
    ChatSourceError naming it: the codecs' own messages do not say which file they read.
    """
    try:
        yield from _records(path, split)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ChatSourceError(f"chat source {path}: cannot be read ({type(err).__name__}: {err}). "
                              "Fix: check that the file is complete and, if it ends in .gz, "
                              "gzip-compressed UTF-8.") from err


def _records(path: str, split: str) -> Iterator[dict]:
    local = Path(path)
    if local.exists():
        name = local.name
        if name.endswith((".jsonl", ".jsonl.gz")):
            yield from _read_jsonl(local)
        elif name.endswith((".json", ".json.gz")):
            yield from _read_json_array(local)
        elif name.endswith(".parquet"):
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(local).iter_batches(batch_size=1024):
                yield from batch.to_pylist()
        else:
            raise ChatSourceError(f"chat source {path}: unknown file type; use one of {LOCAL_SUFFIXES}")
        return
    if local.suffix or path.count("/") != 1:
        raise ChatSourceError(f"chat source {path}: no such file, and not a hub dataset name "
                              "(owner/name like Open-Orca/SlimOrca)")
    from datasets import load_dataset  # hub dataset, e.g. Open-Orca/SlimOrca

    log.info("loading hub dataset %s (split %s)", path, split)
    yield from load_dataset(path, split=split)


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else path.open(encoding="utf-8")


def _read_jsonl(path: Path) -> Iterator[dict]:
    with _open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield {"__malformed__": f"{path}:{number}"}


def _read_json_array(path: Path) -> Iterator[dict]:
    with _open_text(path) as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as err:
            raise ChatSourceError(f"chat source {path}: not valid JSON ({err}); a .json source must "
                                  "be one array of records (use .jsonl for one record per line)") from err
    if not isinstance(data, list):
        raise ChatSourceError(f"chat source {path}: the JSON top level is {type(data).__name__}, "
                              "expected an array of records")
    yield from data


# ----------------------------------------------------------------------------- converting


def detect_format(record: Any) -> str:
    if isinstance(record, dict):
        if "conversations" in record:
            return "sharegpt"
        if "messages" in record:
            return "messages"
        if "instruction" in record and "output" in record:
            return "alpaca"
    raise Dropped("unknown_format")


def to_messages(record: Any, fmt: str = "auto") -> list[dict]:
    """Convert one record to validated messages, or raise Dropped(reason)."""
    if not isinstance(record, dict) or "__malformed__" in record:
        raise Dropped("malformed")
    fmt = detect_format(record) if fmt == "auto" else fmt
    convert = {"sharegpt": sharegpt_messages, "alpaca": alpaca_messages,
               "messages": messages_messages}[fmt]
    return validate_messages(convert(record))


def sharegpt_messages(record: dict) -> list[dict]:
    turns = record.get("conversations")
    if not isinstance(turns, list):
        raise Dropped("malformed")
    chosen = record.get("chosen")
    if isinstance(chosen, dict) and "from" in chosen:
        turns = [*turns, chosen]
    return [_turn(t, "from", "value") for t in turns]


def messages_messages(record: dict) -> list[dict]:
    turns = record.get("messages")
    if not isinstance(turns, list):
        raise Dropped("malformed")
    return [_turn(t, "role", "content") for t in turns]


def alpaca_messages(record: dict) -> list[dict]:
    instruction, extra, output = record.get("instruction"), record.get("input") or "", record.get("output")
    if not all(isinstance(x, str) for x in (instruction, extra, output)):
        raise Dropped("malformed")
    messages = []
    if isinstance(record.get("system"), str) and record["system"].strip():
        messages.append({"role": "system", "content": record["system"]})
    for pair in record.get("history") or []:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise Dropped("malformed")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    prompt = f"{instruction.strip()}\n\n{extra.strip()}" if extra.strip() else instruction
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    return messages


def _turn(turn: Any, role_key: str, content_key: str) -> dict:
    if not isinstance(turn, dict) or role_key not in turn:
        raise Dropped("malformed")
    role = ROLE_ALIASES.get(str(turn[role_key]).strip().lower())
    if role is None:
        raise Dropped("unknown_role")
    return {"role": role, "content": turn.get(content_key)}


def validate_messages(messages: list[dict]) -> list[dict]:
    """Check the order and contents; strip whitespace around each turn (never inside it)."""
    if not messages:
        raise Dropped("empty_conversation")
    for message in messages:
        if not isinstance(message["content"], str):
            raise Dropped("malformed")
        message["content"] = message["content"].strip()
        if not message["content"]:
            raise Dropped("empty_turn")
    body = messages[1:] if messages[0]["role"] == "system" else messages
    if any(m["role"] == "system" for m in body):
        raise Dropped("misplaced_system")
    if not body:
        raise Dropped("empty_conversation")
    if body[0]["role"] != "user":
        raise Dropped("first_turn_not_user")
    for previous, current in zip(body, body[1:]):
        if previous["role"] == current["role"]:
            raise Dropped("consecutive_same_role")
    if body[-1]["role"] != "assistant":
        raise Dropped("last_turn_not_assistant")
    return messages


# ----------------------------------------------------------------------------- per source
#
# YaYi's multi-turn records are `{"system": "...", "conversations": [{"from": "human"},
# {"from": "yayi"}]}`: the answering role carries the model's name and the system prompt
# sits beside the turns. A source's `roles:` maps its names onto system/user/assistant, and
# a top-level `system` becomes the first turn. Both rewrite the record before conversion,
# so the format converters above stay as they are.

CANONICAL_ROLES = {"system", "user", "assistant"}
TURN_KEYS = {"conversations": "from", "messages": "role"}


def source_roles(source: dict) -> dict[str, str]:
    """A source's `roles:` mapping, lower-cased, checked: {name in the data: canonical role}."""
    roles = source.get("roles") or {}
    bad = {k: v for k, v in roles.items() if v not in CANONICAL_ROLES}
    if not isinstance(roles, dict) or bad:
        raise ChatSourceError(f"chat source {source['path']}: roles {bad or roles!r} map to unknown "
                              f"roles. Fix: map each name to one of {sorted(CANONICAL_ROLES)}, "
                              "e.g. roles: {yayi: assistant}")
    return {str(k).strip().lower(): v for k, v in roles.items()}


def with_source_roles(record: Any, roles: dict[str, str]) -> Any:
    """The record with its turns' role names mapped by `roles` (unmapped names kept)."""
    if not roles or not isinstance(record, dict):
        return record
    for key, role_key in TURN_KEYS.items():
        turns = record.get(key)
        if isinstance(turns, list):
            record = {**record, key: [
                {**t, role_key: roles.get(str(t[role_key]).strip().lower(), t[role_key])}
                if isinstance(t, dict) and role_key in t else t for t in turns]}
    return record


def with_record_system(record: Any) -> Any:
    """A ShareGPT/messages record's top-level `system` text as its first turn.

    Empty or missing: no system turn (YaYi's data leaves it ""). A record that already
    opens with a system turn keeps it and drops the field: never two system turns.
    Alpaca records read `system` themselves (alpaca_messages).
    """
    if not isinstance(record, dict) or not isinstance(record.get("system"), str):
        return record
    system = record["system"].strip()
    for key, role_key in TURN_KEYS.items():
        turns = record.get(key)
        if not isinstance(turns, list) or not system:
            continue
        first = turns[0] if turns else None
        if isinstance(first, dict) and ROLE_ALIASES.get(str(first.get(role_key, "")).lower()) == "system":
            return record
        content_key = "value" if key == "conversations" else "content"
        return {**record, key: [{role_key: "system", content_key: system}, *turns]}
    return record


# ----------------------------------------------------------------------------- the stage


def prepare_chat_data(sources: list, out_jsonl, stats_json, *, max_examples=None, seed=0, heldout=0,
                      heldout_jsonl=None, tokenizer_dir=None, max_length=None) -> dict:
    """Read every source, keep valid conversations, shuffle, split off `heldout`, write JSONL.

    sources: [{"path": file or hub name, "format": sharegpt|alpaca|messages|auto, "split": "train"}].
    heldout conversations go to `heldout_jsonl` (default: `<out_jsonl stem>.heldout.jsonl`).
    Exact duplicate conversations are dropped (`duplicate`). Returns the stats written.
    """
    length_of = _token_counter(tokenizer_dir) if max_length else None
    kept: list[dict] = []
    seen: set[str] = set()
    per_source, dropped = [], Counter()
    for source in sources:
        stats = _read_source(source, kept, seen, length_of, max_length)
        per_source.append(stats)
        dropped.update(stats["dropped"])
    random.Random(seed).shuffle(kept)
    held, train = kept[:heldout], kept[heldout:]
    if max_examples is not None:
        train = train[:int(max_examples)]
    _write_jsonl(train, out_jsonl)
    if heldout:
        heldout_jsonl = heldout_jsonl or Path(out_jsonl).with_name(Path(out_jsonl).name.replace(
            ".jsonl", "") + ".heldout.jsonl")
        _write_jsonl(held, heldout_jsonl)
    summary = {"sources": per_source, "read": sum(s["read"] for s in per_source),
               "valid": len(kept), "dropped": dict(sorted(dropped.items())),
               "written": len(train), "heldout": len(held), "seed": seed,
               "max_examples": max_examples, "max_length": max_length,
               "turns": {str(k): v for k, v in sorted(Counter(len(m["messages"]) for m in train).items())}}
    write_json(summary, stats_json)
    log.info("chat data: %d written, %d held out, dropped %s", len(train), len(held), dict(dropped))
    return summary


def _read_source(source: dict, kept: list, seen: set, length_of, max_length) -> dict:
    if not isinstance(source, dict) or "path" not in source:
        raise ChatSourceError(f"chat source {source!r}: expected {{path: ..., format: ...}}")
    fmt = source.get("format", "auto")
    if fmt not in FORMATS:
        raise ChatSourceError(f"chat source {source['path']}: format={fmt!r}, use one of {sorted(FORMATS)}")
    roles = source_roles(source)
    read, dropped = 0, Counter()
    for record in read_records(str(source["path"]), split=source.get("split", "train")):
        read += 1
        try:
            messages = to_messages(with_record_system(with_source_roles(record, roles)), fmt)
            key = json.dumps(messages, ensure_ascii=False, sort_keys=True)
            if key in seen:
                raise Dropped("duplicate")
            if length_of is not None and length_of(messages) > max_length:
                raise Dropped("too_long")
        except Dropped as drop:
            dropped[drop.reason] += 1
            continue
        seen.add(key)
        kept.append({"messages": messages})
    kept_here = read - sum(dropped.values())
    if kept_here == 0 and not (set(dropped) <= {"duplicate", "too_long"} and read):
        raise ChatSourceError(
            f"chat source {source['path']}: none of its {read} rows is a usable conversation "
            f"(dropped: {dict(dropped) or 'no rows at all'}). Fix: check that the file holds "
            f"{fmt if fmt != 'auto' else 'sharegpt, alpaca or messages'} records, or set its "
            "`format:` in the chat.data list.")
    return {"path": str(source["path"]), "format": fmt, "read": read,
            "kept": kept_here, "dropped": dict(sorted(dropped.items()))}


def _token_counter(tokenizer_dir):
    """Length in tokens of a conversation through the tokenizer's chat template."""
    if tokenizer_dir is None:
        raise ChatSourceError("max_length needs tokenizer_dir: lengths are counted in tokens "
                              "of the chat template")
    from transformers import AutoTokenizer

    from secateurs.train.chatml import CHATML_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    template = tokenizer.chat_template or CHATML_TEMPLATE

    def count(messages: list[dict]) -> int:
        return len(tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True,
                                                 return_dict=True)["input_ids"])
    return count


def _write_jsonl(rows: Iterable[dict], path) -> None:
    with atomic_output(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_chat_jsonl(path: str | os.PathLike) -> list[dict]:
    """The rows prepare_chat_data wrote (what chat_sft trains on)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
