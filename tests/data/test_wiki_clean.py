"""Wikitext cleaning on small inline fixtures: every construct the issue lists."""

from secateurs.data.wiki.clean import CleanOptions, clean_wikitext
from secateurs.data.wiki.converter import resolve_converter
from secateurs.data.wiki.language import build_language
from secateurs.data.wiki.residue import find_residue

ZH = build_language("zh")
EN = build_language("en")


def clean(text, lang=ZH, **kw):
    out, counts, disambig = clean_wikitext(text, lang, CleanOptions(**kw))
    assert not find_residue(out), find_residue(out)
    return out, counts, disambig


def test_templates_refs_tables_removed_and_counted():
    text = ("{{Infobox city|name=柏林|pop={{formatnum:3500000}}|x={{{1|}}}}}\n"
            "'''柏林'''（{{IPA-de|bɛʁˈliːn}}）是[[德國]]的首都<ref name=a>{{cite web|url=x}}</ref>。"
            "人口多<ref name=a/>。\n{| class=wikitable\n|-\n| 表格 || 内容\n|}\n下一段。")
    out, counts, _ = clean(text)
    assert out == "柏林是德國的首都。人口多。\n\n下一段。"
    assert counts["templates"] == 2 and counts["refs"] == 2 and counts["tables"] == 1


def test_nested_template_closing_runs():
    out, *_ = clean("A{{small|{{native name|ar|{{noitalic|x}}}}}}B {{a|{{{1}}}}}C")
    assert out == "AB C"


def test_prose_templates_keep_their_text():
    out, *_ = clean("柏林（{{lang-de|Berlin}}）由{{link-en|米夏埃尔·穆勒|Michael Müller}}领导，"
                    "面积{{convert|891|km2}}。")
    assert out == "柏林（Berlin）由米夏埃尔·穆勒领导，面积891 km2。"


def test_links_files_categories_interlanguage():
    text = ("[[File:Berlin.jpg|thumb|柏林的[[勃兰登堡门]]\n夜景]]见[[柏林墙|墙]]与[[汉堡]]。"
            "[[:Category:城市]]\n[[分類:德國城市]]\n[[Category:Berlin]]\n[[檔案:x.png|縮圖]]\n[[de:Berlin]]")
    out, counts, _ = clean(text)
    assert out == "见墙与汉堡。Category:城市"
    assert counts["files"] == 2 and counts["categories"] == 2 and counts["interlanguage_links"] == 1


def test_pipe_trick_external_links_formatting_and_tags():
    text = ("'''Berlin''' is in [[Germany (country)|]]. See [https://berlin.de the site] "
            "[https://x.org] and <span style=\"x\">kept</span> H<sub>2</sub>O.<br/>Next")
    out, *_ = clean(text, EN)
    assert out == "Berlin is in Germany. See the site and kept H2O.\nNext"


def test_unclosed_link_and_stray_brackets():
    out, *_ = clean("* [[A]], [[B\n* [[C]] and x]] y", EN)
    assert out == "A, B\nC and x y"


def test_trailing_sections_dropped_in_zh_and_en():
    zh = "正文。\n== 历史 ==\n历史正文。\n== 参考文献 ==\n* 书\n=== 子 ===\n子\n== 外部連結 ==\n* 链接"
    out, counts, _ = clean(zh)
    assert out == "正文。\n\n历史正文。"
    assert counts["sections"] == 2
    en = "Body.\n==See also==\n* [[X]]\n== References ==\n{{reflist}}\n== Further reading ==\n* b"
    assert clean(en, EN)[0] == "Body."


def test_headings_kept_as_lines_when_asked():
    text = "甲。\n== 历史 ==\n乙。"
    assert clean(text)[0] == "甲。\n\n乙。"
    assert clean(text, keep_headings=True)[0] == "甲。\n\n历史\n乙。"


def test_math_and_code_configurable():
    text = "设<math>x^2</math>为平方，代码<code>print(1)</code>见上。"
    assert clean(text)[0] == "设为平方，代码见上。"
    assert clean(text, keep_math=True, keep_code=True)[0] == "设x^2为平方，代码print(1)见上。"


def test_comments_magic_words_galleries_nowiki():
    text = "__NOTOC__甲<!-- hidden -->乙\n<gallery>\nA.jpg|a\n</gallery>\n丙<nowiki>''字面''</nowiki>"
    out, counts, _ = clean(text)
    assert out == "甲乙\n\n丙''字面''"
    assert counts["comments"] == 1 and counts["magic_words"] == 1 and counts["galleries"] == 1


def test_converter_markup_variants_and_rules():
    text = ("{{NoteTA|G1=IT|1=zh-hans:软件; zh-hant:軟體;}}-{H|zh-hans:内存;zh-hant:記憶體;}-"
            "德国十六个[[联邦州 (德国)|-{zh-hans:联邦州; zh-hant:邦}-]]之一，-{A|zh-cn:网络;zh-tw:網路}-与-{Linux}-。")
    out, counts, _ = clean(text)
    assert out == "德国十六个联邦州之一，网络与Linux。"
    assert counts["converter_rules"] >= 2
    assert clean(text, variant="zh-hant")[0] == "德国十六个邦之一，網路与Linux。"


def test_converter_fallback_chain_and_raw():
    assert resolve_converter("-{zh-cn:A;zh-tw:B}-", "zh-hans")[0] == "A"
    assert resolve_converter("-{zh-hk:C;zh-cn:A}-", "zh-hant")[0] == "C"
    assert resolve_converter("-{R|zh-hans:x}-", "zh-hant")[0] == "zh-hans:x"
    assert resolve_converter("-{T|zh-hans:t;zh-hant:T}-x", "zh-hans") == ("x", 1)


def test_disambiguation_by_magic_word_and_template():
    assert clean("'''甲'''可以指：\n* [[甲 (人)]]\n__消除歧义__")[2]
    assert clean("'''A''' may refer to:\n* [[A (b)]]\n{{disambig}}", EN)[2]
    assert clean("'''甲'''可以指：\n{{消歧義}}")[2]
    assert not clean("'''甲'''是字。{{Infobox}}")[2]



def test_unlisted_file_alias_recognised_by_extension_and_html_tables_dropped():
    text = ("[[Attēls:Puma.jpg|thumb|250px|''Puma'' karte]]Puma irā zviers.\n"
            "<table><tr><td; align=center colspan=2>x</td></tr></table>\nBeigas.")
    out, counts, _ = clean(text, EN)
    assert out == "Puma irā zviers.\n\nBeigas."
    assert counts["files"] == 1 and counts["tables"] == 1


# --- issue 13: content real pages carry ---------------------------------------------------

def test_appendix_titles_in_mixed_scripts_and_unlisted_forms_are_dropped_and_counted():
    titles = ["參見", "参見", "註釋及参考資料", "书目", "研究書目", "參考網址", "注記", "延伸閱讀"]
    text = "正文。\n" + "".join(f"== {t} ==\n* 一项\n" for t in titles)
    out, counts, _ = clean(text)
    assert out == "正文。"
    assert counts["sections"] == len(titles)
    assert counts["section:参见"] == 2 and counts["section:注释及参考资料"] == 1
    assert counts["section:研究书目"] == 1 and counts["section:延伸阅读"] == 1
    en = "Body.\n== Notes and references ==\n* a\n== General references ==\n* b\n== Legacy ==\nKept."
    out, counts, _ = clean(en, EN)
    assert out == "Body.\n\nKept." and counts["section:notes and references"] == 1


def test_quotation_templates_keep_their_paragraphs():
    text = ("他说：\n{{quote|text=知识就是力量，{{lang|en|knowledge is power}}。|培根}}\n"
            "{{Quote box|quote=第二段引文。|source=某书|width=30%}}\n"
            "{{cquote|第三段引文。}}{{blockquote|第四段引文。}}\n{{引文|第五段引文。}}\n后文。")
    out, *_ = clean(text)
    assert out.split("\n\n") == ["他说：", "知识就是力量，knowledge is power。", "第二段引文。",
                                 "第三段引文。", "第四段引文。", "第五段引文。", "后文。"]
    assert "培根" not in out and "某书" not in out


def test_inline_templates_keep_words_and_numbers():
    text = ("人口约{{formatnum:3500000}}万人，高{{nowrap|{{convert|{{formatnum:1200}}|m}}}}，"
            "由{{link-en|米夏埃尔·穆勒|Michael Müller}}领导{{!}}{{lang|de|[[Berlin|柏林]]}}。")
    out, *_ = clean(text)
    assert out == "人口约3,500,000万人，高1,200 m，由米夏埃尔·穆勒领导|柏林。"
    out, *_ = clean("Intro.\n\n{{As of|2021|3}}, there are 422 stores.\n\n<math>x</math>, which is odd.", EN)
    assert out == "Intro.\n\nAs of March 2021, there are 422 stores.\n\nwhich is odd."


def test_paragraph_lines_are_joined_as_mediawiki_renders_them():
    text = ("柏林是德国首都\n，也是最大城市\n。人口众多。\nBerlin is\nbig.\n\n第二段。\n"
            "* 列表一\n* 列表二\n第三段<br/>换行。")
    out, *_ = clean(text)
    assert out == "柏林是德国首都，也是最大城市。人口众多。Berlin is big.\n\n第二段。\n列表一\n列表二\n第三段\n换行。"
    assert not any(line.startswith(("。", "，")) for line in out.split("\n"))


def test_unclosed_table_does_not_swallow_the_article():
    text = "前文。\n{| class=wikitable\n|-\n| 甲 || 乙\n\n後文段落。\n== 历史 ==\n历史正文。"
    out, counts, _ = clean(text)
    assert out == "前文。\n\n後文段落。\n\n历史正文。"
    assert counts["unclosed_tables"] == 1 and counts["tables"] == 1
    never = "前文。\n{|\n| 甲\n|-\n| 乙\n\n末段。"             # never closed, at the end
    out, counts, _ = clean(never)
    assert out == "前文。\n\n末段。" and counts["unclosed_tables"] == 1
    html = "前文。\n{|\n| 甲\n</table>\n後文。"                  # closed by </table>
    out, counts, _ = clean(html)
    assert out == "前文。\n\n後文。" and counts["unclosed_tables"] == 0
