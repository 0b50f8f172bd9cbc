"""The data stage's config checks that a schema cannot express: the input files of its
sources and of the chat data exist (or name a hub dataset).

Called by `secateurs.config.check_semantics` on a config already valid against the
schema and filled with its defaults; returns the problems found, one line each.
"""

from __future__ import annotations

from pathlib import Path

from secateurs.data.chat import hub_option_problems
from secateurs.locations import check_source, resolve


def check_inputs(config: dict, basedir: Path) -> list[str]:
    """Every wiki dump exists; every text and chat source is a local path that exists or
    a hub id."""
    problems = []
    checks = []
    for name, source in config["data"]["sources"].items():
        if source["kind"] == "wiki" and not resolve(source["path"], basedir).exists():
            problems.append(f"config key `data.sources.{name}.path`: file {source['path']} does "
                            "not exist. Fix: give the path of a MediaWiki XML dump (.xml or "
                            ".xml.bz2).")
        elif source["kind"] == "text":
            checks.append((f"data.sources.{name}.path", source["path"]))
    checks += [(f"chat.data[{i}].path", item["path"]) for i, item in enumerate(config["chat"].get("data", []))]  # none when chat is off
    for key, source in checks:
        problems += check_source(key, source, basedir, "local file or directory")
    return problems


def check_chat_sources(config: dict, basedir: Path) -> list[str]:
    """Hub options (config, data_files, a split) named for a single local chat file, where
    they would be ignored (secateurs.data.chat.hub_option_problems)."""
    return hub_option_problems(config["chat"].get("data", []),  # none when chat is off
                               lambda path: resolve(path, basedir).is_file())
