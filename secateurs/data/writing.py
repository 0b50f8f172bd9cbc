"""Which writing system a language is expected in, and how much of a text is in it.

Owns the per-language quality filter of the data stage: a document is kept when enough of
its non-space characters belong to the scripts its language is written in (Han for zh,
Latin for es and en, Cyrillic for bg and ru, ...). This catches what a source mislabels
or a cleaner leaves behind: stubs that are lists of Latin names or coordinates in a
Chinese wiki, pages of wiki markup in any language, text in another script copied from a
neighbouring wiki. Digits, punctuation and symbols count against every script, so a
threshold well below 1 (0.3 by default) is the right order of magnitude.

The table is small on purpose: a language not in it is named in the config with the
scripts to expect (`data.scripts`), and the workflow refuses to guess.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

# Unicode blocks per script (https://www.unicode.org/charts/). Han covers the unified
# ideographs, extension A, the compatibility block and extensions B-H (planes 2-3).
SCRIPT_CHARS = {
    "Han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f",
    "Kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "Hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "Latin": "A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\u2c60-\u2c7f",
    "Cyrillic": "\u0400-\u052f\u1c80-\u1c8f\u2de0-\u2dff\ua640-\ua69f",
    "Greek": "\u0370-\u03ff\u1f00-\u1fff",
    "Armenian": "\u0530-\u058f",
    "Georgian": "\u10a0-\u10ff\u1c90-\u1cbf",
    "Hebrew": "\u0590-\u05ff",
    "Arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "Devanagari": "\u0900-\u097f",
    "Bengali": "\u0980-\u09ff",
    "Tamil": "\u0b80-\u0bff",
    "Thai": "\u0e00-\u0e7f",
}
SCRIPTS = tuple(SCRIPT_CHARS)

_LATIN = ("af ast az bs ca cs cy da de en eo es et eu fi fil fr ga gl hr hu id is it lb lt "
          "ltg lv ms mt nl nn no oc pl pt ro sk sl so sq sv sw tl tr uz vi")
_CYRILLIC = "ba be bg kk ky mk mn ru sah sr tg tt uk"
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    **{code: ("Latin",) for code in _LATIN.split()},
    **{code: ("Cyrillic",) for code in _CYRILLIC.split()},
    **{code: ("Arabic",) for code in "ar fa ps ur".split()},
    **{code: ("Devanagari",) for code in "hi mr ne sa".split()},
    "zh": ("Han",), "yue": ("Han",), "ja": ("Han", "Kana"), "ko": ("Hangul", "Han"),
    "el": ("Greek",), "hy": ("Armenian",), "ka": ("Georgian",), "he": ("Hebrew",),
    "yi": ("Hebrew",), "bn": ("Bengali",), "ta": ("Tamil",), "th": ("Thai",),
}

_SPACE = re.compile(r"\s+")
_PATTERNS: dict[tuple[str, ...], re.Pattern] = {}


def expected_scripts(language: str, configured: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
    """The scripts `language` is written in: `configured` (data.scripts) first, then the
    table; None when neither knows it."""
    if language in configured:
        return tuple(configured[language])
    return LANGUAGE_SCRIPTS.get(language)


def script_share(text: str, scripts: Sequence[str]) -> float:
    """Share of the non-space characters of `text` that belong to any of `scripts`."""
    dense = len(text) - sum(map(len, _SPACE.findall(text)))
    if not dense:
        return 0.0
    return (len(text) - len(_pattern(scripts).sub("", text))) / dense


def _pattern(scripts: Sequence[str]) -> re.Pattern:
    key = tuple(scripts)
    if key not in _PATTERNS:
        unknown = [s for s in key if s not in SCRIPT_CHARS]
        if unknown:
            raise ValueError(f"unknown script(s) {unknown}; use names from {list(SCRIPTS)}")
        _PATTERNS[key] = re.compile("[" + "".join(SCRIPT_CHARS[s] for s in key) + "]")
    return _PATTERNS[key]
