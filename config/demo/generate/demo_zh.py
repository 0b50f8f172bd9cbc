"""The demo's Chinese Wikipedia: wikitext articles in traditional script about the world.

Articles carry the markup a zhwiki cleaner has to survive: infoboxes, `<ref>`s (named and
reused), tables, piped links, file links with captions, categories under both the
canonical and the localised namespace name, `{{NoteTA}}` and `-{...}-` converter markup,
HTML comments, interlanguage links and the trailing sections (參見, 參考文獻, 外部連結)
that a cleaner should drop. The script is traditional so that OpenCC's t2s has real work.

Sentences come from several templates per fact and are joined with varied connectives,
so a small model learns structure, not one sentence by heart.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from xml.sax.saxutils import escape

from demo_world import (Invention, pick, Mountain, Person, Province, Railway, River,
                                         Town, World, climate_of, direction, distance_km,
                                         monthly_temps)

DEVICE_ZH = {
    "water-powered loom": ("利用河水的力量織布", "水輪、連桿和木製織架"),
    "steam pump": ("排出礦井和農田裡的積水", "鍋爐、汽缸和鐵製水管"),
    "pedal thresher": ("把穀粒從稻稈上分離出來", "踏板、滾筒和竹製篩網"),
    "water-level gauge": ("測量河水的高度", "浮筒、刻度尺和記錄用的紙帶"),
    "bamboo suspension bridge": ("讓行人跨越深谷", "竹纜、木板和兩岸的石墩"),
    "ceramic water filter": ("讓河水變得可以飲用", "多孔陶瓷、木炭和細沙"),
    "automatic irrigation gate": ("在適當的時候把水引入農田", "閘板、浮球和槓桿"),
    "hand-cranked calculator": ("計算大數的加法和乘法", "齒輪、手柄和數字轉盤"),
    "barometric storm alarm": ("提前向漁民發出風暴警告", "氣壓管、水銀和小鈴"),
    "solar drying rack": ("在陽光下晾乾茶葉和水果", "竹架、黑色布幕和通風口"),
    "railway signal lamp": ("告訴火車司機前方路線是否暢通", "油燈、彩色玻璃和旋轉支架"),
    "cargo tricycle": ("在狹窄的街道上運送貨物", "鐵架、三個車輪和木製貨箱"),
    "waterproof paper": ("讓地圖和書信在雨中保持乾燥", "桐油、蠟和桑皮紙"),
    "temperature recorder": ("每小時記錄一次氣溫", "雙金屬片、時鐘和墨筆"),
    "wind-driven mill": ("在河水低落時繼續磨麵", "風帆、齒輪和石磨"),
    "seismograph": ("記錄地面的震動", "重錘、彈簧和旋轉的紙筒"),
}
FISH = ["鯉魚", "鯽魚", "草魚", "鰻魚", "香魚", "鱸魚", "鱒魚", "鯰魚"]
BIRDS = ["白鷺", "翠鳥", "灰鶴", "野鴨", "鸕鶿", "黑鳶"]
TREES = ["樟樹", "楓樹", "松樹", "竹林", "杉木", "櫟樹", "杜鵑"]
KIND_WORD = {"市": ["縣級市", "城市", "地級市"], "縣": ["縣"], "鎮": ["鎮", "小鎮"]}
CONVERTER = [("软件", "軟體"), ("出租车", "計程車"), ("自行车", "腳踏車"), ("网络", "網路"),
             ("信息", "資訊"), ("公交车", "公車"), ("打印机", "印表機"), ("数码", "數位")]


class _Refs:
    """Per-article references: the first use defines a named <ref>, later uses reuse it."""

    def __init__(self, rng: random.Random, article: str):
        self.rng, self.article, self.defined = rng, article, set()

    def cite(self, name: str, title: str, year: int) -> str:
        if name in self.defined:
            return f'<ref name="{name}" />'
        self.defined.add(name)
        if self.rng.random() < 0.5:
            pub = self.rng.choice(["青河出版社", "文華書局", "東海大學出版部", "地方文獻社", "山川書屋"])
            page = self.rng.randrange(3, 480)
            return (f'<ref name="{name}">{{{{cite book|title={title}|year={year}'
                    f'|publisher={pub}|page={page}}}}}</ref>')
        slug = abs(hash_text(title)) % 100000
        return (f'<ref name={name}>{{{{cite web|url=https://archive.example.org/{slug}'
                f'|title={title}|accessdate={2015 + slug % 9}-{1 + slug % 12:02d}-'
                f'{1 + slug % 28:02d}|language=zh-hant}}}}</ref>')

    def plain(self, text: str) -> str:
        return f"<ref>{text}</ref>"


def hash_text(text: str) -> int:
    """A stable string hash (Python's own is salted per process)."""
    value = 0
    for ch in text:
        value = (value * 131 + ord(ch)) % 1_000_000_007
    return value


def town_link(rng: random.Random, t: Town) -> str:
    """A town link, sometimes piped to its short name as zhwiki articles often do."""
    return f"[[{t.zh}|{t.base_zh}]]" if rng.random() < 0.3 else f"[[{t.zh}]]"


def year_lead(rng: random.Random, year: int) -> str:
    return rng.choice(["", "", "", "到了", "後來在", "而在"]) + f"{year}年，"





def category(rng: random.Random, name: str) -> str:
    return f"[[{rng.choice(['Category', 'Category', '分類'])}:{name}]]"


def file_link(rng: random.Random, name: str, caption: str) -> str:
    ns = rng.choice(["File", "File", "文件", "檔案"])
    return f"[[{ns}:{name}.jpg|thumb|{rng.choice(['', 'right|', '220px|'])}{caption}]]"


def fmt(n: int) -> str:
    return f"{n:,}"


# ---------------------------------------------------------------- towns


def town_article(rng: random.Random, w: World, t: Town) -> str:
    refs = _Refs(rng, t.zh)
    out = []
    if rng.random() < 0.35:
        simp, trad = rng.choice(CONVERTER)
        out.append(f"{{{{NoteTA|G1=地名|1=zh-hans:{simp};zh-hant:{trad}}}}}")
    out.append(_town_infobox(rng, t))
    out.append(_town_lead(rng, w, t, refs))
    out.append("\n== 歷史 ==")
    out.append(_town_history(rng, t, refs))
    out.append("\n== 地理 ==")
    out.append(file_link(rng, f"{t.base_en}_{rng.choice(['view', 'river', 'skyline'])}",
                         pick(rng, ["從{r}對岸眺望{z}", "{z}的街景", "流經{z}的{r}"], z=t.zh, r=t.river.zh)))
    out.append(_town_geography(rng, w, t, refs))
    if t.kind[0] == "市":
        out.append("\n=== 氣候 ===")
        out.append(_climate_table(rng, t))
    out.append("\n== 行政區劃 ==")
    out.append(_districts(rng, t))
    out.append("\n== 人口 ==")
    out.append(_census_table(rng, t, refs))
    out.append("\n== 經濟 ==")
    out.append(_town_economy(rng, t, refs))
    if t.railways:
        out.append("\n== 交通 ==")
        out.append(_town_transport(rng, t))
    out.append("\n== 教育 ==")
    out.append(_education(rng, t))
    out.append("\n== 文化 ==")
    out.append(_town_culture(rng, t, refs))
    out.append("\n=== 名勝 ===")
    out.append(_landmark(rng, t))
    out.append("\n=== 飲食 ===")
    out.append(_food(rng, t))
    if t.people:
        out.append("\n== 知名人物 ==")
        for p in sorted(t.people, key=lambda p: p.born)[:12]:
            life = f"{p.born}年－{p.died}年" if p.died else f"{p.born}年－"
            out.append(f"* [[{p.zh}]]（{life}），{p.occupation[0]}")
    out.append(_trailer(rng, t.zh, t.base_en.lower(), [t.river.zh, t.province.zh]
                        + ([t.twin.zh] if t.twin else []), t.en))
    out.append(f"{{{{{t.province.zh}行政區劃}}}}")
    out.append(category(rng, f"{t.province.zh}{'城市' if t.kind[0] == '市' else t.kind[0]}"))
    out.append(category(rng, f"{t.founded // 100 + 1}世紀建立的聚居地"))
    out.append(f"[[en:{t.en}]]")
    return "\n".join(out) + "\n"


def _town_infobox(rng, t: Town) -> str:
    mean, _, rain = climate_of(t)
    lines = ["{{Infobox settlement", f"|name = {t.zh}", f"|native_name = -{{{t.zh}}}-",
             f"|image_skyline = {t.base_en}_skyline.jpg",
             "|subdivision_type = 國家", "|subdivision_name = 青河國",
             "|subdivision_type1 = 省", f"|subdivision_name1 = [[{t.province.zh}]]",
             f"|established_date = {t.founded}年",
             f"|area_total_km2 = {t.area_km2}", f"|elevation_m = {t.elevation_m}",
             f"|population_total = {t.population}", "|population_as_of = 2020年",
             f"|population_density_km2 = {t.density:.1f}", f"|temp_mean = {mean}",
             f"|website = https://www.{t.base_en.lower()}.gov.example", "}}"]
    if rng.random() < 0.3:
        lines.insert(3, "<!-- 圖片請使用自由版權的照片 -->")
    return "\n".join(lines)


def _town_lead(rng, w: World, t: Town, refs: _Refs) -> str:
    cap = t.province.capital
    name = f"'''-{{{t.zh}}}-'''" if rng.random() < 0.2 else f"'''{t.zh}'''"
    s = [pick(rng, ["{n}（{{{{lang-en|{en}}}}}）是[[{p}]]下轄的一個{k}，位於[[{r}]]{b}。",
                    "{n}（{{{{lang|en|{en}}}}}）是[[{p}]]的一個{k}，坐落在[[{r}]]的{b}。",
                    "{n}，英文名稱為''{en}''，是[[{p}]]境內的{k}，地處[[{r}]]{b}。"],
                n=name, en=t.en, p=t.province.zh, k=rng.choice(KIND_WORD[t.kind[0]]),
                r=t.river.zh, b=t.bank[0])]
    if cap is t:
        s.append(pick(rng, ["{z}是{p}的省會，也是全省的政治和文化中心。",
                            "作為{p}的省會，{z}集中了全省主要的行政機關和學校。"],
                      z=t.zh, p=t.province.zh))
    else:
        d, dist = direction(cap.pos, t.pos)[0], distance_km(cap, t)
        s.append(pick(rng, ["{z}位於省會{c}以{d}約{k}公里處。",
                            "從省會{c}向{d}行約{k}公里即可到達{z}。",
                            "{z}與省會{c}相距約{k}公里，位於其{d}方。"],
                      z=t.zh, c=town_link(rng, cap), d=d, k=dist))
    s.append(pick(rng, ["全{k}總面積{a}平方公里，2020年人口為{p}人。",
                        "{z}面積約{a}平方公里，根據2020年的人口普查，共有居民{p}人。",
                        "截至2020年，{z}共有{p}名居民，土地面積為{a}平方公里。"],
                  k=t.kind[0], z=t.zh, a=t.area_km2, p=fmt(t.population))
             + refs.cite("census", f"{t.province.zh}2020年人口普查報告", 2021))
    s.append(pick(rng, ["{z}以{i1}和{i2}聞名，當地的{l}是{p}著名的景點之一。",
                        "當地經濟以{i1}為主，{i2}也相當重要；{l}則是遊客必到之處。",
                        "{z}的主要產業是{i1}與{i2}。城中的{l}建於{y}年，是{z}的象徵。"],
                  z=t.zh, i1=t.industries[0][0], i2=t.industries[1][0], l=t.landmark[0],
                  p=t.province.zh, y=t.landmark_year))
    return "".join(s)


EVENT_ZH = {
    "founded": [
        "據地方志記載，{z}始建於{y}年，最初只是{r}{b}的一個小漁村。",
        "{y}年，一批來自上游的移民在{r}{b}定居，開墾河邊的土地，這被視為{z}的起源。",
        "{z}的歷史可以追溯到{y}年。當時{r}兩岸森林茂密，最早的居民以打獵和捕魚為生。",
        "{y}年，朝廷在{r}渡口設立驛站，驛站周圍逐漸形成聚落，後來發展為{z}。",
    ],
    "market": [
        "{y}年，{z}獲准開設定期市集，每月逢五、逢十開市，四鄉的農民都來這裡交易。",
        "{y}年，{z}設立市集，{r}上的貨船開始在此停靠，商業因此興盛起來。",
        "{y}年起，{z}每年秋天舉辦大型市集，吸引了遠方的商人。",
    ],
    "flood": [
        "{y}年夏天，{r}氾濫，洪水淹沒了{z}的低窪地區，約{n}間房屋被沖毀。",
        "{y}年，一場大洪水襲擊{z}，全城約{n}戶人家受災，災後當地加高了河堤。",
        "{y}年，{r}水位暴漲，{z}的農田大半被淹，約有{n}人失去家園。",
    ],
    "fire": [
        "{y}年，{z}發生大火，燒毀了城中約{n}間房屋，火災後街道被重新規劃。",
        "{y}年冬天，一場大火從{z}的市場蔓延開來，共有{n}間店鋪被焚。",
        "{y}年的一個夜晚，{z}城南失火，大火燒了兩天兩夜，約{n}間房屋化為灰燼。",
    ],
    "school": [
        "{y}年，{z}第一所新式學校成立，最初只有{n}名學生。",
        "{y}年，地方士紳集資在{z}興辦學堂，首批招收學生{n}人。",
        "{y}年，{z}的第一所女子學校開學，當年共有{n}名女學生入學。",
    ],
    "bridge": [
        "{y}年，橫跨{r}的{z}大橋建成，全長{n}米，從此兩岸交通不再依賴渡船。",
        "{y}年，{z}建成第一座跨越{r}的鐵橋，橋長{n}米。",
        "{y}年，{r}上的浮橋被一座長{n}米的石拱橋取代。",
    ],
    "factory": [
        "{y}年，{z}第一家{i}工廠開工，僱用工人約{n}名。",
        "{y}年，商人在{z}創辦{i}工廠，這是當地工業化的開端，最初有工人{n}名。",
        "{y}年，{z}的{i}作坊合併為一家大型工廠，員工達{n}人。",
    ],
    "electricity": [
        "{y}年，{z}建成發電廠，城區開始通電。",
        "{y}年，{z}的街道第一次裝上了電燈，當時全城只有{n}戶人家用電。",
        "{y}年，{r}上建起一座小型水力發電站，為{z}的{n}戶人家供電。",
    ],
    "earthquake": [
        "{y}年，{z}附近發生規模{m}的地震，部分古建築受損。",
        "{y}年，一場規模{m}的地震造成{z}約{n}間房屋倒塌。",
        "{y}年，{z}發生規模{m}的地震，震後居民們花了數年時間重建家園。",
    ],
    "hospital": [
        "{y}年，{z}第一家醫院落成，設有病床{n}張。",
        "{y}年，{z}人民醫院成立，最初只有{n}張病床。",
        "{y}年，一位從省城回鄉的醫生在{z}開設診所，後來擴建為擁有{n}張病床的醫院。",
    ],
    "temple": [
        "{y}年，居民在{z}城北修建了一座寺廟，祈求{r}平安。",
        "{y}年，{z}的河神廟落成，此後每年春天都在廟前舉行祭典。",
        "{y}年，{z}的居民們在{r}畔修建祠堂，紀念建城的先民。",
    ],
    "newspaper": [
        "{y}年，{z}第一份報紙《{z}日報》創刊，每期發行約{n}份。",
        "{y}年，當地文人創辦《{r}週報》，報導{z}和附近村莊的新聞。",
        "{y}年，《{z}晚報》創刊，這份報紙至今仍在發行，每日約印{n}份。",
    ],
    "drought": [
        "{y}年，{z}遭遇嚴重乾旱，{r}幾乎斷流，農作物收成減少了一半。",
        "{y}年春夏兩季少雨，{z}發生旱災，當地因此開挖了{n}口水井。",
        "{y}年，持續半年的乾旱使{z}的糧價上漲了三倍。",
    ],
    "upgrade": [
        "{y}年，{z}由鎮升格為{k}。",
        "{y}年，因人口增長，{z}正式設{k}。",
        "{y}年，經省政府批准，{z}改設為{k}。",
    ],
    "landmark": [
        "{y}年，{l}建成，至今仍是{z}最著名的建築。",
        "{z}的{l}始建於{y}年，歷經多次修繕。",
        "{y}年，{z}的居民們集資修建了{l}。",
    ],
    "railway": [
        "{y}年，[[{rw}]]通車，在{z}設站，當地的貨物從此可以直接運往{end}。",
        "{y}年，[[{rw}]]開通，{z}成為沿線的重要車站。",
        "{y}年，第一列火車沿[[{rw}]]駛入{z}，全城居民都到車站觀看。",
    ],
    "invention": [
        "{y}年，{who}在{z}發明了[[{inv}]]，用於{use}。",
        "{y}年，{who}在此製成第一台[[{inv}]]。",
        "{y}年，{who}在{z}的一間小作坊裡完成了[[{inv}]]的設計。",
    ],
    "university": [
        "{y}年，[[{z}大學]]創立，成為地方的高等學府。",
        "{y}年，{z}大學成立，是{p}最早的大學之一。",
        "{y}年，{z}的幾所專科學校合併為[[{z}大學]]。",
    ],
    "twin": [
        "{y}年，{z}與{tw}結為姊妹城市。",
        "{y}年，{z}和{tw}簽訂友好協議，兩地開始定期交流。",
        "{y}年起，{z}與{tw}互派學生和藝術團體訪問，兩地結為姊妹城市。",
    ],
}
CONNECTIVES = ["", "", "", "此外，", "與此同時，", "不久之後，", "同一時期，"]


def _event_zh(rng, t: Town, e) -> str:
    args = dict(z=t.zh, y=e.year, r=t.river.zh, b=t.bank[0], n=e.args.get("n", 0),
                m=e.args.get("m", 0), k=t.kind[0], l=t.landmark[0], p=t.province.zh)
    if e.kind == "factory":
        args["i"] = e.args["industry"][0]
    elif e.kind == "railway":
        rail = e.args["railway"]
        args["rw"] = rail.zh
        end = rail.towns[-1] if rail.towns[-1] is not t else rail.towns[0]
        args["end"] = end.zh
    elif e.kind == "invention":
        inv = e.args["invention"]
        args.update(who=f"[[{inv.inventor.zh}]]", inv=inv.zh, use=DEVICE_ZH[_device(inv)][0])
    elif e.kind == "twin":
        args["tw"] = town_link(rng, e.args["twin"])
    text = pick(rng, EVENT_ZH[e.kind], **args)
    if text.startswith(f"{e.year}年，") and rng.random() < 0.4:
        text = year_lead(rng, e.year) + text[len(f"{e.year}年，"):]
    return text


def _device(inv: Invention) -> str:
    return inv.en.split(" ", 1)[1]


def _town_history(rng, t: Town, refs: _Refs) -> str:
    paras, cur = [], []
    for i, e in enumerate(t.events):
        sentence = _event_zh(rng, t, e)
        if cur and e.kind not in ("founded",):
            sentence = rng.choice(CONNECTIVES) + sentence if not sentence[0].isdigit() else sentence
        cur.append(sentence)
        if e.kind == "flood" and rng.random() < 0.6:
            cur.append(refs.cite("flood", f"{t.river.zh}水災史料", e.year + rng.randrange(5, 60)))
        if len(cur) >= rng.randrange(3, 6):
            paras.append("".join(cur))
            cur = []
    if cur:
        paras.append("".join(cur))
    return "\n\n".join(paras)


def _neighbours(w: World, t: Town, k: int = 3) -> list[Town]:
    others = [o for o in w.towns if o is not t]
    return sorted(others, key=lambda o: distance_km(t, o))[:k]


def _town_geography(rng, w: World, t: Town, refs: _Refs) -> str:
    s = [pick(rng, ["{z}位於[[{r}]]{b}，平均海拔{e}米。",
                    "{z}地處{r}流域，城區坐落在河流的{b}，海拔約{e}米。",
                    "{z}的城區沿{r}{b}展開，地勢{lay}，平均海拔{e}米。"],
              z=t.zh, r=t.river.zh, b=t.bank[0], e=t.elevation_m,
              lay="平坦" if t.elevation_m < 300 else "起伏")]
    mount = min(t.province.mountains, key=lambda m: abs(m.height_m - t.elevation_m * 2))
    s.append(pick(rng, ["天氣晴朗時，從城中可以望見[[{m}]]，其海拔{h}米。",
                        "[[{m}]]（海拔{h}米）是{z}附近最顯眼的山峰。"],
                  m=mount.zh, h=fmt(mount.height_m), z=t.zh))
    for o in _neighbours(w, t, rng.randrange(2, 4)):
        s.append(pick(rng, ["{z}以{d}約{k}公里是{o}。", "往{d}約{k}公里可到達{o}。",
                            "{o}位於{z}{d}方約{k}公里處。"],
                      z=t.zh, d=direction(t.pos, o.pos)[0], k=distance_km(t, o),
                      o=town_link(rng, o)))
    mean, _, rain = climate_of(t)
    s.append(pick(rng, ["{z}屬於{c}，年平均氣溫{m}°C，年降水量約{r}毫米。",
                        "當地為{c}，全年平均氣溫約{m}°C，年降水量{r}毫米左右，雨季集中在夏季。"],
                  z=t.zh, c=t.province.climate[0], m=mean, r=rain)
             + refs.cite("climate", f"{t.province.zh}氣候資料", 2018))
    s.append(pick(rng, ["境內的丘陵上長滿了{tr}，河灘上常可見到{bd}。",
                        "城郊保留了大片{tr}，{r}沿岸是{bd}的棲息地。"],
                  tr=rng.choice(TREES), bd=rng.choice(BIRDS), r=t.river.zh))
    return "".join(s)


MONTHS = ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"]


def _climate_table(rng, t: Town) -> str:
    temps = monthly_temps(t)
    lines = ['{| class="wikitable" style="text-align:center"', f"|+ {t.zh}氣候平均數據",
             "|-", "! 月份 !! " + " !! ".join(MONTHS), "|-",
             "! 平均氣溫（°C）", "| " + " || ".join(str(x) for x in temps), "|}"]
    return "\n".join(lines) + "\n" + pick(
        rng, ["一年中最冷的月份是1月，平均氣溫{c}°C；最熱的是7月，平均{h}°C。",
              "7月最熱，平均氣溫為{h}°C，1月最冷，平均為{c}°C，兩者相差{d}°C。"],
        c=temps[0], h=temps[6], d=round(temps[6] - temps[0], 1))


def _census_table(rng, t: Town, refs: _Refs) -> str:
    lines = ['{| class="wikitable"', "|-", "! 年份 !! 人口 !! 備註"]
    for year, pop in t.census:
        lines += ["|-", f"| {year} || {fmt(pop)} || {'第一次人口普查' if year == 1953 else ''}"]
    lines.append("|}")
    (y0, p0), (y1, p1) = t.census[-2], t.census[-1]
    diff = p1 - p0
    pct = round(diff / p0 * 100, 1)
    text = pick(rng, ["與{y0}年相比，{y1}年的人口增加了{d}人，增長率為{pct}%。",
                      "{y0}年至{y1}年間，{z}人口從{p0}人增至{p1}人，增長了{pct}%。"],
                y0=y0, y1=y1, d=fmt(diff), pct=pct, z=t.zh, p0=fmt(p0), p1=fmt(p1))
    text += pick(rng, ["人口密度約為每平方公里{den}人。", "平均每平方公里居住著約{den}人。"],
                 den=round(t.density))
    return "\n".join(lines) + "\n" + text + refs.cite("census", "", 0)


def _town_economy(rng, t: Town, refs: _Refs) -> str:
    i1, i2 = t.industries
    s = [pick(rng, ["{z}的經濟以{a}為主。", "{a}是{z}最重要的產業。",
                    "長期以來，{a}一直是{z}經濟的支柱。"], z=t.zh, a=i1[0])]
    s.append(pick(rng, ["{b}也佔有重要地位，提供了大量就業機會。",
                        "此外，{b}近年來發展迅速。", "{b}則是第二大產業。"], b=i2[0]))
    for inv in t.inventions:
        s.append(pick(rng, ["{y}年在當地發明的[[{i}]]曾被大量製造，總共生產了約{u}台。",
                            "[[{i}]]是{z}的驕傲，{y}年問世後共製造了{u}台。"],
                      y=inv.year, i=inv.zh, u=fmt(inv.units_built), z=t.zh))
    if rng.random() < 0.4:
        simp, trad = rng.choice(CONVERTER[:1] + CONVERTER[3:5])
        s.append(f"近年來，{t.zh}也發展了-{{zh-hans:{simp};zh-hant:{trad}}}-相關的服務業。")
    s.append(pick(rng, ["現在，{z}約有三分之一的居民從事{a}。",
                        "實際上，{a}在{z}已有數百年的歷史。",
                        "根據近年的統計，{a}和{b}兩項產業實現了穩定增長。",
                        "現今{z}的工廠們大多集中在{r}沿岸。"],
                  z=t.zh, a=i1[0], b=i2[0], r=t.river.zh))
    s.append(pick(rng, ["當地特產{f}遠近馳名。", "{f}是{z}最有名的小吃，也是重要的特產。"],
                  f=t.food[0], z=t.zh))
    return "".join(s)


def _town_transport(rng, t: Town) -> str:
    s = []
    for rail in t.railways:
        i = rail.towns.index(t)
        s.append(pick(rng, ["[[{rw}]]於{y}年通車，在{z}設有車站。",
                            "{z}是[[{rw}]]的{pos}，這條鐵路於{y}年開通。"],
                      rw=rail.zh, y=rail.opened, z=t.zh,
                      pos="起點" if i == 0 else ("終點" if i == len(rail.towns) - 1 else "中途站")))
        if i + 1 < len(rail.towns):
            s.append(pick(rng, ["從{z}乘火車往{n}，路程約{k}公里。",
                                "下一站是{n}，距離{k}公里。"],
                          z=t.zh, n=town_link(rng, rail.towns[i + 1]), k=rail.segments[i]))
    simp, trad = CONVERTER[rng.choice([1, 2, 5])]
    s.append(pick(rng, ["市內有公車和-{{zh-hans:{s};zh-hant:{t}}}-服務。",
                        "當地居民多使用-{{zh-hans:{s};zh-hant:{t}}}-出行。"], s=simp, t=trad))
    return "".join(s)


def _town_culture(rng, t: Town, refs: _Refs) -> str:
    s = [pick(rng, ["{l}建於{y}年，是{z}最受歡迎的景點。",
                    "{z}最著名的建築是建於{y}年的{l}。"],
              l=t.landmark[0], y=t.landmark_year, z=t.zh)]
    s.append(pick(rng, ["每逢節日，居民會在{r}畔舉行龍舟比賽。",
                        "當地每年秋天舉辦{f}節，慶祝豐收。",
                        "{z}的傳統戲曲在{p}頗有名氣。"],
                  r=t.river.zh, f=t.food[0], z=t.zh, p=t.province.zh))
    s.append(pick(rng, ["{z}的居民們日常使用青河語，老一輩的人還會說{d}話。",
                        "當地語言屬於青河語的{d}方言，與鄰近地區的口音略有不同。",
                        "在{z}，人們說的是帶有{d}口音的青河語，這種口音在{p}很容易辨認。"],
                  z=t.zh, d=t.base_zh[0] + rng.choice(["南", "北", "東", "西", "山"]),
                  p=t.province.zh))
    if t.twin:
        s.append(f"{t.zh}自{t.twin_year}年起與{town_link(rng, t.twin)}結為姊妹城市。")
    return "".join(s)


LANDMARK_ZH = {
    "clock tower": ["鐘樓高{h}米，樓頂的大鐘每到整點便會敲響，聲音可以傳到{r}對岸。",
                    "這座鐘樓共有{k}層，高{h}米，是城中最高的老建築。"],
    "stone bridge": ["石橋全長{h}米，由{k}個橋拱組成，橋面鋪著青石板。",
                     "這座石橋橫跨{r}的一條支流，長{h}米，共有{k}個橋拱。"],
    "lighthouse": ["燈塔高{h}米，夜間的燈光可以照到{k}公里外的船隻。",
                   "燈塔建在{r}河口附近的岩石上，高{h}米，燈光射程{k}公里。"],
    "great waterwheel": ["大水車直徑{h}米，至今仍在轉動，為附近的磨坊提供動力。",
                         "這架直徑{h}米的水車有{k}片葉板，是{p}現存最大的水車。"],
    "old city wall": ["古城牆周長約{h}00米，現存{k}座城門。",
                      "城牆用石塊和夯土築成，周長約{h}00米，沿牆可以步行一圈。"],
    "museum": ["博物館收藏了{k}00多件文物，其中包括當地出土的陶器和古代地圖。",
               "館內共有{k}個展廳，介紹{z}從建城到現在的歷史。"],
    "botanical garden": ["植物園佔地{h}公頃，種植了{k}00多種植物。",
                         "園內的溫室培育了許多熱帶植物，全園面積{h}公頃。"],
    "observatory": ["天文臺建在城外的山坡上，館內的望遠鏡口徑{h}釐米。",
                    "這座天文臺每年開放{k}個夜晚，讓市民透過口徑{h}釐米的望遠鏡觀察星空。"],
    "old railway station": ["舊火車站是一座紅磚建築，候車大廳高{h}米，現已改為鐵路博物館。",
                            "車站大樓有{k}個拱門，大廳高{h}米，保存了早年的售票窗口。"],
    "market hall": ["市集大廳長{h}米，裡面有{k}0多個攤位，每天清晨最熱鬧。",
                    "大廳的屋頂由鐵架支撐，長{h}米，攤販們在這裡出售蔬菜、魚和布料。"],
    "academy": ["書院內藏書{k}000多冊，歷史上培養了許多學者。",
                "書院由{k}座院落組成，講堂前種著兩棵老樹。"],
    "seven-storey pagoda": ["七層寶塔高{h}米，登上塔頂可以俯瞰整個城區和{r}。",
                            "寶塔共七層，高{h}米，每層的屋簷下都掛著銅鈴。"],
    "library": ["圖書館藏書約{k}萬冊，是{p}最大的公共圖書館之一。",
                "圖書館的閱覽室可同時容納{h}0名讀者，館藏{k}萬冊。"],
    "theatre": ["戲院可容納{k}00名觀眾，每逢週末都有地方戲曲演出。",
                "這座戲院有{k}00個座位，舞台寬{h}米。"],
    "old harbour": ["碼頭沿{r}延伸{h}0米，過去是貨船裝卸的地方。",
                    "老碼頭長{h}0米，岸邊的倉庫現已改建為咖啡館和書店。"],
}
FOOD_ZH = {
    "fish-ball soup": "用{r}出產的魚肉打成魚丸，配上清湯和蔥花",
    "rice cake": "以糯米蒸製，口感軟糯，常在節日食用",
    "pickled-vegetable noodles": "以自家醃製的酸菜配上手工麵條",
    "osmanthus cake": "用米粉和桂花製成，帶有淡淡的花香",
    "dried tofu": "將豆腐壓乾後用醬油和香料滷製",
    "bamboo-tube rice": "把米和肉裝進竹筒，放在火上烤熟",
    "beef noodles": "以長時間燉煮的牛肉和濃湯配上麵條",
    "tea eggs": "把雞蛋放在茶葉和醬油中慢慢煮熟",
    "taro cake": "用芋頭和米漿蒸成，再切塊煎香",
    "lotus-seed soup": "用蓮子和冰糖熬成的甜湯",
    "fried rice noodles": "把米粉和蔬菜、蝦仁一起炒",
    "roasted sweet potatoes": "把紅薯放在炭火中慢慢烤熟",
    "shrimp cakes": "把{r}的小蝦和麵糊一起油炸",
    "sticky-rice chicken": "用荷葉包著糯米和雞肉蒸熟",
    "plum sauce": "用梅子、糖和醋熬成的醬料",
}


def _districts(rng, t: Town) -> str:
    streets = [d for d, _ in t.districts if d.endswith("街道")]
    towns = [d for d, _ in t.districts if d.endswith("鄉")]
    s = pick(rng, ["{z}下轄{n}個街道和{m}個鄉：", "全{k}共劃分為{n}個街道、{m}個鄉，分別是："],
             z=t.zh, n=len(streets), m=len(towns), k=t.kind[0])
    lines = [s] + [f"* {d}" for d, _ in t.districts]
    lines.append(pick(rng, ["{k}政府設在{d}。", "其中{d}是{z}的中心城區，{k}政府所在地。"],
                      k=t.kind[0], d=streets[0], z=t.zh))
    return "\n".join(lines)


def _education(rng, t: Town) -> str:
    primary, secondary = t.schools
    s = [pick(rng, ["{z}共有小學{a}所、中學{b}所。", "全{k}有{a}所小學和{b}所中學。",
                    "目前{z}境內設有{a}所小學，中學則有{b}所。"],
              z=t.zh, a=primary, b=secondary, k=t.kind[0])]
    ratio = round(t.population / primary)
    s.append(pick(rng, ["平均每所小學服務約{n}名居民。", "按人口計算，大約每{n}人就有一所小學。"], n=fmt(ratio)))
    if t.university:
        s.append(pick(rng, ["[[{z}大學]]是當地唯一的大學，設有理工、醫學和人文等學院。",
                            "{z}大學成立於{y}年，現有學生約{n}人。"],
                      z=t.zh, y=t.university[0], n=fmt(t.university[1])))
    else:
        s.append(pick(rng, ["當地沒有大學，高中畢業生多前往{c}升學。",
                            "由於{z}沒有大學，許多年輕人到省會{c}讀書。"],
                      z=t.zh, c=t.province.capital.zh))
    return "".join(s)


def _landmark(rng, t: Town) -> str:
    h, k = t.landmark_size
    s = pick(rng, ["{l}建於{y}年，位於{d}。", "位於{d}的{l}落成於{y}年。"],
             l=t.landmark[0], y=t.landmark_year, d=t.districts[0][0])
    s += pick(rng, LANDMARK_ZH[t.landmark[1]], h=h, k=k, r=t.river.zh, p=t.province.zh, z=t.zh)
    s += pick(rng, ["這裡每年吸引大批遊客前來參觀。", "它已被列為{p}的重點文物保護單位。",
                    "當地居民們常在這裡散步、拍照。", "從這裡步行到{r}畔只需十分鐘。"],
              p=t.province.zh, r=t.river.zh)
    return s


def _food(rng, t: Town) -> str:
    how = FOOD_ZH[t.food[1]].format(r=t.river.zh)
    return pick(rng, ["{f}是{z}最有名的小吃，做法是{h}。",
                      "說到{z}的飲食，就不能不提{f}。這道菜{h}，深受居民喜愛。",
                      "當地的{f}{h}，在{p}各地都買得到，但人們說只有在{z}吃到的才最正宗。"],
                f=t.food[0], z=t.zh, h=how, p=t.province.zh)


def _trailer(rng, title: str, slug: str, see_also: list[str], en: str) -> str:
    out = ["\n== 參見 =="] + [f"* [[{x}]]" for x in see_also]
    out += ["\n== 參考文獻 ==", rng.choice(["{{reflist}}", "<references />", "{{Reflist|2}}"])]
    if rng.random() < 0.7:
        out += ["\n== 外部連結 ==", f"* [https://www.{slug}.gov.example {title}官方網站]"]
        if rng.random() < 0.5:
            out.append(f"* [https://travel.example.org/{slug} {title}旅遊指南]")
    return "\n".join(out)


# ---------------------------------------------------------------- people


def person_article(rng: random.Random, w: World, p: Person) -> str:
    refs = _Refs(rng, p.zh)
    he = "她" if p.female else "他"
    life = f"{p.born}年－{p.died}年" if p.died else f"{p.born}年－"
    out = ["{{Infobox person", f"|name = {p.zh}", f"|birth_date = {p.born}年",
           f"|birth_place = [[{p.birthplace.zh}]]"]
    if p.died:
        out.append(f"|death_date = {p.died}年")
    out += [f"|occupation = {p.occupation[0]}", "}}"]
    out.append(pick(rng, ["'''{z}'''（{{{{lang-en|{en}}}}}，{life}），[[{prov}]][[{bp}]]人，{occ}。",
                          "'''{z}'''（{life}），英文名''{en}''，出生於[[{bp}]]，是{prov}著名的{occ}。"],
                    z=p.zh, en=p.en, life=life, prov=p.birthplace.province.zh,
                    bp=p.birthplace.zh, occ=p.occupation[0]))
    out.append(_person_fame(rng, p, he))
    out.append("\n== 生平 ==\n=== 早年 ===")
    out.append(_person_early(rng, w, p, he, refs))
    out.append("\n=== 事業 ===")
    out.append(_person_career(rng, p, he, refs))
    if p.died:
        out.append("\n=== 晚年 ===")
        out.append(pick(rng, ["{h}晚年回到{bp}居住，{d}年去世，享年{a}歲。",
                              "{d}年，{z}在{bp}逝世，終年{a}歲，安葬於{r}畔。",
                              "退休後{h}仍堅持創作，直到{d}年去世，享年{a}歲。"],
                        h=he, bp=p.birthplace.zh, d=p.died, a=p.age_at_death, z=p.zh,
                        r=p.birthplace.river.zh))
    out.append("\n== 家庭 ==")
    out.append(_family(rng, p, he))
    out.append("\n== 評價 ==")
    out.append(_reputation(rng, p, he))
    if p.works:
        out.append("\n== 主要作品 ==")
        for year, zh, en in p.works:
            out.append(f"* 《{zh}》（''{en}''，{year}年）")
    out.append("\n== 紀念 ==")
    out.append(pick(rng, ["{bp}有一條街道以{z}命名。", "{bp}設有{z}紀念館，展出{h}的手稿和遺物。",
                          "為紀念{z}，{bp}在{r}畔立了一座銅像。"],
                    bp=p.birthplace.zh, z=p.zh, h=he, r=p.birthplace.river.zh))
    out.append(_trailer(rng, p.zh, p.en.lower().replace(" ", ""), [p.birthplace.zh], p.en))
    out.append(category(rng, f"{p.born}年出生"))
    if p.died:
        out.append(category(rng, f"{p.died}年逝世"))
    out.append(category(rng, f"{p.birthplace.province.zh}{p.occupation[0]}"))
    out.append(f"[[en:{p.en}]]")
    return "\n".join(out) + "\n"


NUMBERS_ZH = ["沒有", "一個", "兩個", "三個", "四個", "五個"]


def _family(rng, p: Person, he: str) -> str:
    spouse = "丈夫" if p.female else "妻子"
    s = pick(rng, ["{h}{a}歲時結婚，{s}是{bp}人。", "{h}的{s}出身於{bp}的一個書香門第。"],
             h=he, a=rng.randrange(20, 35), s=spouse, bp=p.birthplace.zh)
    if p.children:
        s += pick(rng, ["兩人育有{n}孩子。", "他們共有{n}子女，其中長子後來也成為{o}。"],
                  n=NUMBERS_ZH[p.children], o=p.occupation[0])
    else:
        s += "兩人沒有子女。"
    return s


def _reputation(rng, p: Person, he: str) -> str:
    s = pick(rng, ["後世學者認為，{z}是{prov}最重要的{o}之一。",
                   "{z}的貢獻在{h}生前並未受到重視，直到去世後才得到廣泛認可。",
                   "同時代的人們稱讚{h}勤奮、謙虛，樂於幫助年輕人。",
                   "歷史學家普遍認為，{h}的工作改變了{bp}的面貌。"],
             z=p.zh, prov=p.birthplace.province.zh, o=p.occupation[0], h=he, bp=p.birthplace.zh)
    if p.inventions:
        total = sum(i.units_built for i in p.inventions)
        s += pick(rng, ["{h}一生的發明共被製造了{n}台。", "據統計，{h}設計的機械總共生產了約{n}台。"],
                  h=he, n=fmt(total))
    return s


def _person_fame(rng, p: Person, he: str) -> str:
    if p.inventions:
        inv = p.inventions[0]
        return pick(rng, ["{h}最為人所知的成就是{y}年發明的[[{i}]]。",
                          "{h}以發明[[{i}]]而聞名。"], h=he, y=inv.year, i=inv.zh)
    if p.ascents:
        y, m = p.ascents[0]
        return pick(rng, ["{h}是第一位登上[[{m}]]頂峰的人。", "{y}年，{h}首次登頂[[{m}]]。"],
                    h=he, m=m.zh, y=y)
    if p.works:
        y, zh, _ = p.works[0]
        return pick(rng, ["{h}的代表作是《{t}》。", "{h}最著名的作品是{y}年完成的《{t}》。"],
                    h=he, t=zh, y=y)
    return ""


def _person_early(rng, w: World, p: Person, he: str, refs: _Refs) -> str:
    father = rng.choice(["農民", "漁民", "商人", "教師", "木匠", "醫生", "船夫"])
    s = [pick(rng, ["{z}於{y}年出生在{bp}一個{f}家庭，是家中{n}。",
                    "{y}年，{z}生於{bp}，父親是一名{f}。",
                    "{z}出生於{y}年，{h}的父親在{bp}以{f}為業。"],
              z=p.zh, y=p.born, bp=town_link(rng, p.birthplace), f=father, h=he,
              n=rng.choice(["長子" if not p.female else "長女", "次子" if not p.female else "次女",
                            "獨子" if not p.female else "獨女"]))]
    s.append(pick(rng, ["{h}從小在{r}邊長大，對{t}充滿好奇。",
                        "童年時{h}常隨家人乘船沿{r}往來，這段經歷影響了{h}的一生。",
                        "{h}少年時就讀於當地的私塾，成績優異。"],
                  h=he, r=p.birthplace.river.zh, t=rng.choice(["河流", "星空", "機械", "植物", "書本"])))
    unis = [t for t in w.towns if t.university and t.university[0] <= p.born + 18]
    if unis:
        u = unis[hash_text(p.zh) % len(unis)]
        s.append(pick(rng, ["{y}年，{h}考入[[{u}大學]]，學習{o}相關的知識。",
                            "{h}在{y}年進入{u}大學就讀，{y2}年畢業。"],
                      y=p.born + 18, y2=p.born + 22, h=he, u=u.zh, o=p.occupation[0][:2]))
    return "".join(s) + refs.cite("bio", f"{p.zh}傳", (p.died or 2020) + 3)


def _person_career(rng, p: Person, he: str, refs: _Refs) -> str:
    s = []
    for inv in p.inventions:
        s.append(pick(rng, ["{y}年，{h}在{t}製成了[[{i}]]，這種裝置可以{use}。",
                            "{h}於{y}年發明[[{i}]]，主要用於{use}，其構造包括{parts}。",
                            "經過多年試驗，{h}在{y}年完成了[[{i}]]，當時共造了{u}台。"],
                      y=inv.year, h=he, t=town_link(rng, inv.town), i=inv.zh,
                      use=DEVICE_ZH[_device(inv)][0], parts=DEVICE_ZH[_device(inv)][1],
                      u=fmt(inv.units_built)))
    for year, m in p.ascents:
        s.append(pick(rng, ["{y}年，{h}率領探險隊登上[[{m}]]，成為首位登頂者，該山海拔{hh}米。",
                            "{y}年，{h}從南坡出發，歷時{d}天登上了海拔{hh}米的[[{m}]]。"],
                      y=year, h=he, m=m.zh, hh=fmt(m.height_m), d=rng.randrange(3, 40)))
    for year, zh, _ in p.works:
        s.append(pick(rng, ["{y}年，{h}完成了《{t}》。", "《{t}》發表於{y}年，廣受好評。",
                            "{y}年出版的《{t}》奠定了{h}的地位。"], y=year, h=he, t=zh))
    if p.school is not None:
        s.append(f"{p.born + 30}年，{he}在{town_link(rng, p.school)}創辦了一所學校，親自擔任校長。")
    if not s:
        s.append(pick(rng, ["{h}一生在{bp}從事{o}工作，培養了許多學生。",
                            "{h}長期在{bp}工作，是當地受人尊敬的{o}。"],
                      h=he, bp=p.birthplace.zh, o=p.occupation[0]))
    if len(s) > 2 and rng.random() < 0.5:
        s.insert(1, rng.choice(["此後，", "此外，", "後來，"]))
    return "".join(s) + refs.cite("bio", "", 0)


# ---------------------------------------------------------------- rivers, mountains


def river_article(rng: random.Random, w: World, r: River) -> str:
    refs = _Refs(rng, r.zh)
    towns = sorted(r.towns, key=lambda t: t.pos[0])
    tribs = [x for x in w.rivers if x.tributary_of is r]
    out = ["{{Infobox river", f"|name = {r.zh}", f"|length = {r.length_km}",
           f"|source1 = [[{r.source.zh}]]", f"|mouth = {r.mouth_zh}",
           f"|basin_size = {r.basin_km2}", f"|discharge1_avg = {r.discharge_m3s}", "}}"]
    out.append(pick(rng, ["'''{z}'''（{{{{lang-en|{en}}}}}）是[[{p}]]的一條河流，全長{l}公里，流域面積{b}平方公里。",
                          "'''{z}'''，英文名''{en}''，發源於[[{s}]]，全長{l}公里，是{p}重要的河流之一。"],
                    z=r.zh, en=r.en, p=r.province.zh, l=r.length_km, b=fmt(r.basin_km2),
                    s=r.source.zh) + refs.cite("water", f"{r.province.zh}水文年鑑", 2016))
    out.append(pick(rng, ["{z}最終注入{m}。", "{z}的河口位於{m}。", "河水向下游流去，最後匯入{m}。"],
                    z=r.zh, m=f"[[{r.mouth_zh}]]" if r.tributary_of else r.mouth_zh))
    out.append("\n== 河道 ==")
    s = [pick(rng, ["{z}發源於海拔{h}米的[[{s}]]，上游河谷狹窄，水流湍急。",
                    "{z}的源頭在[[{s}]]山腰的泉水，源頭海拔約{h2}米。"],
              z=r.zh, s=r.source.zh, h=fmt(r.source.height_m), h2=fmt(r.source.height_m * 2 // 3))]
    if towns:
        s.append(pick(rng, ["沿途流經{ts}等地。", "河流依次經過{ts}。",
                            "{z}沿岸的主要城鎮有{ts}。"],
                      ts="、".join(town_link(rng, t) for t in towns[:8]), z=r.zh))
        big = max(towns, key=lambda t: t.population)
        s.append(pick(rng, ["沿岸最大的城市是{t}，人口{p}人。", "{t}是流域內人口最多的城鎮，有{p}名居民。"],
                      t=big.zh, p=fmt(big.population)))
    out.append("".join(s))
    if tribs:
        out.append("\n== 支流 ==")
        out.append(f"{r.zh}共有{len(tribs)}條主要支流：")
        for x in tribs:
            out.append(f"* [[{x.zh}]]，長{x.length_km}公里")
    out.append("\n== 水文 ==")
    s = [pick(rng, ["{z}多年平均流量為每秒{q}立方米，夏季水量最大。",
                    "根據水文站的記錄，{z}的平均流量約為每秒{q}立方米。"],
              z=r.zh, q=r.discharge_m3s)]
    floods = sorted(((e.year, t) for t in r.towns for e in t.events if e.kind == "flood"),
                    key=lambda x: (x[0], x[1].zh))
    for year, t in floods[:6]:
        s.append(pick(rng, ["{y}年的洪水曾淹沒{t}的低窪地區。", "{y}年，洪水在{t}造成嚴重損失。"],
                      y=year, t=town_link(rng, t)))
    out.append("".join(s) + refs.cite("water", "", 0))
    out.append("\n== 生態 ==")
    out.append(pick(rng, ["{z}中常見的魚類有{f1}和{f2}，河岸則棲息著{b}。",
                          "{z}水質良好，盛產{f1}，沿岸的濕地是{b}的重要棲息地。"],
                    z=r.zh, f1=rng.choice(FISH), f2=rng.choice(FISH), b=rng.choice(BIRDS)))
    out.append(_trailer(rng, r.zh, r.en.lower().replace(" ", ""), [r.source.zh, r.province.zh], r.en))
    out.append(category(rng, f"{r.province.zh}河流"))
    out.append(f"[[en:{r.en}]]")
    return "\n".join(out) + "\n"


def mountain_article(rng: random.Random, w: World, m: Mountain) -> str:
    refs = _Refs(rng, m.zh)
    rivers = [r for r in w.rivers if r.source is m]
    out = ["{{Infobox mountain", f"|name = {m.zh}", f"|elevation_m = {m.height_m}",
           f"|location = [[{m.province.zh}]]"]
    if m.first_ascent:
        out.append(f"|first_ascent = {m.first_ascent[0]}年，[[{m.first_ascent[1].zh}]]")
    out.append("}}")
    out.append(pick(rng, ["'''{z}'''（{{{{lang-en|{en}}}}}）位於[[{p}]]，主峰海拔{h}米。",
                          "'''{z}'''是[[{p}]]境內的一座山，海拔{h}米，英文名''{en}''。"],
                    z=m.zh, en=m.en, p=m.province.zh, h=fmt(m.height_m)))
    rank = sorted(m.province.mountains, key=lambda x: -x.height_m).index(m) + 1
    out.append(pick(rng, ["它是{p}第{k}高的山峰。", "在{p}的山峰中，{z}的高度排名第{k}。"],
                    p=m.province.zh, k=rank, z=m.zh) + refs.cite("survey", f"{m.province.zh}地形測量報告", 1988))
    out.append("\n== 地理 ==")
    s = []
    if rivers:
        s.append(pick(rng, ["{rs}都發源於{z}。", "{z}是{rs}的發源地。"],
                      rs="、".join(f"[[{r.zh}]]" for r in rivers), z=m.zh))
    s.append(pick(rng, ["山腳一帶生長著{t1}，海拔{b}米以上則以{t2}為主。",
                        "{z}的植被隨高度變化：低處是{t1}，{b}米以上多為{t2}。"],
                  t1=rng.choice(TREES), t2=rng.choice(TREES), b=m.height_m // 2 // 100 * 100, z=m.zh))
    if m.height_m > 3500:
        s.append("山頂終年積雪，冬季常有暴風雪。")
    else:
        s.append(pick(rng, ["山頂冬季偶有積雪。", "山頂視野開闊，可以望見遠處的平原。"]))
    out.append("".join(s))
    out.append("\n== 登山歷史 ==")
    if m.first_ascent:
        y, p = m.first_ascent
        out.append(pick(rng, ["{y}年，探險家[[{p}]]率隊首次登頂{z}。",
                              "{z}的首次登頂由[[{p}]]在{y}年完成。"], y=y, p=p.zh, z=m.zh)
                   + refs.cite("survey", "", 0))
    else:
        out.append(pick(rng, ["關於{z}首次登頂的時間，史料沒有明確記載。",
                              "當地牧民很早就登上過{z}，但沒有留下文字記錄。"], z=m.zh))
    out.append(_trailer(rng, m.zh, m.en.lower().replace(" ", ""), [m.province.zh], m.en))
    out.append(category(rng, f"{m.province.zh}山峰"))
    out.append(f"[[en:{m.en}]]")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- inventions, railways, provinces


def invention_article(rng: random.Random, w: World, inv: Invention) -> str:
    refs = _Refs(rng, inv.zh)
    use, parts = DEVICE_ZH[_device(inv)]
    he = "她" if inv.inventor.female else "他"
    out = ["{{Infobox invention", f"|name = {inv.zh}", f"|inventor = [[{inv.inventor.zh}]]",
           f"|year = {inv.year}", f"|place = [[{inv.town.zh}]]", "}}"]
    out.append(pick(rng, ["'''{z}'''是[[{p}]]於{y}年在[[{t}]]發明的一種裝置，用於{u}。",
                          "'''{z}'''，是一種用來{u}的機械，{y}年由[[{p}]]發明。"],
                    z=inv.zh, p=inv.inventor.zh, y=inv.year, t=inv.town.zh, u=use)
               + refs.cite("tech", f"{inv.town.province.zh}科技史", 2005))
    out.append("\n== 歷史 ==")
    age = inv.year - inv.inventor.born
    out.append(pick(rng, ["{y}年，{a}歲的{p}在{t}開始研究{u}的方法，經過多次失敗後終於成功。",
                          "{p}發明這種裝置時{a}歲。{h}注意到{t}的居民需要{u}，於是著手設計。"],
                    y=inv.year, a=age, p=inv.inventor.zh, t=inv.town.zh, u=use, h=he))
    out.append(pick(rng, ["此後這種裝置共生產了約{n}台，在{prov}各地廣泛使用。",
                          "到停產時為止，總共製造了{n}台。"],
                    n=fmt(inv.units_built), prov=inv.town.province.zh))
    out.append("\n== 構造 ==")
    out.append(pick(rng, ["{z}主要由{parts}組成。", "這種裝置的主要部件是{parts}。"],
                    z=inv.zh, parts=parts) + refs.cite("tech", "", 0))
    out.append("<!-- 構造圖待補 -->" if rng.random() < 0.3 else "")
    out.append(_trailer(rng, inv.zh, inv.en.lower().replace(" ", "-"),
                        [inv.inventor.zh, inv.town.zh], inv.en))
    out.append(category(rng, f"{inv.year // 100 + 1}世紀發明"))
    return "\n".join(out) + "\n"


def railway_article(rng: random.Random, w: World, rail: Railway) -> str:
    refs = _Refs(rng, rail.zh)
    out = ["{{Infobox rail line", f"|name = {rail.zh}", f"|start = [[{rail.towns[0].zh}]]",
           f"|end = [[{rail.towns[-1].zh}]]", f"|stations = {len(rail.towns)}",
           f"|open = {rail.opened}年", f"|linelength_km = {rail.length_km}",
           f"|gauge = {rail.gauge_mm}毫米", "}}"]
    out.append(pick(rng, ["'''{z}'''是連接[[{a}]]和[[{b}]]的鐵路，全長{l}公里，共設{n}個車站。",
                          "'''{z}'''（{{{{lang-en|{en}}}}}）從[[{a}]]通往[[{b}]]，於{y}年通車，全長{l}公里。"],
                    z=rail.zh, a=rail.towns[0].zh, b=rail.towns[-1].zh, l=rail.length_km,
                    n=len(rail.towns), en=rail.en, y=rail.opened)
               + refs.cite("rail", "鐵路建設史", 1999))
    out.append("\n== 歷史 ==")
    s = [pick(rng, ["{y}年，{z}全線通車。", "{z}於{y}年建成通車，當時是{p}最長的鐵路之一。"],
              y=rail.opened, z=rail.zh, p=rail.towns[0].province.zh)]
    if rail.electrified:
        s.append(pick(rng, ["{y}年，全線完成電氣化。", "{y}年起，{z}改用電力機車牽引。"],
                      y=rail.electrified, z=rail.zh))
    out.append("".join(s))
    out.append("\n== 車站列表 ==")
    lines = ['{| class="wikitable"', "|-", "! 車站 !! 區間距離（公里） !! 累計距離（公里）"]
    total = 0
    for i, t in enumerate(rail.towns):
        seg = rail.segments[i - 1] if i else 0
        total += seg
        lines += ["|-", f"| [[{t.zh}]] || {seg} || {total}"]
    lines.append("|}")
    out.append("\n".join(lines))
    longest = max(range(len(rail.segments)), key=lambda i: rail.segments[i])
    out.append(pick(rng, ["最長的區間是{a}至{b}，長{k}公里。",
                          "全線以{a}到{b}之間的{k}公里為最長區間。"],
                    a=rail.towns[longest].zh, b=rail.towns[longest + 1].zh, k=rail.segments[longest]))
    out.append(_trailer(rng, rail.zh, "rail", [t.zh for t in rail.towns[:2]], rail.en))
    out.append(category(rng, "青河國鐵路"))
    return "\n".join(out) + "\n"


def province_article(rng: random.Random, w: World, p: Province) -> str:
    pop = sum(t.population for t in p.towns)
    out = [f"'''{p.zh}'''（{{{{lang-en|{p.en}}}}}）是青河國的一個省，省會為[[{p.capital.zh}]]。"
           f"全省共有{len(p.towns)}個市、縣和鎮，總人口約{fmt(pop)}人。",
           "\n== 地理 ==",
           f"{p.zh}屬於{p.climate[0]}。最高的山是[[{max(p.mountains, key=lambda m: m.height_m).zh}]]，"
           f"最長的河流是[[{max(p.rivers, key=lambda r: r.length_km).zh}]]。",
           "\n== 主要城市 ==", '{| class="wikitable sortable"', "|-", "! 名稱 !! 人口 !! 面積（平方公里）"]
    for t in sorted(p.towns, key=lambda t: -t.population)[:15]:
        out += ["|-", f"| [[{t.zh}]] || {fmt(t.population)} || {t.area_km2}"]
    out.append("|}")
    out.append(_trailer(rng, p.zh, p.en.lower().split()[0], [p.capital.zh], p.en))
    out.append(category(rng, "青河國省份"))
    out.append(f"[[en:{p.en}]]")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- other namespaces


def navbox(p: Province) -> str:
    towns = " · ".join(f"[[{t.zh}]]" for t in p.towns)
    return ("{{Navbox\n|name = " + p.zh + "行政區劃\n|title = [[" + p.zh + "]]行政區劃\n"
            "|list1 = " + towns + "\n}}<noinclude>\n[[Category:行政區劃模板]]\n</noinclude>\n")


def category_page(p: Province) -> str:
    return (f"{p.zh}境內的城市。\n\n{{{{Commonscat|{p.en}}}}}\n"
            f"[[Category:{p.zh}]]\n[[Category:各省城市]]\n")


def project_page() -> str:
    return ("本頁說明條目的格式。\n\n== 章節 ==\n條目應以導言開始，其後依次為歷史、地理、經濟等章節，"
            "最後是參見、參考文獻和外部連結。\n\n== 引用 ==\n請使用<nowiki><ref></nowiki>標籤提供來源。\n"
            "[[Category:維基百科格式指引]]\n")


def talk_page(t: Town) -> str:
    return (f"== 人口數據 ==\n{t.zh}的人口數據是否應更新為最新的普查結果？--~~~~\n"
            f": 已更新，請查看人口一節。--~~~~\n")


def disambig_page(base: str, targets: list[tuple[str, str]], style: int = 0) -> str:
    """A disambiguation page; zhwiki marks them with {{disambig}} or the __DISAMBIG__ switch."""
    lines = [f"'''{base}'''可以指："] + [f"* [[{t}]]，{desc}" for t, desc in targets]
    marker = ["{{disambig}}", "__DISAMBIG__", "{{Disambig}}"][style % 3]
    return "\n".join(lines) + f"\n\n{marker}\n"


# ---------------------------------------------------------------- the dump

SITEINFO = """  <siteinfo>
    <sitename>Wikipedia</sitename>
    <dbname>zhwiki</dbname>
    <base>https://zh.wikipedia.org/wiki/Wikipedia:%E9%A6%96%E9%A1%B5</base>
    <generator>MediaWiki 1.43.0-wmf.12</generator>
    <case>first-letter</case>
    <namespaces>
      <namespace key="-2" case="first-letter">Media</namespace>
      <namespace key="-1" case="first-letter">Special</namespace>
      <namespace key="0" case="first-letter" />
      <namespace key="1" case="first-letter">Talk</namespace>
      <namespace key="2" case="first-letter">User</namespace>
      <namespace key="3" case="first-letter">User talk</namespace>
      <namespace key="4" case="first-letter">Wikipedia</namespace>
      <namespace key="5" case="first-letter">Wikipedia talk</namespace>
      <namespace key="6" case="first-letter">File</namespace>
      <namespace key="7" case="first-letter">File talk</namespace>
      <namespace key="8" case="first-letter">MediaWiki</namespace>
      <namespace key="9" case="first-letter">MediaWiki talk</namespace>
      <namespace key="10" case="first-letter">Template</namespace>
      <namespace key="11" case="first-letter">Template talk</namespace>
      <namespace key="12" case="first-letter">Help</namespace>
      <namespace key="13" case="first-letter">Help talk</namespace>
      <namespace key="14" case="first-letter">Category</namespace>
      <namespace key="15" case="first-letter">Category talk</namespace>
      <namespace key="100" case="first-letter">Portal</namespace>
      <namespace key="101" case="first-letter">Portal talk</namespace>
      <namespace key="118" case="first-letter">Draft</namespace>
      <namespace key="119" case="first-letter">Draft talk</namespace>
      <namespace key="828" case="first-letter">Module</namespace>
      <namespace key="829" case="first-letter">Module talk</namespace>
    </namespaces>
  </siteinfo>
"""
NS_PREFIX = {0: "", 1: "Talk:", 4: "Wikipedia:", 6: "File:", 10: "Template:", 14: "Category:"}


@dataclass
class Page:
    ns: int
    title: str
    text: str
    redirect: str | None = None


def wiki_pages(w: World, rng: random.Random) -> list[Page]:
    """Every page of the demo wiki, in dump order (articles shuffled, as page ids are)."""
    pages = [Page(0, t.zh, town_article(rng, w, t)) for t in w.towns]
    pages += [Page(0, p.zh, person_article(rng, w, p)) for p in w.people]
    pages += [Page(0, r.zh, river_article(rng, w, r)) for r in w.rivers]
    pages += [Page(0, m.zh, mountain_article(rng, w, m)) for m in w.mountains]
    pages += [Page(0, i.zh, invention_article(rng, w, i)) for i in w.inventions]
    pages += [Page(0, r.zh, railway_article(rng, w, r)) for r in w.railways]
    pages += [Page(0, p.zh, province_article(rng, w, p)) for p in w.provinces]
    rng.shuffle(pages)
    for i, t in enumerate(w.towns[:40]):
        word = ["#REDIRECT", "#重定向", "#重新導向"][i % 3]
        pages.append(Page(0, t.base_zh, f"{word} [[{t.zh}]]\n{{{{R from short name}}}}\n", t.zh))
    for t in w.towns:
        related = [(i.zh, "一種發明") for i in t.inventions]
        if t.university:
            related.append((f"{t.zh}大學", "一所大學"))
        if related and len([p for p in pages if p.title == t.base_zh]) == 0:
            style = len(pages)
            title = t.base_zh if style % 4 else f"{t.base_zh} (消歧義)"
            pages.append(Page(0, title, disambig_page(
                t.base_zh, [(t.zh, f"{t.province.zh}的{t.kind[0]}")] + related, style)))
    for p in w.provinces:
        pages.append(Page(10, f"Template:{p.zh}行政區劃", navbox(p)))
        pages.append(Page(14, f"Category:{p.zh}城市", category_page(p)))
    pages.append(Page(4, "Wikipedia:格式手冊", project_page()))
    pages.append(Page(1, f"Talk:{w.towns[0].zh}", talk_page(w.towns[0])))
    pages.append(Page(6, f"File:{w.towns[0].base_en}_skyline.jpg",
                      f"== 摘要 ==\n{w.towns[0].zh}的城市景觀。\n== 授權 ==\n{{{{self|cc-by-sa-4.0}}}}\n"))
    return pages


def sha1_base36(text: str) -> str:
    """MediaWiki's <sha1>: the SHA-1 of the UTF-8 text in base 36, padded to 31 digits."""
    value = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while value:
        value, r = divmod(value, 36)
        out = digits[r] + out
    return out.rjust(31, "0")


USERS = [("青河編者", 104233), ("Riverbank", 55021), ("山川測量員", 230771), ("WikiGnome88", 7781),
         ("地方志愛好者", 1993305)]
COMMENTS = ["修正錯字", "補充參考文獻", "更新人口數據", "/* 歷史 */ 擴充", "格式調整", "新條目"]


def dump_xml(pages: list[Page], rng: random.Random) -> str:
    """The export-0.11 XML of `pages`: one <page> with one <revision> each, ids increasing."""
    out = ['<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.11/ '
           'http://www.mediawiki.org/xml/export-0.11.xsd" version="0.11" xml:lang="zh">\n',
           SITEINFO]
    page_id, rev_id = 13, 300_000
    for page in pages:
        page_id += rng.randrange(1, 400)
        rev_id += rng.randrange(1000, 90000)
        parent = rev_id - rng.randrange(100, 5000)
        ts = (f"{rng.randrange(2019, 2025)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
              f"T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z")
        user, uid = rng.choice(USERS)
        body = page.text
        out.append("  <page>\n")
        out.append(f"    <title>{escape(page.title)}</title>\n    <ns>{page.ns}</ns>\n"
                   f"    <id>{page_id}</id>\n")
        if page.redirect:
            out.append(f'    <redirect title="{escape(page.redirect)}" />\n')
        out.append(f"    <revision>\n      <id>{rev_id}</id>\n      <parentid>{parent}</parentid>\n"
                   f"      <timestamp>{ts}</timestamp>\n      <contributor>\n"
                   f"        <username>{escape(user)}</username>\n        <id>{uid}</id>\n"
                   f"      </contributor>\n")
        if rng.random() < 0.3:
            out.append("      <minor />\n")
        out.append(f"      <comment>{escape(rng.choice(COMMENTS))}</comment>\n"
                   "      <origin>" + str(rev_id) + "</origin>\n"
                   "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
                   f'      <text bytes="{len(body.encode("utf-8"))}" sha1="{sha1_base36(body)}" '
                   f'xml:space="preserve">{escape(body)}</text>\n'
                   f"      <sha1>{sha1_base36(body)}</sha1>\n    </revision>\n  </page>\n")
    out.append("</mediawiki>\n")
    return "".join(out)
