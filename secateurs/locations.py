"""What a path or source named in the config points at: a local path (resolved against
the workflow's directory), a hub id `owner/name`, or a GGUF file.

Shared by every stage's config check and by rules/common.smk; it imports nothing of
the package, so anything may import it.
"""

from __future__ import annotations

import re
from pathlib import Path


def resolve(path: str, basedir: Path) -> Path:
    """A config path: absolute as given, relative to the workflow's directory otherwise."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else basedir / candidate


HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")
DATA_SUFFIXES = (".parquet", ".json", ".jsonl", ".gz", ".bz2", ".xml", ".txt", ".csv", ".arrow",
                 ".gguf")


def looks_local(source: str, basedir: str | Path = ".") -> bool:
    """Whether a config source names a local path rather than a hub id (`owner/name`).

    An existing path always wins: `models/tiny` is that directory when it exists, never a
    hub repository of the same name (which would download, and online could fetch an
    unrelated model). Otherwise hub ids may contain dots (`01-ai/Yi-1.5-6B`), so a suffix
    alone does not make a path; a leading ./ ../ / ~, a data-file suffix, or a shape other
    than owner/name does (and `check_source` refuses what is neither).
    """
    return (resolve(source, Path(basedir)).exists() or source.startswith(("/", "./", "../", "~"))
            or source.endswith(DATA_SUFFIXES) or not HUB_ID.fullmatch(source))


def check_source(key: str, source: str, basedir: Path, what: str) -> list[str]:
    """A source must be an existing local path or a well-formed hub id."""
    if resolve(source, basedir).exists():
        return []
    if looks_local(source, basedir):
        return [f"config key `{key}`: {source} does not exist (relative paths are taken from "
                f"{basedir}). Fix: give an existing {what}, or a hub id of the form owner/name."]
    return []


def is_gguf(source: str) -> bool:
    """Whether `base_model.source` names a GGUF file, which rules/base_model.smk imports."""
    return source.lower().endswith(".gguf")
