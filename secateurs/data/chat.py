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

Tool calls (LLaMA-Factory's glaive function-calling format: `function_call` and
`observation` turns, a `tools` column holding the JSON function list) are rendered the way
Qwen2.5's chat template renders them: the tool list in the system turn inside
`<tools></tools>`, each call as `<tool_call>{json}</tool_call>` in the assistant turn, each
result in its own `tool` turn inside `<tool_response></tool_response>`. Rendering happens
here, as text, so the ChatML template and its `{% generation %}` markers need no change:
calls are assistant text (trained on), results are not.

Cleaning (`Cleaning`, the `chat.cleaning` settings), one pass per record after
conversion, each counted in the stats: share-tool notices in `system` turns ("This
conversation is shared from ChatHub") are removed; ShareGPT V3's continuation chunks
(`id_1`, `id_2` ...) that start with an assistant turn or end with a user turn are
trimmed to whole exchanges (never inside a turn) or dropped, by policy; conversations
with less text than `min_chars` are dropped as `too_short`. Malformed lines are logged
with file and line number, and a source that loses more than `max_dropped_share` of its
rows warns with the reasons.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from secateurs.chatml import CHATML_TEMPLATE
from secateurs.io import atomic_output, write_json

log = logging.getLogger(__name__)

FORMATS = {"sharegpt", "alpaca", "messages", "auto"}
ROLE_ALIASES = {
    "system": "system",
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant",
    "bard": "assistant", "model": "assistant",
    # tool use (glaive / LLaMA-Factory names, and OpenAI's): rendered by render_tools
    "function_call": "tool_call", "observation": "tool", "tool": "tool", "function": "tool",
}
LOCAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


class Dropped(Exception):
    """A conversation that cannot be used; `reason` is the stats key it is counted under."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ChatSourceError(ValueError):
    """A source entry or file that cannot be read at all."""


@dataclass(frozen=True)
class Cleaning:
    """The `chat.cleaning` settings (defaults and descriptions live in the schema)."""

    partial_turns: str          # "trim" or "drop" continuation chunks' dangling turns
    min_chars: int              # conversations with less user+assistant text are dropped
    max_dropped_share: float    # a source losing more of its rows than this warns

    def __post_init__(self):
        if self.partial_turns not in ("trim", "drop"):
            raise ChatSourceError(f"chat.cleaning.partial_turns={self.partial_turns!r}: use trim or drop")


MAX_LISTED = 50   # malformed rows listed by location in the stats, per source


# ----------------------------------------------------------------------------- reading


def read_records(path: str, *, split: str = "train", config: str | None = None,
                 data_files: str | list | None = None) -> Iterator[dict]:
    """Rows of a local .jsonl/.jsonl.gz/.json/.parquet file, or of a hub dataset by name or
    a local clone of one (its `config`, `split` and, for a repository holding several sets,
    `data_files`).

    A file that cannot be decoded (corrupt gzip, not UTF-8, truncated) raises
    ChatSourceError naming it: the codecs' own messages do not say which file they read.
    """
    hub = {"split": split, "name": config, "data_files": data_files}
    try:
        yield from _records(path, hub)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ChatSourceError(f"chat source {path}: cannot be read ({type(err).__name__}: {err}). "
                              "Fix: check that the file is complete and, if it ends in .gz, "
                              "gzip-compressed UTF-8.") from err


def _records(path: str, hub: dict) -> Iterator[dict]:
    local = Path(path)
    if local.is_dir():  # a dataset repository cloned from the hub: read as the hub would
        given = {k: v for k, v in hub.items() if v is not None}
        from datasets import load_dataset

        yield from load_dataset(str(local), **given)
        return
    if local.exists():
        _refuse_hub_options(path, hub)
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

    given = {k: v for k, v in hub.items() if v is not None}
    log.info("loading hub dataset %s (%s)", path, ", ".join(f"{k} {v}" for k, v in given.items()))
    yield from load_dataset(path, **given)


def hub_option_problems(sources: list, is_file) -> list[str]:
    """The chat.data entries that name hub options (config, data_files, a split other than
    train) for a single local file, where they would be ignored; found by the config check
    before any job (`is_file(path)` says whether a path is an existing local file)."""
    problems = []
    for i, source in enumerate(sources):
        named = [k for k in ("config", "data_files") if source.get(k) is not None]
        named += ["split"] if source.get("split") not in (None, "train") else []
        if named and is_file(str(source["path"])):
            problems.append(f"config key `chat.data[{i}]`: {', '.join(named)} apply to hub datasets "
                            f"(or a local clone of one, a directory), but {source['path']} is one "
                            "file. Fix: remove them, or point path at the file you mean.")
    return problems


def _refuse_hub_options(path: str, hub: dict) -> None:
    """`config` and `data_files` choose among a dataset repository's sets; on one file they
    would be ignored silently, so they are refused (a local file has one split, too)."""
    named = [k for k in ("name", "data_files") if hub[k] is not None]
    if hub["split"] != "train":
        named.append("split")
    if named:
        keys = ", ".join("config" if k == "name" else k for k in named)
        raise ChatSourceError(f"chat source {path}: {keys} apply to hub datasets only, and this "
                              "is a local file. Fix: remove them from its chat.data entry, or "
                              "point path at the file you mean.")


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


def to_messages(record: Any, fmt: str = "auto", cleaning: Cleaning | None = None,
                notes: Counter | None = None) -> list[dict]:
    """Convert one record to validated messages, or raise Dropped(reason).

    Without `cleaning` nothing is trimmed or removed (strict); what cleaning changed in a
    kept conversation is counted in `notes`.
    """
    if not isinstance(record, dict) or "__malformed__" in record:
        raise Dropped("malformed")
    fmt = detect_format(record) if fmt == "auto" else fmt
    convert = {"sharegpt": sharegpt_messages, "alpaca": alpaca_messages,
               "messages": messages_messages}[fmt]
    messages = convert(record)
    if cleaning is None:
        return validate_messages(render_tools(messages, record))
    notes = notes if notes is not None else Counter()
    # a share-tool notice goes before the tool list joins the system turn
    messages = render_tools(drop_boilerplate_system(messages, notes), record)
    messages = trim_partial_turns(messages, cleaning.partial_turns, notes)
    return validate_messages(drop_short(messages, cleaning.min_chars))


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


# ----------------------------------------------------------------------------- tool calls

TOOLS_SYSTEM = (  # Qwen2.5's chat template, word for word
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    "{tools}\n</tools>\n\nFor each function call, return a json object with function name "
    "and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    "{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>")


def _json_value(value: Any, reason: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise Dropped(reason) from None
    return value


def tool_list(record: dict) -> list[dict]:
    """The record's `tools` (a JSON string in glaive/LLaMA-Factory files, or a list), each as
    an OpenAI-style `{"type": "function", "function": {...}}` the way Qwen2.5 lists them."""
    tools = record.get("tools")
    if tools in (None, "", "[]", []):
        return []
    tools = _json_value(tools, "bad_tools")
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise Dropped("bad_tools")
    return [t if "type" in t else {"type": "function", "function": t} for t in tools]


def render_tool_call(content: Any) -> str:
    """`{"name": ..., "arguments": ...}` (or a list of them, parallel calls) as Qwen2.5's
    `<tool_call>` blocks; arguments given as a JSON string are parsed first."""
    calls = _json_value(content, "bad_tool_call")
    calls = calls if isinstance(calls, list) else [calls]
    blocks = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise Dropped("bad_tool_call")
        arguments = call.get("arguments", {})
        if isinstance(arguments, str):
            arguments = _json_value(arguments, "bad_tool_call")
        body = json.dumps({"name": call["name"], "arguments": arguments}, ensure_ascii=False)
        blocks.append(f"<tool_call>\n{body}\n</tool_call>")
    if not blocks:
        raise Dropped("bad_tool_call")
    return "\n".join(blocks)


def render_tools(messages: list[dict], record: dict) -> list[dict]:
    """Tool list into the system turn, calls into assistant turns, results into `tool` turns
    wrapped in `<tool_response>`, so the model sees every tool its answers call."""
    tools = tool_list(record)
    out = []
    for message in messages:
        if message["role"] == "tool_call":
            message = {"role": "assistant", "content": render_tool_call(message["content"])}
        elif message["role"] == "tool":
            result = message["content"]
            if not isinstance(result, str):
                result = json.dumps(result, ensure_ascii=False)
            if not result.strip():
                raise Dropped("empty_turn")
            message = {"role": "tool", "content": f"<tool_response>\n{result.strip()}\n</tool_response>"}
        out.append(message)
    if tools:
        listed = TOOLS_SYSTEM.format(tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools))
        if out and out[0]["role"] == "system":
            own = out[0]["content"].strip() if isinstance(out[0]["content"], str) else ""
            out[0] = {"role": "system", "content": f"{own}\n\n{listed}" if own else listed}
        else:
            out.insert(0, {"role": "system", "content": listed})
    return out


# ----------------------------------------------------------------------------- cleaning

# the notices ShareGPT exporters put in a `system` turn; no model should learn them
BOILERPLATE_SYSTEM = re.compile(r"^\W*this (?:chat )?conversation (?:was |is )?shared (?:from|via|with)\b",
                                re.I)


def drop_boilerplate_system(messages: list[dict], notes: Counter) -> list[dict]:
    kept = [m for m in messages if not (m["role"] == "system" and isinstance(m["content"], str)
                                        and BOILERPLATE_SYSTEM.match(m["content"]))]
    if len(kept) != len(messages):
        notes["removed_boilerplate_system"] += len(messages) - len(kept)
    return kept


def trim_partial_turns(messages: list[dict], policy: str, notes: Counter) -> list[dict]:
    """ShareGPT V3 splits long chats into chunks (`id_0`, `id_1`, ...): a chunk may start
    with the assistant's answer to a question in the previous chunk and end with a question
    answered in the next. `trim` removes those dangling whole turns (leading non-user turns,
    trailing non-assistant turns); `drop` leaves them for validation to drop the row."""
    if policy == "drop":
        return messages
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    body = messages[len(head):]
    start = 0
    while start < len(body) and body[start]["role"] != "user":
        start += 1
    end = len(body)
    while end > start and body[end - 1]["role"] != "assistant":
        end -= 1
    if start:
        notes["trimmed_leading_turns"] += start
    if end < len(body):
        notes["trimmed_trailing_turns"] += len(body) - end
    if start or end < len(body):
        notes["trimmed_conversations"] += 1
        if start == end:
            raise Dropped("no_complete_exchange")
    return head + body[start:end]


def drop_short(messages: list[dict], min_chars: int) -> list[dict]:
    """Empty or one-word exchanges ("hi" / "Hello!") teach nothing: drop a conversation
    whose user and assistant text together is shorter than `min_chars` characters."""
    chars = sum(len(m["content"].strip()) for m in messages
                if m["role"] != "system" and isinstance(m["content"], str))
    if messages and chars < min_chars:
        raise Dropped("too_short")
    return messages


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
        if current["role"] == "tool" and not previous["content"].startswith("<tool_call>"):
            raise Dropped("tool_result_without_call")
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
                      heldout_jsonl=None, tokenizer_dir=None, max_length=None,
                      cleaning: dict | Cleaning | None = None) -> dict:
    """Read every source, keep valid conversations, shuffle, split off `heldout`, write JSONL.

    sources: [{"path": file or hub name, "format": sharegpt|alpaca|messages|auto, and for a hub
    dataset "config", "split" (train), "data_files"}].
    heldout conversations go to `heldout_jsonl` (default: `<out_jsonl stem>.heldout.jsonl`).
    Exact duplicate conversations are dropped (`duplicate`). `cleaning` is the
    `chat.cleaning` section (None: strict, nothing trimmed or removed). Returns the stats
    written: per source, rows read, kept, dropped by reason, what cleaning changed
    (`cleaned`), malformed rows by file and line, and a warning when too many were lost.
    """
    if isinstance(cleaning, dict):
        cleaning = Cleaning(**cleaning)
    length_of = _token_counter(tokenizer_dir) if max_length else None
    kept: list[dict] = []
    seen: set[str] = set()
    per_source, dropped, cleaned = [], Counter(), Counter()
    for source in sources:
        stats = _read_source(source, kept, seen, length_of, max_length, cleaning)
        per_source.append(stats)
        dropped.update(stats["dropped"])
        cleaned.update(stats["cleaned"])
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
               "cleaned": dict(sorted(cleaned.items())),
               "written": len(train), "heldout": len(held), "seed": seed,
               "max_examples": max_examples, "max_length": max_length,
               "turns": {str(k): v for k, v in sorted(Counter(len(m["messages"]) for m in train).items())}}
    write_json(summary, stats_json)
    log.info("chat data: %d written, %d held out, dropped %s, cleaned %s", len(train), len(held),
             dict(dropped), dict(cleaned))
    return summary


def _read_source(source: dict, kept: list, seen: set, length_of, max_length,
                 cleaning: Cleaning | None) -> dict:
    if not isinstance(source, dict) or "path" not in source:
        raise ChatSourceError(f"chat source {source!r}: expected {{path: ..., format: ...}}")
    fmt = source.get("format", "auto")
    if fmt not in FORMATS:
        raise ChatSourceError(f"chat source {source['path']}: format={fmt!r}, use one of {sorted(FORMATS)}")
    roles = source_roles(source)
    read, dropped, cleaned, malformed = 0, Counter(), Counter(), []
    for record in read_records(str(source["path"]), split=source.get("split") or "train",
                               config=source.get("config"), data_files=source.get("data_files")):
        read += 1
        notes: Counter = Counter()
        try:
            messages = to_messages(with_record_system(with_source_roles(record, roles)), fmt, cleaning,
                                   notes)
            key = json.dumps(messages, ensure_ascii=False, sort_keys=True)
            if key in seen:
                raise Dropped("duplicate")
            if length_of is not None and length_of(messages) > max_length:
                raise Dropped("too_long")
        except Dropped as drop:
            dropped[drop.reason] += 1
            if drop.reason == "malformed":
                _report_malformed(source["path"], read, record, malformed)
            continue
        cleaned.update(notes)
        seen.add(key)
        kept.append({"messages": messages})
    kept_here = read - sum(dropped.values())
    if kept_here == 0 and not (set(dropped) <= {"duplicate", "too_long"} and read):
        raise ChatSourceError(
            f"chat source {source['path']}: none of its {read} rows is a usable conversation "
            f"(dropped: {dict(dropped) or 'no rows at all'}). Fix: check that the file holds "
            f"{fmt if fmt != 'auto' else 'sharegpt, alpaca or messages'} records, or set its "
            "`format:` in the chat.data list.")
    stats = {"path": str(source["path"]), "format": fmt, "read": read,
             "kept": kept_here, "dropped": dict(sorted(dropped.items())),
             "cleaned": dict(sorted(cleaned.items())), "malformed_rows": malformed}
    warning = _drop_share_warning(stats, cleaning)
    if warning:
        stats["warning"] = warning
    return stats


def _report_malformed(path, row: int, record: Any, listed: list) -> None:
    """Log a malformed row by file and line (JSONL) or row number, and list the first few."""
    where = record["__malformed__"] if isinstance(record, dict) and "__malformed__" in record \
        else f"{path}: row {row}"
    what = "not valid JSON" if isinstance(record, dict) and "__malformed__" in record \
        else "a row without the fields its format needs"
    log.warning("chat source %s: %s, skipped", where, what)
    if len(listed) < MAX_LISTED:
        listed.append(where)


def _drop_share_warning(stats: dict, cleaning: Cleaning | None) -> str | None:
    """A source that loses more than `max_dropped_share` of its rows says so, with why."""
    if cleaning is None or not stats["read"]:
        return None
    share = 1 - stats["kept"] / stats["read"]
    if share <= cleaning.max_dropped_share:
        return None
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats["dropped"].items(), key=lambda kv: -kv[1]))
    message = (f"chat source {stats['path']}: {share:.0%} of its {stats['read']} rows were dropped "
               f"(more than chat.cleaning.max_dropped_share={cleaning.max_dropped_share}): {reasons}")
    log.warning(message)
    return message


def _token_counter(tokenizer_dir):
    """Length in tokens of a conversation through the tokenizer's chat template."""
    if tokenizer_dir is None:
        raise ChatSourceError("max_length needs tokenizer_dir: lengths are counted in tokens "
                              "of the chat template")
    from transformers import AutoTokenizer

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
