"""Wikitext -> plain prose, with a count of what was removed.

Where the time goes (../shared/STACK.md): mwparserfromhell's tokenizer runs at about
0.5-2 M chars/s even on prose whose templates were cut first (measured on the gensim
enwiki dump), slower than WikiExtractor's regexes, so it cannot be the main path. Most of
an article's bytes are markup that is dropped whole (templates, refs, tables, comments):
each is cut by a linear scanner before anything looks at the prose, and the remaining
inline markup (links innermost first, quotes, tags, lists, headings) by regexes that start
with a literal character, which `re` scans for at C speed (`'{2,5}` is 40x slower than
`''+`). Cleaning then runs at about 4-5 M chars/s, 1.5-2x WikiExtractor on the same
pages. Prose-carrying templates (quotations, {{lang|de|Berlin}}, {{link-en|柏林|Berlin}},
{{convert|100|km}}, {{formatnum:3500000}}) keep the text MediaWiki shows, their arguments
split by a small scanner that respects nested links and templates.

Paragraphs come out as MediaWiki renders them: lines of one paragraph are joined (by a
space, or by nothing between CJK characters); list items, headings and `<br>` keep their
own lines.

Order matters: comments first (they hide everything), then converter markup `-{...}-`
(it may sit inside links), then tags with content, templates, tables, sections, links,
formatting, and a residue pass for brackets emptied by what was cut ("（）", "()").
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass

from .converter import resolve_converter
from .language import (CATEGORY_NS, FILE_NS, MEDIA_NS, TEMPLATE_NS, Language, fold_title,
                       is_trailing_title, normalize_name)


@dataclass(frozen=True)
class CleanOptions:
    keep_headings: bool = False
    keep_math: bool = False
    keep_code: bool = False
    variant: str = "zh-hans"


# --- tags -----------------------------------------------------------------------------

COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
NOWIKI = re.compile(r"<nowiki\s*>(.*?)</nowiki\s*>", re.S | re.I)
NOWIKI_SELF = re.compile(r"<nowiki\s*/>", re.I)
# tags whose content is never prose; the key is the counter they add to
DROP_TAGS = {
    "ref": "refs", "references": "refs", "gallery": "galleries", "timeline": "other",
    "score": "other", "imagemap": "files", "graph": "other", "mapframe": "other",
    "maplink": "other", "templatedata": "other", "templatestyles": "other",
    "noinclude": "other", "inputbox": "other", "categorytree": "other", "hiero": "other",
    "charinsert": "other", "indicator": "other", "section": "other", "syntaxhighlight": "code",
    "source": "code", "pre": "code", "code": "code", "math": "math", "chem": "math", "ce": "math",
    "table": "tables",
}
_TAG_ALT = "|".join(sorted(DROP_TAGS, key=len, reverse=True))
PAIRED_TAG = re.compile(rf"<({_TAG_ALT})(\s[^>]*)?(?<!/)>(.*?)</\1\s*>", re.S | re.I)
SELF_TAG = re.compile(rf"<({_TAG_ALT})(\s[^>]*)?/>", re.I)
BR = re.compile(r"<br\s*/?>", re.I)
ANY_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:[\s;,][^<>]*)?/?>")   # `<td; align=..>` too

# --- markup -----------------------------------------------------------------------------

BRACES = re.compile(r"\{\{+|\}\}+")
# a link with no link inside: the target has no newline, a label may (file captions do)
SIMPLE_LINK = re.compile(r"\[\[([^\[\]|\n]+(?:\|(?:[^\[\]]|\[(?!\[)|\](?!\]))*)?)\]\]")
TEMPLATE_NAME = re.compile(r"\{\{\s*([^|{}\n]*)")
TABLE_SYNTAX = ("|", "!", "{|")
HEADING = re.compile(r"^(={1,6})\s*(.+?)\s*\1\s*$")
# headings found by a literal "\n=" prefix, which `re` scans for fast (text padded with "\n")
SECTION_HEAD = re.compile(r"\n(={1,6})[ \t]*([^\n]+?)[ \t]*\1[ \t]*(?=\n)")
EXTERNAL = re.compile(r"\[(?:https?:|ftp:|mailto:|news:|irc:|//)[^\s\]]*"
                      r"(?:[ \t]+([^\]\n]*))?\]", re.I)
QUOTES = re.compile(r"''+")   # a literal first char lets `re` scan fast
MAGIC = re.compile(r"__[A-Z\u3400-\u9fff]{2,30}__")
LIST_MARK = re.compile(r"^[*#:;]+[ \t]*", re.M)
# a link to an upload under a namespace alias nobody listed (ltgwiki's `Attēls:`)
MEDIA_TARGET = re.compile(r"\.(?:jpe?g|png|svg|gif|tiff?|webp|xcf|ogg|ogv|oga|webm|mp3|wav"
                          r"|flac|mid|pdf|djvu)\s*$", re.I)
ARG_SPLIT = re.compile(r"\{\{|\}\}|\[\[|\]\]|\|")
NUMBER = re.compile(r"([-+−]?)(\d+)(\.\d+)?")
INTERLANG = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8}){0,2}$")
EMPTY_BRACKETS = re.compile(r"[(（\[【]\s*(?:[,;，；、:：/]\s*)*[)）\]】]")
LEAD_PUNCT = re.compile(r"([(（])\s*[,;，；、:：]\s*")
TRAIL_PUNCT = re.compile(r"\s*[,;，；、]\s*([)）])")
SPACES = re.compile(r"  +")
ODD_SPACES = (("\t", " "), ("\u00a0", " "), ("\u2009", " "), ("\u202f", " "), ("\u200b", ""))
BLANKS = re.compile(r"\n{3,}")
LEAD_LINE_PUNCT = re.compile(r"^[ \t]*[，、,;；。．][ \t]*", re.M)
LINE_BREAK = "\u2028"     # what <br> becomes until paragraphs are joined; then a newline
CLOSING_PUNCT = set("，。、；：？！）」』》〉】,.;:?!)")

# zhwiki templates that only carry converter rules (page-wide or group rules)
CONVERTER_TEMPLATES = frozenset({"noteta", "notetag", "cgroup", "cgroup/core"})
# Templates whose visible text is prose: name -> the arguments to keep, positional (int) or
# named (str), in that order of preference within a group; the text MediaWiki shows.
PROSE_TEMPLATES = {
    "lang": (2,), "link-en": (1,), "link-ja": (1,), "link-de": (1,), "link-fr": (1,),
    "ill": (1,), "interlanguage link": (1,), "tsl": (3,), "le": (1,), "nowrap": (1,),
    "nobr": (1,), "small": (1,), "big": (1,), "小": (1,), "convert": (1, 2), "cvt": (1, 2),
    "transl": (2,), "abbr": (1,), "lj": (1,), "翻譯名": (1,), "un": (1,), "sic": (1,),
    "val": (1,), "nts": (1,), "ntsh": (1,), "num": (1,), "nihongo": (1,), "nihongo2": (1,),
    "en": (1,), "lang-en": (1,), "zh": ("s", "t", 1), "zh-s": (1,), "zh-t": (1,),
    "!": (), "=": (), "·": (), "dot": (), "•": (),
}
# shown literally by these "magic" templates
LITERAL_TEMPLATES = {"!": "|", "=": "=", "·": " · ", "dot": " · ", "•": " • "}
# Block quotations hold whole paragraphs (enwiki Template:Quote, Cquote, Quote box,
# Blockquote; their zhwiki names): name -> where the quoted text is, in order of preference.
QUOTE_TEMPLATES = {
    "quote": ("text", "quote", 1), "blockquote": ("text", "quote", 1), "cquote": ("quote", "text", 1),
    "quote box": ("quote", "text", 1), "quotebox": ("quote", "text", 1), "rquote": (2,),
    "centered pull quote": ("quote", "text", 1), "pull quote": ("quote", "text", 1),
    "quotation": ("text", "quote", 1), "poemquote": ("text", 1), "cquote2": ("quote", "text", 1),
    "quote frame": ("quote", "text", 1), "引文": ("text", "quote", 1), "引言": ("text", "quote", 1),
}
# Parser functions that transform their one argument's text: `{{formatnum:3500000}}`.
TEXT_FUNCTIONS = {"formatnum", "lc", "uc", "lcfirst", "ucfirst"}


def _template_name(body: str, lang: Language) -> str:
    """`{{ Template:Lang-de |...}}` -> `lang-de`; `{{模板:消歧義}}` -> `消歧義`."""
    m = TEMPLATE_NAME.match(body)
    name = normalize_name(m.group(1)) if m else ""
    for prefix in ("subst:", "safesubst:", "msgnw:"):
        if name.startswith(prefix):
            name = name[len(prefix):].strip()
    ns, sep, rest = name.partition(":")
    if sep and lang.namespace_of(ns) == TEMPLATE_NS:
        name = rest.strip()
    return name


def _arguments(inner: str) -> tuple[list[str], dict[str, str]]:
    """Positional and named arguments of a template body without braces and name, split
    where MediaWiki splits them: at `|` outside nested `{{...}}` and `[[...]]`."""
    parts, depth, start = [], 0, 0
    for m in ARG_SPLIT.finditer(inner):
        tok = m.group()
        if tok in ("{{", "[["):
            depth += 1
        elif tok in ("}}", "]]"):
            depth = max(0, depth - 1)
        elif depth == 0:
            parts.append(inner[start:m.start()])
            start = m.end()
    parts.append(inner[start:])
    positional, named = [], {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if eq and "{{" not in key and "[[" not in key:   # any `=` makes an argument named
            named[key.strip().casefold()] = value.strip()
        else:
            positional.append(part.strip())
    return positional, named


def _argument(key: int | str, positional: list[str], named: dict[str, str]) -> str | None:
    if isinstance(key, str):
        return named.get(key)
    return named.get(str(key)) or (positional[key - 1] if key <= len(positional) else None)


def _pick_arguments(keys: tuple, positional: list[str], named: dict[str, str], first: bool) -> list[str]:
    """The non-empty arguments `keys` name; with `first`, only the first one present."""
    found = [v for v in (_argument(k, positional, named) for k in keys) if v]
    return found[:1] if first else found


def _prose_of_template(name: str, body: str, lang: Language, counts: Counter) -> str | None:
    """The text a prose-carrying template shows, or None to drop it. Templates nested in
    the kept arguments are resolved the same way (`{{quote|{{lang|en|...}}}}`)."""
    head, colon, rest = name.partition(":")
    if colon and head in TEXT_FUNCTIONS:                  # {{formatnum:3500000}}
        value = body[2:-2].split(":", 1)[1].split("|", 1)[0].strip()
        if "{{" in value:
            value = cut_templates(value, lang, counts)[0]
        if head == "formatnum":
            return _formatnum(value)
        return value or None
    block = name in QUOTE_TEMPLATES
    if name == "as of":                                   # {{As of|2021|March}}
        positional, named = _arguments(body[2:-2])
        return _as_of(positional)
    if name in LITERAL_TEMPLATES:
        return LITERAL_TEMPLATES[name]
    if block:
        keys, first = QUOTE_TEMPLATES[name], True
    elif name.startswith(("lang-", "link-")) and len(name) <= 12:
        keys, first = (1,), False
    else:
        keys, first = PROSE_TEMPLATES.get(name), name == "zh"
    if keys is None:
        return None
    positional, named = _arguments(body[2:-2])
    parts = _pick_arguments(keys, positional, named, first)
    parts = [cut_templates(p, lang, counts)[0] if "{{" in p else p for p in parts]
    text = " ".join(p.strip() for p in parts if p.strip())
    if not text:
        return None
    # a block quotation is its own paragraph, as <blockquote> renders
    return f"\n\n{text}\n\n" if block else text


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def _as_of(positional: list[str]) -> str | None:
    """enwiki's {{As of|year|month|day}} shows "As of [day] [month] year"."""
    year, month, day = (positional + ["", "", ""])[:3]
    if month.isdigit() and 1 <= int(month) <= 12:
        month = MONTHS[int(month) - 1]
    return " ".join(["As of", *(p for p in (day, month, year) if p)]) if year else None


def _formatnum(value: str) -> str | None:
    """`{{formatnum:3500000}}` shows 3,500,000 (MediaWiki groups the integer part by three)."""
    m = NUMBER.fullmatch(value.replace(",", ""))
    if not m:
        return value or None
    sign, whole, frac = m.groups()
    return f"{sign}{int(whole):,}{frac or ''}"


def cut_templates(text: str, lang: Language, counts: Counter) -> tuple[str, bool]:
    """Remove every `{{...}}` (nested, with `{{{params}}}`) in one scan; keep the text of
    prose templates; report whether a disambiguation template was seen."""
    if "{{" not in text:
        return text, False
    out, depth, last, start, disambig = [], 0, 0, 0, False
    # depth counts brace characters in runs of two or more, so `{{a|{{{1}}}}}` and
    # `{{small|{{x|{{y}}}}}}` close where MediaWiki's preprocessor closes them
    for m in BRACES.finditer(text):
        tok = m.group()
        if tok[0] == "{":
            if depth == 0:
                out.append(text[last:m.start()])
                start = m.start()
            depth += len(tok)
        elif depth:
            depth = max(0, depth - len(tok))
            if depth == 0:
                last = m.end()
                body = text[start:last]
                name = _template_name(body, lang)
                counts["templates"] += 1
                if name in lang.disambig_templates:
                    disambig = True
                if name in CONVERTER_TEMPLATES:
                    counts["converter_rules"] += 1
                prose = _prose_of_template(name, body, lang, counts)
                if prose:
                    out.append(prose)
    if depth:
        # an unclosed `{{` swallows the rest, as MediaWiki renders it literally: drop it
        counts["templates"] += 1
    else:
        out.append(text[last:])
    return "".join(out), disambig


def cut_tables(text: str, counts: Counter) -> str:
    """Drop `{| ... |}` tables (nested) line by line; a table's cells are not prose.

    A table closed by `</table>` is closed there. One never closed must not swallow the
    rest of the article: a table does not run past a section heading, and when one
    reaches a heading (or the end) unclosed, the text after its last table-syntax line
    and a blank line is prose again (`unclosed_tables` counts it)."""
    if "{|" not in text:
        return text
    out, depth, held = [], 0, []
    for line in text.split("\n"):
        s = line.lstrip(" :\t")
        if depth and (HEADING.match(line) if line.startswith("=") else False):
            out.extend(_recover(held, counts))
            depth, held = 0, []
        if s.startswith("{|"):
            depth += 1
            if depth == 1:
                counts["tables"] += 1
                out.append("")           # a table ends the paragraph before it
            continue
        if depth:
            if s.startswith("|}") or s.lower().startswith("</table"):
                depth -= 1
                held = []
            else:
                held.append(line)
            continue
        out.append(line)
    if depth:
        out.extend(_recover(held, counts))
    return "\n".join(out)


def _recover(held: list[str], counts: Counter) -> list[str]:
    """The prose after an unclosed table: from the first paragraph (a blank line, then a
    line that is no table row or cell) after its last row."""
    counts["unclosed_tables"] += 1
    for i in range(len(held) - 1, 0, -1):
        if held[i].lstrip(" :\t").startswith(TABLE_SYNTAX):
            held = held[i + 1:]
            break
    for i, line in enumerate(held):
        if not line.strip() and i + 1 < len(held) and held[i + 1].strip():
            return held[i + 1:]
    return []


def cut_sections(text: str, lang: Language, counts: Counter | None = None) -> tuple[str, int]:
    """Drop sections titled References, See also, 参考文献, 外部链接 ... with their
    subsections; return the text and how many were dropped. Titles are folded to one
    script first (參見, 参見 and 参见 are one title), and each dropped one is counted in
    `counts` as `section:<folded title>`."""
    padded = "\n" + text + "\n"
    out, last, skip_level, dropped = [], 0, 0, 0
    for m in SECTION_HEAD.finditer(padded):
        level = len(m.group(1))
        if skip_level and level > skip_level:
            continue
        if skip_level:
            last, skip_level = m.start(), 0
        title = fold_title(re.sub(r"[\[\]'{}:：]", "", m.group(2)))
        if is_trailing_title(title, lang.trailing_sections):
            out.append(padded[last:m.start()])
            skip_level, dropped = level, dropped + 1
            if counts is not None:
                counts[f"section:{title}"] += 1
    if not dropped:
        return text, 0
    if not skip_level:
        out.append(padded[last:])
    return "".join(out).strip("\n"), dropped


def _link_text(inner: str, lang: Language, counts: Counter) -> str:
    """Display text of `[[inner]]`: '' for files, categories and interlanguage links."""
    target, pipe, label = inner.partition("|")
    colon = target.startswith(":")
    prefix, sep, rest = target.lstrip(":").partition(":")
    if sep and not colon:
        ns = lang.namespace_of(prefix)
        if ns in (FILE_NS, MEDIA_NS):
            counts["files"] += 1
            return ""
        if ns == CATEGORY_NS:
            counts["categories"] += 1
            return ""
        if ns is None and INTERLANG.match(prefix.strip()) and "\n" not in inner:
            counts["interlanguage_links"] += 1
            return ""
        if ns is None and MEDIA_TARGET.search(rest):
            counts["files"] += 1
            return ""
    if pipe:
        if label.strip():
            return label
        # pipe trick: [[柏林 (消歧义)|]] shows 柏林
        return re.sub(r"\s*[(（].*?[)）]\s*$", "", target.lstrip(":").split(":", 1)[-1])
    shown = target.lstrip(":")
    return shown[1:] if shown.startswith("#") else shown.split("#", 1)[0] or shown


def cut_links(text: str, lang: Language, counts: Counter) -> str:
    """Replace `[[...]]` by its display text, innermost first, so a file caption's own
    links are resolved before the file link (and with it) is dropped."""
    if "[[" not in text:
        return text
    repl = lambda m: _link_text(m.group(1), lang, counts)  # noqa: E731
    for _ in range(8):                                      # nesting deeper than 8 is vandalism
        text, n = SIMPLE_LINK.subn(repl, text)
        if not n or "[[" not in text:
            break
    # an unclosed `[[` (a link never spans lines) and a stray `]]` are typos MediaWiki
    # shows literally; they are not prose
    return text.replace("[[", "").replace("]]", "")


def _tags(text: str, opts: CleanOptions, counts: Counter) -> str:
    def paired(m: re.Match) -> str:
        what = DROP_TAGS[m.group(1).lower()]
        if (what == "math" and opts.keep_math) or (what == "code" and opts.keep_code):
            return m.group(3)
        counts[what] += 1
        return ""

    def single(m: re.Match) -> str:
        counts[DROP_TAGS[m.group(1).lower()]] += 1
        return ""

    text = SELF_TAG.sub(single, text)
    return PAIRED_TAG.sub(paired, text)


def _protect_nowiki(text: str) -> str:
    """`<nowiki>` content is literal: escape its markup as entities, unescaped at the end."""
    def esc(m: re.Match) -> str:
        return (m.group(1).replace("&", "&amp;").replace("[", "&#91;").replace("]", "&#93;")
                .replace("{", "&#123;").replace("}", "&#125;").replace("'", "&#39;")
                .replace("<", "&lt;").replace("|", "&#124;").replace("-", "&#45;"))
    return NOWIKI_SELF.sub("", NOWIKI.sub(esc, text))


def _lines(text: str, opts: CleanOptions, counts: Counter) -> str:
    """One output line per paragraph, list item or kept heading; blank lines between
    paragraphs. MediaWiki renders a single newline inside a paragraph as a space, so the
    lines of one paragraph are joined (`_join`): no line starts with "。" or "，"."""
    out: list[str] = []
    in_paragraph = False            # whether out[-1] is a paragraph the next line continues
    for line in text.split("\n"):
        h = HEADING.match(line) if line.startswith("=") else None
        if h:
            if opts.keep_headings and h.group(2).strip("= "):
                out.append("")
                out.append(h.group(2).strip())
            else:
                counts["headings"] += 1
                out.append("")           # a heading still ends a paragraph
            in_paragraph = False
            continue
        s = line.strip()
        if not s or s.startswith(("|", "!", "----")) and not s.startswith("!!"):
            out.append("")
            in_paragraph = False
            continue
        if s[0] in "*#:;":               # a list item is a line of its own
            out.append(LIST_MARK.sub("", s))
            in_paragraph = False
        elif in_paragraph:
            out[-1] = _join(out[-1], s)
        else:
            out.append(s)
            in_paragraph = True
    return "\n".join(out)


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef"


def _join(left: str, right: str) -> str:
    """Two lines of one paragraph: nothing next to CJK text or before closing punctuation
    (a browser shows the newline as nothing there, CSS Text's segment-break rule), a space
    elsewhere."""
    if not left or not right:
        return left + right
    if _is_cjk(left[-1]) or _is_cjk(right[0]) or right[0] in CLOSING_PUNCT:
        return left + right
    return f"{left} {right}"


def _tidy(text: str) -> str:
    for odd, plain in ODD_SPACES:       # str.replace beats str.translate on non-ASCII text
        if odd in text:
            text = text.replace(odd, plain)
    text = SPACES.sub(" ", text.replace(LINE_BREAK, "\n"))
    prev = None
    while prev != text:
        prev = text
        text = EMPTY_BRACKETS.sub("", text)
        text = LEAD_PUNCT.sub(r"\1", text)
        text = TRAIL_PUNCT.sub(r"\1", text)
    # a line cannot start with a comma or a full stop: what stood before it (a formula, an
    # unknown template) was dropped
    text = LEAD_LINE_PUNCT.sub("", text)
    lines = [ln.strip() for ln in text.split("\n")]
    lines = [ln for ln in lines if not ln or any(ch.isalnum() for ch in ln)]
    return BLANKS.sub("\n\n", "\n".join(lines)).strip()


def is_disambiguation_text(text: str, lang: Language) -> bool:
    upper = text.upper()
    return any(w.upper() in upper for w in lang.disambig_words)


def clean_wikitext(text: str, lang: Language, opts: CleanOptions = CleanOptions()
                   ) -> tuple[str, Counter, bool]:
    """Plain prose of one article, the counts of what was removed, and whether the page
    turned out to be a disambiguation page (magic word or template)."""
    counts: Counter = Counter()
    disambig = is_disambiguation_text(text, lang) if "__" in text else False
    text, n = COMMENT.subn("", text)
    counts["comments"] += n
    text = _protect_nowiki(text)
    text, n = resolve_converter(text, opts.variant)
    counts["converter_rules"] += n
    text = _tags(text, opts, counts)
    text, tdis = cut_templates(text, lang, counts)
    text = cut_tables(text, counts)
    text, n = cut_sections(text, lang, counts)
    counts["sections"] += n
    text, n = MAGIC.subn("", text)
    counts["magic_words"] += n
    text = cut_links(text, lang, counts)
    text = EXTERNAL.sub(lambda m: m.group(1) or "", text)
    text = QUOTES.sub("", text)
    text = BR.sub(LINE_BREAK, text)
    text, n = ANY_TAG.subn("", text)
    counts["html_tags"] += n
    text = _lines(text, opts, counts)
    text = html.unescape(text)
    return _tidy(text), counts, disambig or tdis


COUNTED = ("templates", "refs", "tables", "files", "categories", "interlanguage_links",
           "comments", "galleries", "math", "code", "converter_rules", "sections",
           "magic_words", "html_tags", "headings", "other", "unclosed_tables")
