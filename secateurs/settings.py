"""Every setting's one definition: `secateurs/schema.yaml`.

A setting's default, type, range and description live in the schema and nowhere else.
The workflow validates its config against it (filling defaults), the library fills the
same defaults when called directly (`complete`), and the command line builds its options
from it (`fields`), so the three cannot disagree. Sections are named by their dotted path
in the config: `heal`, `chat`, `prune.score`, `data.mix`, ...
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")


@lru_cache(maxsize=1)
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _resolve(node: dict) -> dict:
    """A schema node with its `$ref` (local `#/$defs/...` only) merged in, refs first."""
    if "$ref" not in node:
        return node
    target: Any = schema()
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    base = _resolve(target)
    merged = {**base, **{k: v for k, v in node.items() if k != "$ref"}}
    # A section may override single facets of a shared setting (heal's default
    # learning_rate); the shared type, range and description stay.
    props = dict(base.get("properties", {}))
    for key, spec in node.get("properties", {}).items():
        props[key] = {**props.get(key, {}), **spec}
    merged["properties"] = props
    return merged


def resolved(node: dict) -> dict:
    """A schema node with its `$ref` merged in (section-level facets win)."""
    return _resolve(node)


def section(name: str) -> dict:
    """The resolved schema node of a config section, e.g. section("prune.score")."""
    node = schema()
    for part in name.split("."):
        node = _resolve(node)
        # `*` is any key of a mapping of like sections, e.g. data.sources.* (one source)
        child = node.get("additionalProperties") if part == "*" else node.get("properties", {}).get(part)
        if not isinstance(child, dict):
            raise KeyError(f"no config section `{name}` in {SCHEMA_PATH}")
        node = child
    return _resolve(node)


def node(name: str) -> dict:
    """The resolved schema node of a config section, or of a shared definition under
    `$defs` (e.g. "training", whose settings heal, chat and demo.pretrain share)."""
    defs = schema().get("$defs", {})
    if name in defs:
        return _resolve(defs[name])
    return section(name)


def setting(name: str, key: str) -> dict:
    """The resolved schema node of one setting, `key` dotted below the section."""
    current = node(name)
    for part in key.split("."):
        child = current.get("properties", {}).get(part)
        if not isinstance(child, dict):
            raise KeyError(f"no setting `{key}` in config section `{name}` of {SCHEMA_PATH}")
        current = _resolve(child)
    return current


def enum(name: str, key: str) -> tuple:
    """The values the schema allows for one setting, e.g. enum("training", "lr_scheduler"):
    code that checks a value (or lists the choices) reads them here, so it cannot accept
    a value the schema refuses or refuse one it accepts."""
    values = setting(name, key).get("enum")
    if values is None:
        raise KeyError(f"setting `{name}.{key}` has no enum in {SCHEMA_PATH}")
    return tuple(values)


def defaults(name: str) -> dict:
    """Every default of a section, nested objects included (their own defaults filled)."""
    return complete(name, {})


def complete(name: str, config: dict | None) -> dict:
    """`config` (one section) with the schema's defaults filled in, nested objects key by key.

    The workflow hands rules a config Snakemake already completed; this does the same for
    a library call or the command line, so both run with identical settings."""
    return fill(section(name), config or {})


def fill(node: dict, value: Any) -> Any:
    """A copy of `value` with every missing default of schema `node` set, as Snakemake's
    validate(set_default=True) does: a missing key takes its default, and objects (given
    or defaulted) are filled in turn, the items of an array too (chat.data's)."""
    node = _resolve(node)
    value = copy.deepcopy(value)
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [fill(node["items"], item) for item in value]  # e.g. evaluate.tasks entries
    if not isinstance(value, dict):
        return value
    for key, sub in node.get("properties", {}).items():
        sub = _resolve(sub)
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            value[key] = fill(sub, value[key])
    return value


def complete_config(config: dict) -> dict:
    """A whole workflow config with every default filled (a copy)."""
    return fill(schema(), config)


# Training settings that change how a run is watched or checkpointed, never what it
# learns. They are left out of a run's identity, so changing one neither reruns a finished
# stage (rules keep them out of `params`) nor starts its checkpoints over.
NEUTRAL_TRAINING = frozenset({"logging_steps", "save_steps", "save_total_limit", "disable_tqdm",
                              "dataloader_num_workers", "checkpoint_on_sigterm",
                              "keep_checkpoints"})


def result_settings(config: dict) -> dict:
    """The settings of a training section that change the trained model."""
    return {k: v for k, v in config.items() if k not in NEUTRAL_TRAINING}


@dataclass(frozen=True)
class Field:
    """One leaf setting of a section, as the command line shows it."""

    key: str  # dotted below the section, e.g. "lora.r"
    types: tuple[str, ...]
    default: Any
    description: str
    choices: tuple | None


def fields(name: str) -> Iterator[Field]:
    """The leaf settings of a section in schema order (objects are walked, not listed)."""
    yield from _fields_of(section(name), "")


def _fields_of(node: dict, prefix: str) -> Iterator[Field]:
    for key, sub in node.get("properties", {}).items():
        sub = _resolve(sub)
        types = sub.get("type", "any")
        types = tuple(types) if isinstance(types, list) else (types,)
        if types == ("object",) and "properties" in sub:
            yield from _fields_of(sub, f"{prefix}{key}.")
            continue
        choices = tuple(c for c in sub["enum"]) if "enum" in sub else None
        yield Field(f"{prefix}{key}", types, copy.deepcopy(sub.get("default")),
                    sub.get("description", ""), choices)


def undocumented(node: dict | None = None, prefix: str = "") -> list[str]:
    """Dotted keys of the whole schema that have no description (a test keeps it empty)."""
    node = _resolve(schema() if node is None else node)
    missing = []
    for key, sub in node.get("properties", {}).items():
        sub = _resolve(sub)
        if not sub.get("description"):
            missing.append(prefix + key)
        missing += undocumented(sub, f"{prefix}{key}.")
    return missing
