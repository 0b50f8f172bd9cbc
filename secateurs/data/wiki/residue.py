"""Markup that must never survive cleaning, as a check the tests and the benchmark share.

The list is the issue's acceptance list: template, link, ref, table and converter
delimiters, and brackets left empty where a template stood.
"""

from __future__ import annotations

import re

RESIDUE = re.compile(r"\{\{|\}\}|\[\[|\]\]|<ref|\{\||-\{|\}-|\(\s*\)|（\s*）|\[\s*\]|【\s*】")


def find_residue(text: str, context: int = 30) -> list[str]:
    """Every residue hit in `text` with a little context, for an assertion message."""
    return [text[max(0, m.start() - context): m.end() + context]
            for m in RESIDUE.finditer(text)]


def count_residue(text: str) -> int:
    return sum(1 for _ in RESIDUE.finditer(text))
