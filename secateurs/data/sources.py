"""The data stage's sources as the config names them: checks and the slices each job reads.

`data.sources` maps a name to one corpus: its `kind` (`wiki`: a MediaWiki dump, extracted
and, when `opencc` is set, converted; `text`: a text dataset, local or on the hub, sampled
to a token budget), its `language` and its `weight` in the mix (share of training
tokens). Each source is one job (`wiki_extract` + `wiki_convert`, or `text_sample`)
cached on its own; the mix reads all of them. The JSON schema fixes the shapes and
defaults; this module checks what a schema cannot (a language whose writing system the
project does not know, a budget the demo's own tokenizer cannot measure) and cuts the
per-job settings, so a change to one source reruns only that source's jobs.
"""

from __future__ import annotations

from typing import Mapping

from secateurs import settings
from secateurs.data.writing import SCRIPTS, expected_scripts

FILTER_KEYS = ("min_chars", "min_script_share", "dedup")
WIKI_EXTRACT_KEYS = ("variant", "keep_headings", "accept_unterminated")
WIKI_KEYS = (*WIKI_EXTRACT_KEYS, "threads")
TEXT_KEYS = ("token_budget", "seed", "subsets", "config", "split", "text_column",
             "length_column", "shuffle_buffer")


def check_sources(data: Mapping, *, demo: bool) -> list[str]:
    """Problems of `data` (the config's data section, defaults filled), each with its key
    and the fix; empty when every source can run."""
    problems = []
    configured = data["scripts"]
    for lang, scripts in configured.items():
        unknown = [s for s in scripts if s not in SCRIPTS]
        if unknown:
            problems.append(f"config key `data.scripts.{lang}` names unknown script(s) "
                            f"{unknown}. Fix: use names from {list(SCRIPTS)}.")
    for name, source in data["sources"].items():
        key = f"data.sources.{name}"
        problems += _keys_of_the_other_kind(key, source)
        language = source["language"]
        if expected_scripts(language, configured) is None:
            problems.append(
                f"config key `{key}.language` = {language!r}: the project does not know which "
                f"script {language!r} is written in, so it cannot filter its text. Fix: add "
                f"`data.scripts: {{{language}: [Latin]}}` (one or more of {list(SCRIPTS)}), or "
                "correct the language code (ISO 639: es, bg, zh, ...).")
        if demo and source["kind"] == "text" and source["length_column"] is None \
                and source["token_budget"] is not None:
            problems.append(
                f"config key `{key}.length_column` is null: the demo's tokenizer is trained "
                "on the sources, so it cannot measure them. Fix: name the dataset's length "
                "column, or set token_budget: null to take the whole source.")
    return problems


def _keys_of_the_other_kind(key: str, source: Mapping) -> list[str]:
    """Settings that only the other kind reads, set away from their default: a mistake
    (an OpenCC profile on a text dataset would silently do nothing)."""
    other = TEXT_KEYS if source["kind"] == "wiki" else WIKI_KEYS
    spec = settings.schema()["$defs"]["source"]["properties"]
    return [f"config key `{key}.{k}` = {source[k]!r} is read only by {k_kind} sources, and this "
            f"one is kind {source['kind']}. Fix: remove it, or change the kind."
            for k in other if k in source and source[k] != spec[k]["default"]
            for k_kind in ["wiki" if k in WIKI_KEYS else "text"]]


def languages(data: Mapping) -> list[str]:
    """The languages of the sources, in the order they first appear (held-out sets, ppl)."""
    return list(dict.fromkeys(s["language"] for s in data["sources"].values()))


def of_kind(data: Mapping, kind: str) -> list[str]:
    return [name for name, s in data["sources"].items() if s["kind"] == kind]


def filter_settings(data: Mapping, name: str) -> dict:
    """The quality-filter settings of one source, with the scripts its language expects."""
    source = data["sources"][name]
    return {**{k: source[k] for k in FILTER_KEYS},
            "scripts": list(expected_scripts(source["language"], data["scripts"]))}


def extract_settings(data: Mapping, name: str) -> dict:
    source = data["sources"][name]
    return {"language": source["language"], **{k: source[k] for k in WIKI_EXTRACT_KEYS}}


def convert_settings(data: Mapping, name: str) -> dict:
    return {"profile": data["sources"][name]["opencc"], **filter_settings(data, name)}


def text_settings(data: Mapping, name: str) -> dict:
    source = data["sources"][name]
    return {**{k: source[k] for k in TEXT_KEYS}, "opencc": source["opencc"],
            **filter_settings(data, name)}


def mix_sources(data: Mapping) -> dict:
    """What the mix needs of each source: its language and weight (paths come as inputs)."""
    return {name: {"language": s["language"], "weight": s["weight"]}
            for name, s in data["sources"].items()}
