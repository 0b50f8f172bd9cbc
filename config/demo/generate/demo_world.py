"""The demo corpus's fictional world: provinces, rivers, mountains, towns, people, inventions.

Every demo input (the Chinese wiki dump, the English textbooks, the chat conversations)
is rendered from one `World`, so the three corpora state the same facts: a bilingual
model sees 東灣市 in the wiki and "Dongwan" in the textbooks with the same river, the same
founding year and the same population, and a chat answer about them can be checked.

Names are built from traditional characters with their pinyin, so the English name of
each place is the romanisation of its Chinese one. Everything comes from one
`random.Random(seed)`, drawn in a fixed order, so the same seed gives the same world.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

# (traditional character, pinyin) pools. Place names draw a first and a second syllable.
PLACE_FIRST = [
    ("東", "dong"), ("西", "xi"), ("南", "nan"), ("北", "bei"), ("青", "qing"), ("白", "bai"),
    ("黃", "huang"), ("紅", "hong"), ("金", "jin"), ("銀", "yin"), ("雲", "yun"), ("龍", "long"),
    ("鳳", "feng"), ("長", "chang"), ("新", "xin"), ("清", "qing"), ("安", "an"), ("永", "yong"),
    ("華", "hua"), ("平", "ping"), ("廣", "guang"), ("豐", "feng"), ("興", "xing"), ("泰", "tai"),
    ("靈", "ling"), ("桐", "tong"), ("松", "song"), ("柳", "liu"), ("梅", "mei"), ("蘭", "lan"),
    ("石", "shi"), ("鐵", "tie"), ("鹿", "lu"), ("鶴", "he"), ("雁", "yan"), ("臨", "lin"),
    ("望", "wang"), ("崇", "chong"), ("嘉", "jia"), ("寶", "bao"), ("順", "shun"), ("綠", "lü"),
    ("蓮", "lian"), ("楓", "feng"), ("翠", "cui"), ("錦", "jin"), ("瑞", "rui"), ("鴻", "hong"),
]
PLACE_SECOND = [
    ("灣", "wan"), ("陽", "yang"), ("寧", "ning"), ("川", "chuan"), ("橋", "qiao"), ("門", "men"),
    ("關", "guan"), ("嶺", "ling"), ("溪", "xi"), ("原", "yuan"), ("州", "zhou"), ("城", "cheng"),
    ("浦", "pu"), ("港", "gang"), ("田", "tian"), ("林", "lin"), ("崗", "gang"), ("塘", "tang"),
    ("灘", "tan"), ("澤", "ze"), ("濱", "bin"), ("口", "kou"), ("莊", "zhuang"), ("堡", "bao"),
    ("壩", "ba"), ("渡", "du"), ("亭", "ting"), ("營", "ying"), ("谷", "gu"), ("泉", "quan"),
    ("峰", "feng"), ("湖", "hu"), ("源", "yuan"), ("豐", "feng"), ("興", "xing"), ("華", "hua"),
]
SURNAMES = [
    ("陳", "Chen"), ("林", "Lin"), ("黃", "Huang"), ("張", "Zhang"), ("李", "Li"), ("王", "Wang"),
    ("吳", "Wu"), ("劉", "Liu"), ("蔡", "Cai"), ("楊", "Yang"), ("許", "Xu"), ("鄭", "Zheng"),
    ("謝", "Xie"), ("郭", "Guo"), ("洪", "Hong"), ("曾", "Zeng"), ("邱", "Qiu"), ("廖", "Liao"),
    ("賴", "Lai"), ("周", "Zhou"), ("葉", "Ye"), ("蘇", "Su"), ("莊", "Zhuang"), ("江", "Jiang"),
    ("何", "He"), ("蕭", "Xiao"), ("羅", "Luo"), ("高", "Gao"), ("潘", "Pan"), ("簡", "Jian"),
    ("朱", "Zhu"), ("鍾", "Zhong"), ("彭", "Peng"), ("詹", "Zhan"), ("胡", "Hu"), ("沈", "Shen"),
    ("趙", "Zhao"), ("盧", "Lu"), ("梁", "Liang"), ("顏", "Yan"), ("孫", "Sun"), ("魏", "Wei"),
    ("戴", "Dai"), ("范", "Fan"), ("宋", "Song"), ("方", "Fang"), ("鄧", "Deng"), ("傅", "Fu"),
    ("曹", "Cao"), ("薛", "Xue"), ("馬", "Ma"), ("董", "Dong"), ("溫", "Wen"), ("唐", "Tang"),
    ("歐陽", "Ouyang"), ("司馬", "Sima"),
]
GIVEN_MALE = [
    ("文", "wen"), ("明", "ming"), ("志", "zhi"), ("偉", "wei"), ("國", "guo"), ("德", "de"),
    ("建", "jian"), ("俊", "jun"), ("傑", "jie"), ("宏", "hong"), ("家", "jia"), ("豪", "hao"),
    ("誠", "cheng"), ("達", "da"), ("學", "xue"), ("義", "yi"), ("賢", "xian"), ("海", "hai"),
    ("龍", "long"), ("興", "xing"), ("榮", "rong"), ("鴻", "hong"), ("維", "wei"), ("遠", "yuan"),
    ("懷", "huai"), ("強", "qiang"), ("震", "zhen"), ("鵬", "peng"), ("濤", "tao"), ("輝", "hui"),
]
GIVEN_FEMALE = [
    ("英", "ying"), ("秀", "xiu"), ("美", "mei"), ("玲", "ling"), ("麗", "li"), ("淑", "shu"),
    ("惠", "hui"), ("芳", "fang"), ("雅", "ya"), ("慧", "hui"), ("靜", "jing"), ("婷", "ting"),
    ("蘭", "lan"), ("曉", "xiao"), ("穎", "ying"), ("綺", "qi"), ("詩", "shi"), ("雲", "yun"),
    ("鳳", "feng"), ("燕", "yan"), ("珍", "zhen"), ("蓉", "rong"), ("嬌", "jiao"), ("翠", "cui"),
]

# Bilingual vocabularies: (Chinese, English).
INDUSTRIES = [
    ("紡織業", "textiles"), ("造紙業", "papermaking"), ("茶葉種植", "tea growing"),
    ("漁業", "fishing"), ("陶瓷製造", "ceramics"), ("造船業", "shipbuilding"),
    ("採礦業", "mining"), ("釀酒業", "brewing"), ("稻米種植", "rice farming"),
    ("林業", "forestry"), ("機械製造", "machine building"), ("旅遊業", "tourism"),
    ("絲綢生產", "silk production"), ("鐵器鑄造", "iron casting"), ("柑橘種植", "citrus growing"),
    ("製鹽業", "salt making"), ("竹器編織", "bamboo weaving"), ("印刷業", "printing"),
]
LANDMARKS = [
    ("鐘樓", "clock tower"), ("石橋", "stone bridge"), ("燈塔", "lighthouse"),
    ("大水車", "great waterwheel"), ("古城牆", "old city wall"), ("博物館", "museum"),
    ("植物園", "botanical garden"), ("天文臺", "observatory"), ("舊火車站", "old railway station"),
    ("市集大廳", "market hall"), ("書院", "academy"), ("七層寶塔", "seven-storey pagoda"),
    ("圖書館", "library"), ("戲院", "theatre"), ("碼頭", "old harbour"),
]
FOODS = [
    ("魚丸湯", "fish-ball soup"), ("米糕", "rice cake"), ("酸菜麵", "pickled-vegetable noodles"),
    ("桂花糕", "osmanthus cake"), ("豆腐乾", "dried tofu"), ("竹筒飯", "bamboo-tube rice"),
    ("牛肉麵", "beef noodles"), ("茶葉蛋", "tea eggs"), ("芋頭餅", "taro cake"),
    ("蓮子湯", "lotus-seed soup"), ("炒米粉", "fried rice noodles"), ("烤紅薯", "roasted sweet potatoes"),
    ("蝦餅", "shrimp cakes"), ("糯米雞", "sticky-rice chicken"), ("梅子醬", "plum sauce"),
]
OCCUPATIONS = [
    ("工程師", "engineer"), ("詩人", "poet"), ("醫生", "physician"), ("數學家", "mathematician"),
    ("探險家", "explorer"), ("建築師", "architect"), ("畫家", "painter"),
    ("植物學家", "botanist"), ("天文學家", "astronomer"), ("教育家", "educator"),
    ("商人", "merchant"), ("作曲家", "composer"),
]
DEVICES = [
    ("水力織布機", "water-powered loom", "weave cloth with the power of a river"),
    ("蒸汽抽水機", "steam pump", "drain flooded mines and fields"),
    ("腳踏脫粒機", "pedal thresher", "separate grain from straw"),
    ("水位計", "water-level gauge", "measure the height of a river"),
    ("竹製吊橋", "bamboo suspension bridge", "carry people across deep valleys"),
    ("陶瓷濾水器", "ceramic water filter", "make river water safe to drink"),
    ("自動灌溉閘門", "automatic irrigation gate", "let water into fields at the right time"),
    ("手搖計算機", "hand-cranked calculator", "add and multiply large numbers"),
    ("氣壓報警器", "barometric storm alarm", "warn fishermen of coming storms"),
    ("太陽能乾燥架", "solar drying rack", "dry tea and fruit in the sun"),
    ("鐵路信號燈", "railway signal lamp", "tell train drivers whether the line is clear"),
    ("三輪貨車", "cargo tricycle", "carry goods through narrow streets"),
    ("防水紙", "waterproof paper", "keep maps and letters dry in the rain"),
    ("溫度記錄儀", "temperature recorder", "write down the temperature every hour"),
    ("風力磨坊", "wind-driven mill", "grind grain when the river is low"),
    ("地震儀", "seismograph", "record the shaking of the ground"),
]
SEAS = [("碧波海", "Bibo Sea"), ("東瀛灣", "Dongying Bay"), ("南溟海", "Nanming Sea")]
LAKES = [("鏡湖", "Lake Jing"), ("千島湖", "Lake Qiandao"), ("月牙湖", "Crescent Lake"),
         ("翡翠湖", "Jade Lake")]
CLIMATES = [("溫帶季風氣候", "temperate monsoon climate"),
            ("亞熱帶濕潤氣候", "humid subtropical climate"),
            ("高原山地氣候", "highland climate"),
            ("溫帶海洋性氣候", "temperate oceanic climate")]
TOWN_KINDS = [("市", "city"), ("縣", "county"), ("鎮", "town")]
DIRECTIONS = [("東", "east"), ("東北", "northeast"), ("北", "north"), ("西北", "northwest"),
              ("西", "west"), ("西南", "southwest"), ("南", "south"), ("東南", "southeast")]


@dataclass
class Province:
    zh: str
    en: str
    climate: tuple[str, str]
    center: tuple[float, float]
    capital: "Town | None" = None
    towns: list = field(default_factory=list)
    rivers: list = field(default_factory=list)
    mountains: list = field(default_factory=list)


@dataclass
class Mountain:
    zh: str
    en: str
    height_m: int
    province: Province
    first_ascent: "tuple[int, Person] | None" = None


@dataclass
class River:
    zh: str
    en: str
    length_km: int
    basin_km2: int
    discharge_m3s: int
    province: Province
    source: Mountain
    mouth_zh: str
    mouth_en: str
    tributary_of: "River | None" = None
    towns: list = field(default_factory=list)


@dataclass
class Event:
    """One dated fact in a town's history; `kind` picks the sentence templates."""
    year: int
    kind: str
    args: dict


@dataclass
class Town:
    base_zh: str
    base_en: str
    kind: tuple[str, str]
    province: Province
    river: River
    bank: tuple[str, str]
    pos: tuple[float, float]
    founded: int
    population: int
    area_km2: float
    elevation_m: int
    industries: list
    landmark: tuple[str, str]
    landmark_year: int
    food: tuple[str, str]
    events: list = field(default_factory=list)
    census: list = field(default_factory=list)
    twin: "Town | None" = None
    twin_year: int = 0
    university: "tuple[int, int] | None" = None  # (founded, students)
    people: list = field(default_factory=list)
    inventions: list = field(default_factory=list)
    railways: list = field(default_factory=list)
    landmark_size: tuple = (0, 0)   # two sizes the landmark's description uses (see demo_zh)
    districts: list = field(default_factory=list)  # (zh, en) subdivisions

    @property
    def zh(self) -> str:
        return self.base_zh + self.kind[0]

    @property
    def schools(self) -> tuple[int, int]:
        """(primary, secondary) schools: one per 2,500 and per 12,000 people, at least one."""
        return max(1, self.population // 2500), max(1, self.population // 12000)

    @property
    def en(self) -> str:
        return self.base_en

    @property
    def density(self) -> float:
        return self.population / self.area_km2


@dataclass
class Person:
    surname: tuple[str, str]
    given: list
    female: bool
    born: int
    died: "int | None"
    birthplace: Town
    occupation: tuple[str, str]
    children: int = 0
    works: list = field(default_factory=list)      # (year, zh title, en title)
    inventions: list = field(default_factory=list)
    ascents: list = field(default_factory=list)
    school: "Town | None" = None

    @property
    def zh(self) -> str:
        return self.surname[0] + "".join(c for c, _ in self.given)

    @property
    def en(self) -> str:
        return self.surname[1] + " " + "".join(p for _, p in self.given).capitalize()

    @property
    def age_at_death(self) -> "int | None":
        return None if self.died is None else self.died - self.born


@dataclass
class Invention:
    zh: str
    en: str
    purpose: str
    year: int
    inventor: Person
    town: Town
    units_built: int


@dataclass
class Railway:
    zh: str
    en: str
    towns: list
    opened: int
    length_km: int
    gauge_mm: int
    electrified: "int | None"
    segments: list  # km between consecutive stations


@dataclass
class World:
    provinces: list
    mountains: list
    rivers: list
    towns: list
    people: list
    inventions: list
    railways: list


class TextRandom(random.Random):
    """A `random.Random` that also remembers which template each list gave last (see `pick`)."""

    def __init__(self, seed):
        super().__init__(seed)
        self.last: dict[str, int] = {}


def pick(rng: random.Random, templates: list[str], **kw) -> str:
    """A random template filled in, never the same one twice in a row for a template list.

    Repeating one phrasing back to back ("...廣受好評。...廣受好評。") is the most
    visible sign of generated text; skipping the last choice removes it cheaply. The memory
    lives on the `TextRandom`, so a fresh generator with the same seed repeats exactly.
    """
    last = getattr(rng, "last", {})
    i = rng.randrange(len(templates))
    if len(templates) > 1 and last.get(templates[0]) == i:
        i = (i + 1 + rng.randrange(len(templates) - 1)) % len(templates)
    last[templates[0]] = i
    return templates[i].format(**kw)


def a_an(word: str) -> str:
    """`word` with its indefinite article ("an engineer", "a poet")."""
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def _romanize(syllables: list[str]) -> str:
    return "".join(syllables).replace("ü", "u").capitalize()


class _Names:
    """Hands out unique two-syllable names so no two entities share a Chinese name."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()
        self.used_en: set[str] = set()

    def place(self) -> tuple[str, str]:
        while True:
            a, b = self.rng.choice(PLACE_FIRST), self.rng.choice(PLACE_SECOND)
            en = _romanize([a[1], b[1]])
            if a[1] == b[1] or a[0] + b[0] in self.used or en in self.used_en:
                continue
            self.used.add(a[0] + b[0])
            self.used_en.add(en)
            return a[0] + b[0], en

    def person(self, female: bool) -> tuple[tuple[str, str], list]:
        pool = GIVEN_FEMALE if female else GIVEN_MALE
        while True:
            surname = self.rng.choice(SURNAMES)
            given = [self.rng.choice(pool)] if self.rng.random() < 0.15 else self.rng.sample(pool, 2)
            key = surname[0] + "".join(c for c, _ in given)
            en = surname[1] + "".join(p for _, p in given)
            if key not in self.used and en not in self.used_en:
                self.used.add(key)
                self.used_en.add(en)
                return surname, given


def direction(src: tuple[float, float], dst: tuple[float, float]) -> tuple[str, str]:
    """Compass direction of `dst` seen from `src` (y grows northwards)."""
    angle = math.degrees(math.atan2(dst[1] - src[1], dst[0] - src[0])) % 360
    return DIRECTIONS[int(((angle + 22.5) % 360) // 45)]


def distance_km(a: "Town", b: "Town") -> int:
    """Road distance: straight line times 1.25, the usual detour factor of a valley road."""
    return max(3, round(math.dist(a.pos, b.pos) * 1.25))


CLIMATE_BASE = {"溫帶季風氣候": (13.5, 13.0, 780), "亞熱帶濕潤氣候": (19.5, 8.5, 1650),
                "高原山地氣候": (9.0, 10.0, 560), "溫帶海洋性氣候": (12.0, 6.0, 1180)}


def climate_of(town: "Town") -> tuple[float, float, int]:
    """(annual mean temperature in °C, half the summer-winter swing, rain in mm a year).

    The mean falls 6.5 °C per 1000 m of elevation (the standard atmospheric lapse rate).
    """
    mean, swing, rain = CLIMATE_BASE[town.province.climate[0]]
    mean = round(mean - town.elevation_m * 0.0065 + (town.pos[1] % 13) / 10 - 0.6, 1)
    return mean, swing, rain + int(town.pos[0] % 97) * 3


def monthly_temps(town: "Town") -> list[float]:
    """Monthly mean temperatures: a cosine peaking in July around the annual mean."""
    mean, swing, _ = climate_of(town)
    return [round(mean + swing * math.cos((m - 7) / 12 * 2 * math.pi), 1) for m in range(1, 13)]


def build_world(seed: int = 0, *, n_towns: int = 420, n_people: int = 330,
                n_inventions: int = 130, n_railways: int = 40) -> World:
    """Draw a world from `seed`; the same seed and sizes always give the same world."""
    rng = random.Random(seed)
    names = _Names(rng)
    provinces = _provinces(rng, names)
    mountains = _mountains(rng, names, provinces)
    rivers = _rivers(rng, names, provinces, mountains)
    towns = _towns(rng, names, provinces, n_towns)
    people = _people(rng, names, towns, n_people)
    inventions = _inventions(rng, people, towns, n_inventions)
    railways = _railways(rng, towns, n_railways)
    _ascents(rng, people, mountains)
    _works(rng, people, rivers, mountains)
    _histories(rng, towns, people)
    _details(random.Random(f"{seed}-details"), towns, people)
    return World(provinces, mountains, rivers, towns, people, inventions, railways)


def _provinces(rng, names) -> list[Province]:
    out = []
    for i in range(6):
        zh, en = names.place()
        center = (300.0 * (i % 3), 300.0 * (i // 3))
        out.append(Province(zh + "省", en + " Province", rng.choice(CLIMATES), center))
    return out


def _mountains(rng, names, provinces) -> list[Mountain]:
    out = []
    for i in range(54):
        zh, en = names.place()
        prov = provinces[i % len(provinces)]
        m = Mountain(zh + "山", "Mount " + en, rng.randrange(850, 4800), prov)
        prov.mountains.append(m)
        out.append(m)
    return out


def _rivers(rng, names, provinces, mountains) -> list[River]:
    out = []
    for i in range(72):
        zh, en = names.place()
        prov = provinces[i % len(provinces)]
        suffix_zh, suffix_en = rng.choice([("河", "River"), ("江", "River"), ("溪", "Creek")])
        length = rng.randrange(25, 180) if suffix_zh == "溪" else rng.randrange(80, 950)
        bigger = [r for r in prov.rivers if r.length_km > length * 1.3]
        if bigger and rng.random() < 0.5:
            parent = rng.choice(bigger)
            mouth = (parent.zh, parent.en)
        else:
            parent = None
            mouth = rng.choice(SEAS + LAKES)
        river = River(zh + suffix_zh, en + " " + suffix_en, length,
                      int(length * rng.uniform(18, 45)) // 10 * 10,
                      max(3, int(length * rng.uniform(0.3, 2.2))), prov,
                      rng.choice(prov.mountains), mouth[0], mouth[1], parent)
        prov.rivers.append(river)
        out.append(river)
    return out


def _towns(rng, names, provinces, n) -> list[Town]:
    out = []
    for i in range(n):
        zh, en = names.place()
        prov = provinces[i % len(provinces)]
        kind = TOWN_KINDS[0] if i < 6 else rng.choice(TOWN_KINDS)
        pop = {"市": rng.randrange(90_000, 1_900_000), "縣": rng.randrange(25_000, 320_000),
               "鎮": rng.randrange(1_800, 42_000)}[kind[0]]
        area = round(pop / rng.uniform(60, 900) + rng.uniform(8, 40), 1)
        founded = rng.randrange(420, 1840)
        pos = (prov.center[0] + rng.uniform(-130, 130), prov.center[1] + rng.uniform(-130, 130))
        town = Town(zh, en, kind, prov, rng.choice(prov.rivers),
                    rng.choice([("東岸", "east bank"), ("西岸", "west bank"),
                                ("北岸", "north bank"), ("南岸", "south bank")]),
                    pos, founded, pop, area, rng.randrange(4, 1900),
                    rng.sample(INDUSTRIES, 2), rng.choice(LANDMARKS),
                    rng.randrange(max(founded + 20, 1500), 1990), rng.choice(FOODS))
        if kind[0] == "市" and rng.random() < 0.6:
            town.university = (rng.randrange(1880, 1995), rng.randrange(3, 60) * 500)
        town.census = _census(rng, pop)
        town.river.towns.append(town)
        prov.towns.append(town)
        if i < len(provinces):
            prov.capital = town
        out.append(town)
    for a, b in zip(out[::7], out[3::7]):
        if a.twin is None and b.twin is None and a is not b:
            a.twin, b.twin = b, a
            a.twin_year = b.twin_year = rng.randrange(1980, 2020)
    return out


def _census(rng, pop) -> list[tuple[int, int]]:
    """Census rows 1953..2020, growing back to today's population (the last row)."""
    years = [1953, 1964, 1982, 1990, 2000, 2010, 2020]
    rows, value = [], pop
    for year in reversed(years):
        rows.append((year, value))
        value = int(value / rng.uniform(1.02, 1.35))
    return list(reversed(rows))


def _people(rng, names, towns, n) -> list[Person]:
    out = []
    for i in range(n):
        female = rng.random() < 0.4
        surname, given = names.person(female)
        born = rng.randrange(1760, 1965)
        died = born + rng.randrange(38, 97)
        died = None if died > 2023 else died
        places = [t for t in towns if t.founded < born] or towns
        occupation = OCCUPATIONS[i % len(OCCUPATIONS)]
        person = Person(surname, given, female, born, died, rng.choice(places), occupation)
        person.birthplace.people.append(person)
        if occupation[1] == "educator":
            person.school = rng.choice(places)
        out.append(person)
    return out


def _inventions(rng, people, towns, n) -> list[Invention]:
    makers = [p for p in people if p.occupation[1] in ("engineer", "mathematician", "physician",
                                                         "astronomer", "merchant")]
    out, used = [], set()
    while len(out) < n:
        person = rng.choice(makers)
        device = rng.choice(DEVICES)
        town = person.birthplace if rng.random() < 0.6 else rng.choice(towns)
        if (town.base_zh, device[0]) in used:
            continue
        used.add((town.base_zh, device[0]))
        last = (person.died or 2020) - 2
        year = rng.randrange(min(person.born + 22, last), last + 1)
        inv = Invention(town.base_zh + "式" + device[0], f"{town.base_en} {device[1]}",
                        device[2], year, person, town, rng.randrange(2, 400) * 10)
        person.inventions.append(inv)
        town.inventions.append(inv)
        out.append(inv)
    return out


def _railways(rng, towns, n) -> list[Railway]:
    out, used = [], set()
    while len(out) < n:
        start = rng.choice(towns)
        line = [start]
        for _ in range(rng.randrange(2, 6)):
            near = sorted((t for t in towns if t not in line),
                          key=lambda t: math.dist(t.pos, line[-1].pos))[:4]
            line.append(rng.choice(near))
        key = line[0].base_zh[0] + line[-1].base_zh[0]
        if key in used:
            continue
        used.add(key)
        segments = [distance_km(a, b) for a, b in zip(line, line[1:])]
        opened = rng.randrange(max(1868, max(t.founded for t in line) + 5), 1995)
        electrified = rng.randrange(opened + 10, 2021) if opened < 2005 and rng.random() < 0.6 else None
        first, last = line[0], line[-1]
        rail = Railway(f"{first.base_zh[0]}{last.base_zh[0]}鐵路",
                       f"{first.base_en}–{last.base_en} Railway", line, opened, sum(segments),
                       rng.choice([1067, 1435, 1435, 1435, 762]), electrified, segments)
        for t in line:
            t.railways.append(rail)
        out.append(rail)
    return out


def _ascents(rng, people, mountains) -> None:
    explorers = [p for p in people if p.occupation[1] == "explorer"]
    for m in mountains:
        if explorers and rng.random() < 0.7:
            p = rng.choice(explorers)
            year = rng.randrange(p.born + 20, (p.died or 2015) - 1)
            m.first_ascent = (year, p)
            p.ascents.append((year, m))


def _works(rng, people, rivers, mountains) -> None:
    """Books, poems, paintings and pieces of music, titled after places in the world."""
    forms = {"poet": [("{p}雜詠", "Verses on {e}"), ("{p}夜話", "Night Talks in {e}")],
             "painter": [("{p}秋景圖", "Autumn at {e}"), ("{p}晨霧", "Morning Mist over {e}")],
             "composer": [("{p}交響曲", "{e} Symphony"), ("{p}組曲", "{e} Suite")],
             "botanist": [("{p}植物誌", "Flora of {e}")],
             "mathematician": [("數論初步", "First Steps in Number Theory"),
                               ("幾何十講", "Ten Lectures on Geometry")],
             "historian": [("{p}志", "A History of {e}")]}
    for p in people:
        for _ in range(rng.randrange(1, 4)):
            pattern = rng.choice(forms.get(p.occupation[1], forms["historian"]))
            place = rng.choice([p.birthplace, rng.choice(rivers), rng.choice(mountains)])
            name_zh = place.zh if not isinstance(place, Town) else place.zh
            year = rng.randrange(p.born + 20, (p.died or 2020))
            en = ("the " + place.en) if isinstance(place, River) else place.en
            title = (pattern[0].format(p=name_zh), pattern[1].format(e=en))
            if title[0] not in [w[1] for w in p.works]:
                p.works.append((year, *title))
        p.works.sort()


def _details(rng, towns, people) -> None:
    """Sizes and subdivisions, drawn from their own generator so the rest stays put."""
    for t in towns:
        t.landmark_size = (rng.randrange(12, 90), rng.randrange(3, 40))
        n = {"市": rng.randrange(4, 9), "縣": rng.randrange(3, 7), "鎮": rng.randrange(2, 5)}[t.kind[0]]
        seen = set()
        while len(t.districts) < n:
            a, b = rng.choice(PLACE_FIRST), rng.choice(PLACE_SECOND)
            if a[0] + b[0] in seen or a[0] + b[0] == t.base_zh or a[1] == b[1]:
                continue
            seen.add(a[0] + b[0])
            kind = ("街道", "Subdistrict") if len(t.districts) < n // 2 + 1 else ("鄉", "Township")
            t.districts.append((a[0] + b[0] + kind[0], f"{_romanize([a[1], b[1]])} {kind[1]}"))
    for p in people:
        p.children = rng.randrange(0, 6)


EARLIEST = {"electricity": 1885, "newspaper": 1860, "hospital": 1880, "school": 1820,
            "factory": 1800, "bridge": 1500}
EVENT_KINDS = ["market", "flood", "fire", "school", "bridge", "factory", "electricity",
               "earthquake", "hospital", "temple", "newspaper", "drought"]


def _histories(rng, towns, people) -> None:
    """Dated events per town, consistent with the railways, inventions and people drawn."""
    for t in towns:
        ev = [Event(t.founded, "founded", {})]
        for kind in rng.sample(EVENT_KINDS, rng.randrange(5, 10)):
            lo = max(t.founded + 10, EARLIEST.get(kind, t.founded + 30))
            if lo >= 2015:
                continue
            args = {"n": rng.randrange(12, 900), "m": round(rng.uniform(4.6, 7.4), 1),
                    "industry": t.industries[0] if kind == "factory" else None}
            ev.append(Event(rng.randrange(lo, 2016), kind, args))
        if t.kind[0] != "鎮":
            ev.append(Event(rng.randrange(max(t.founded + 50, 1700), 2000), "upgrade", {}))
        ev.append(Event(t.landmark_year, "landmark", {}))
        for rail in t.railways:
            ev.append(Event(rail.opened, "railway", {"railway": rail}))
        for inv in t.inventions:
            ev.append(Event(inv.year, "invention", {"invention": inv}))
        if t.university:
            ev.append(Event(t.university[0], "university", {}))
        if t.twin is not None:
            ev.append(Event(t.twin_year, "twin", {"twin": t.twin}))
        t.events = sorted(ev, key=lambda e: (e.year, e.kind))
