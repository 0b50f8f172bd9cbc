"""zhwiki's language-converter markup `-{...}-`, resolved to one script variant.

Semantics follow MediaWiki's LanguageConverter (Help:高级字词转换语法):
`-{text}-` shows text unconverted; `-{zh-hans:A; zh-hant:B}-` shows the variant's text
(falling back along MediaWiki's chain, e.g. zh-hans -> zh-cn -> zh-sg); flags before `|`
say what else to do: `H` (hidden rule), `T` (title rule), `-` (rule removal) and `D`
(description) display nothing and are removed; `R` (raw) shows its text as is; `A` adds a
rule and also shows the variant's text, so its text is kept (deleting it would cut words
out of the sentence that carries it).
"""

from __future__ import annotations

import re

# MediaWiki's zh fallback chains (LanguageZh.php / ZhConverter).
FALLBACK = {
    "zh-hans": ("zh-hans", "zh-cn", "zh-sg", "zh-my", "zh"),
    "zh-hant": ("zh-hant", "zh-tw", "zh-hk", "zh-mo", "zh"),
    "zh-cn": ("zh-cn", "zh-hans", "zh-sg", "zh-my", "zh"),
    "zh-sg": ("zh-sg", "zh-hans", "zh-cn", "zh-my", "zh"),
    "zh-my": ("zh-my", "zh-hans", "zh-sg", "zh-cn", "zh"),
    "zh-tw": ("zh-tw", "zh-hant", "zh-hk", "zh-mo", "zh"),
    "zh-hk": ("zh-hk", "zh-hant", "zh-mo", "zh-tw", "zh"),
    "zh-mo": ("zh-mo", "zh-hant", "zh-hk", "zh-tw", "zh"),
}

INNERMOST = re.compile(r"-\{((?:(?!-\{|\}-).)*)\}-", re.S)
# flags before `|`: letters (A, H, R, T, D, -, ...) or a variant list (`zh-hans;zh-hant|`)
FLAGS = re.compile(r"^\s*([ATRDHNSE\-;\s]{1,10}|zh(?:-[a-z]+)?(?:\s*;\s*zh(?:-[a-z]+)?)*)"
                   r"\s*\|(.*)$", re.S)
VARIANT = re.compile(r"(?:^|;)\s*(zh(?:-[a-z]+)?)\s*:", re.S)
HIDDEN_FLAGS = set("HT-D")


def _variants(body: str) -> dict[str, str] | None:
    """`zh-hans:A; zh-hant:B` -> {"zh-hans": "A", "zh-hant": "B"}; None when not a rule."""
    marks = list(VARIANT.finditer(body))
    if not marks or marks[0].start() != 0 and body[: marks[0].start()].strip():
        return None
    out = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        out[m.group(1)] = body[m.end():end].strip().rstrip(";").strip()
    return out


def _pick(variants: dict[str, str], variant: str) -> str:
    for v in FALLBACK.get(variant, (variant,)):
        if v in variants:
            return variants[v]
    return next(iter(variants.values()), "")


def resolve_one(inner: str, variant: str) -> tuple[str, bool]:
    """The display text of one `-{inner}-`, and whether it was a pure rule (nothing shown)."""
    flags, body = "", inner
    m = FLAGS.match(inner)
    if m:
        flags, body = m.group(1).strip(), m.group(2)
    if flags and not flags.startswith("zh"):
        letters = set(flags.replace(";", "").replace(" ", ""))
        if letters & HIDDEN_FLAGS:
            return "", True
        if "R" in letters:
            return body, False
    variants = _variants(body)
    if variants is None:
        return body, False
    return _pick(variants, variant), False


def resolve_converter(text: str, variant: str = "zh-hans") -> tuple[str, int]:
    """Resolve every `-{...}-` (innermost first); return the text and the number of pure
    rules removed."""
    if "-{" not in text:
        return text, 0
    removed = 0

    def repl(m: re.Match) -> str:
        nonlocal removed
        shown, rule = resolve_one(m.group(1), variant)
        removed += rule
        return shown

    while True:
        new = INNERMOST.sub(repl, text)
        if new == text:
            break
        text = new
    # an unclosed `-{` or stray `}-` is markup, never prose
    return text.replace("-{", "").replace("}-", ""), removed
