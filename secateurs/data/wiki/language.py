"""Localized names a cleaner must recognise: namespaces, redirect and disambiguation words,
trailing section titles.

MediaWiki accepts a namespace by its canonical English name, its local name and any alias
(zhwiki: `File:`, `文件:`, `檔案:`, `图像:` ... all mean namespace 6). A dump's `<siteinfo>`
lists the local names but not the aliases, and some dumps carry a siteinfo of the wrong
wiki (the DBpedia zh minidump wraps a zhwiki page in an enwiki header), so the hard-coded
tables for zh and en are always merged in; siteinfo only adds to them. The zh tables come
from the zhwiki siteinfo API (`namespacealiases`, `magicwords`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

FILE_NS, CATEGORY_NS, TEMPLATE_NS, MEDIA_NS = 6, 14, 10, -2

#: namespace id -> names and aliases (compared case-insensitively, "_" read as " ").
BUILTIN_NAMESPACES: dict[str, dict[int, tuple[str, ...]]] = {
    "en": {
        MEDIA_NS: ("Media",),
        FILE_NS: ("File", "Image"),
        TEMPLATE_NS: ("Template", "T"),
        CATEGORY_NS: ("Category", "CAT"),
    },
    "zh": {
        MEDIA_NS: ("媒体", "媒体文件", "媒体档案", "媒體", "媒體文件", "媒體檔案"),
        FILE_NS: ("文件", "档案", "檔案", "图像", "圖像", "图片", "圖片"),
        TEMPLATE_NS: ("模板", "样板", "樣板"),
        CATEGORY_NS: ("分类", "分類"),
    },
}

#: `#REDIRECT` in every language (MediaWiki magic word "redirect").
BUILTIN_REDIRECTS: dict[str, tuple[str, ...]] = {
    "en": ("#REDIRECT",),
    "zh": ("#重定向", "#重新導向", "#重新导向"),
}

#: magic word "disambiguation" (Extension:Disambiguator).
BUILTIN_DISAMBIG_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("__DISAMBIG__",),
    "zh": ("__消除歧义__", "__消除歧義__", "__消歧义__", "__消歧義__"),
}

#: templates that mark a page as a disambiguation page (older dumps predate the magic word).
BUILTIN_DISAMBIG_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": ("disambig", "disambiguation", "dab", "disamb", "hndis", "geodis", "set index article",
           "sia", "given name", "surname", "hospital disambiguation", "school disambiguation",
           "letter-number combination disambiguation", "mil-unit-dis", "numberdis", "shipindex",
           "species latin name disambiguation", "disambiguation cleanup", "call sign disambiguation",
           "roaddis", "mathdab", "place name disambiguation", "human name disambiguation"),
    "zh": ("消歧义", "消歧義", "消除歧义", "消除歧義", "disambig", "dab", "重定向消歧义",
           "人名消歧义", "人名消歧義", "地名消歧义", "地名消歧義", "消歧义页", "消歧義頁"),
}

#: sections at the end of an article that hold no prose (zhwiki and enwiki conventions,
#: Manual of Style/Layout "Standard appendices"). zh titles are listed in Simplified script:
#: a title is folded to it (`fold_title`) before it is looked up, so 參見, 参見 and 参见 match.
BUILTIN_TRAILING_SECTIONS: dict[str, tuple[str, ...]] = {
    "en": ("references", "notes", "footnotes", "citations", "sources", "bibliography",
           "external links", "see also", "further reading", "notes and references",
           "references and notes", "works cited", "other websites", "related pages",
           "external link", "reference", "note", "general references", "explanatory notes",
           "reference notes", "cited sources", "works consulted", "primary sources",
           "secondary sources", "online sources", "sources and further reading",
           "notes and citations", "citations and notes", "selected bibliography"),
    "zh": ("参考文献", "参考资料", "参考来源", "参考", "注释", "注解", "脚注", "注脚", "注记",
           "附注", "备注", "来源", "资料来源", "外部链接", "外部连结", "外部连接", "外部链结",
           "相关链接", "站外链接", "外部网站", "相关网站", "参考网址", "参考网站",
           "参见", "参看", "相关条目", "延伸阅读", "扩展阅读", "扩充阅读", "进阶阅读", "延申阅读",
           "参考书目", "书目", "研究书目", "参考书籍", "引用", "引用文献", "注释与参考"),
}
#: what joins two appendix titles into one ("註釋及参考資料", "Notes and references")
TITLE_JOINERS = re.compile(r"\s*(?:及|与|和|暨|、|/|&|\band\b|,)\s*")

_DBNAME = re.compile(r"^([a-z][a-z0-9_-]*?)wiki$")


def normalize_name(name: str) -> str:
    """MediaWiki compares namespace names case-insensitively with `_` equal to space."""
    return " ".join(name.replace("_", " ").split()).casefold()


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc  # the data stage's converter (wiki_convert); loaded once, only when needed

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=4096)
def fold_title(title: str) -> str:
    """A section title in one script and case, for lookup: real zhwiki titles mix scripts
    (参見, 註釋及参考資料), so they are converted to Simplified first."""
    name = normalize_name(title)
    if any("\u3400" <= ch <= "\u9fff" for ch in name):
        name = _t2s().convert(name).replace(" ", "")
    return name


def is_trailing_title(folded: str, titles: frozenset[str]) -> bool:
    """A listed appendix title, or several joined (注释及参考资料, notes and references)."""
    if folded in titles:
        return True
    parts = [p for p in TITLE_JOINERS.split(folded) if p]
    return len(parts) > 1 and all(p in titles for p in parts)


@dataclass(frozen=True)
class Language:
    """What the cleaner and the page filter need to know about one wiki's language."""

    code: str
    namespaces: dict[int, frozenset[str]] = field(default_factory=dict)
    redirect_words: tuple[str, ...] = ()
    disambig_words: tuple[str, ...] = ()
    disambig_templates: frozenset[str] = frozenset()
    trailing_sections: frozenset[str] = frozenset()
    base_url: str = ""

    def namespace_of(self, prefix: str) -> int | None:
        """The namespace id a link prefix such as `檔案` or `category` names, or None."""
        key = normalize_name(prefix)
        for ns, names in self.namespaces.items():
            if key in names:
                return ns
        return None

    def url(self, page_id: int) -> str:
        return f"{self.base_url}/wiki?curid={page_id}"


def code_from_siteinfo(siteinfo: dict) -> str | None:
    """`zhwiki` -> `zh`; falls back to the `<mediawiki xml:lang>` attribute."""
    m = _DBNAME.match(siteinfo.get("dbname") or "")
    if m:
        return m.group(1).replace("_", "-")
    return siteinfo.get("lang")


def build_language(code: str | None, siteinfo: dict | None = None) -> Language:
    """Merge the built-in tables (every language, so a mislabelled dump still cleans) with
    the names the dump's own `<siteinfo>` lists."""
    siteinfo = siteinfo or {}
    code = code or code_from_siteinfo(siteinfo) or "zh"
    namespaces: dict[int, set[str]] = {}
    for table in BUILTIN_NAMESPACES.values():
        for ns, names in table.items():
            namespaces.setdefault(ns, set()).update(normalize_name(n) for n in names)
    for ns, name in (siteinfo.get("namespaces") or {}).items():
        if name:
            namespaces.setdefault(int(ns), set()).add(normalize_name(name))
    merged = lambda tables: tuple(dict.fromkeys(w for t in tables.values() for w in t))  # noqa: E731
    base = siteinfo.get("base_url") if code == code_from_siteinfo(siteinfo) else None
    return Language(
        code=code,
        namespaces={ns: frozenset(names) for ns, names in namespaces.items()},
        redirect_words=merged(BUILTIN_REDIRECTS),
        disambig_words=merged(BUILTIN_DISAMBIG_WORDS),
        disambig_templates=frozenset(normalize_name(t) for t in merged(BUILTIN_DISAMBIG_TEMPLATES)),
        trailing_sections=frozenset(fold_title(t) for t in merged(BUILTIN_TRAILING_SECTIONS)),
        base_url=base or f"https://{code}.wikipedia.org",
    )
