"""The demo's Cosmopedia: English synthetic-textbook passages about the same world.

Rows follow Cosmopedia's schema (`text`, `prompt`, `audience`, `format`, `seed_data`,
`token_length`): textbook units, blog posts, stories and wikiHow-style guides, for
audiences from young children to college students, like HuggingFaceTB/cosmopedia. The
facts are the ones the Chinese wiki states (same towns, rivers, years, numbers), and every
worked example's arithmetic is computed, so the text is true of its world.
"""

from __future__ import annotations

import random
import re

from demo_world import (Invention, Mountain, Person, Province, Railway,
                                         Town, World, a_an, climate_of, direction,
                                         distance_km, pick)

def estimate_tokens(text: str) -> int:
    """Estimated token count of a Mistral/Llama-style BPE: one per word (plus one per 8
    letters beyond the first 8, for long words the BPE splits), one per digit (these
    tokenizers split numbers into digits) and one per punctuation mark."""
    n = 0
    for tok in re.findall(r"[A-Za-z']+|\d|[^\sA-Za-z\d]", text):
        n += 1 + (len(tok) - 1) // 8 if tok[0].isalpha() else 1
    return n


def num(n: float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"


def kind_en(t: Town) -> str:
    return t.kind[1]


def he(p: Person, cap: bool = False) -> str:
    w = "she" if p.female else "he"
    return w.capitalize() if cap else w


def his(p: Person, cap: bool = False) -> str:
    w = "her" if p.female else "his"
    return w.capitalize() if cap else w


# ---------------------------------------------------------------- event sentences

EVENT_EN = {
    "founded": ["{z} was founded in {y}, when settlers built the first houses on the {b} of the {r}.",
                "The story of {z} begins in {y}, when a small fishing village grew up beside the {r}.",
                "According to the local chronicle, {z} dates from {y}; its first people hunted in the forests and fished in the {r}."],
    "market": ["In {y} the town was allowed to hold a regular market, and boats on the {r} began to stop there.",
               "A yearly autumn fair started in {y} and brought merchants from far away."],
    "flood": ["In {y} the {r} burst its banks; about {n} houses were washed away and the dikes were raised afterwards.",
              "The great flood of {y} left about {n} families homeless."],
    "fire": ["A fire in {y} destroyed about {n} buildings, and the streets were laid out again afterwards.",
             "In the winter of {y} a fire spread from the market and burned {n} shops.",
                "One night in {y} a fire broke out in the south of {z}; it burned for two days and left {n} houses in ashes."],
    "school": ["The first modern school opened in {y} with only {n} pupils.",
               "In {y} local families paid for a new school, which took {n} pupils in its first year.",
                "A school for girls opened in {y}; {n} pupils enrolled in the first year."],
    "bridge": ["In {y} a bridge {n} metres long was built across the {r}, so people no longer needed ferries.",
               "The first iron bridge over the {r}, {n} metres long, was finished in {y}.",
                "In {y} the old pontoon over the {r} gave way to a stone arch bridge {n} metres long."],
    "factory": ["The first {i} factory opened in {y} and employed about {n} workers.",
                "In {y} merchants started a {i} works with {n} workers, the beginning of local industry.",
                "By {y} the small {i} workshops had merged into one large factory with {n} employees."],
    "electricity": ["Electric light reached the streets in {y}.",
                    "A power station was built in {y}; at first only {n} households had electricity.",
                "A small hydroelectric plant on the {r} began supplying {n} households in {y}."],
    "earthquake": ["In {y} an earthquake of magnitude {m} damaged several old buildings.",
                   "A magnitude {m} earthquake in {y} brought down about {n} houses.",
                "The earthquake of {y}, of magnitude {m}, forced the townspeople to spend years rebuilding."],
    "hospital": ["The first hospital opened in {y} with {n} beds.",
                 "In {y} the people's hospital was founded; it started with {n} beds.",
                "In {y} a doctor who had come home from the provincial capital opened a clinic, which later grew into a hospital with {n} beds."],
    "temple": ["In {y} the townspeople built a temple to pray for a calm {r}.",
               "The river-god temple was completed in {y}, and a festival has been held in front of it every spring since."],
    "newspaper": ["The first newspaper, the {z} Daily, appeared in {y} and printed about {n} copies.",
                  "In {y} local writers started a weekly paper about the town and the nearby villages."],
    "drought": ["In {y} a severe drought almost dried up the {r}, and the harvest fell by half.",
                "A drought lasting half a year in {y} tripled the price of grain.",
                "Little rain fell in {y}; to survive the drought, people dug {n} new wells."],
    "upgrade": ["In {y} the town was raised to the rank of {k}.",
                "Because its population kept growing, {z} became a {k} in {y}."],
    "landmark": ["The {l} was built in {y} and is still the best-known building in {z}.",
                 "In {y} the town finished its {l}, which has been repaired many times since."],
    "railway": ["In {y} the {rw} opened with a station at {z}, so goods could go by train to {end}.",
                "The opening of the {rw} in {y} made {z} an important station on the line.",
                "When the first train on the {rw} steamed into {z} in {y}, the whole town came to the station to watch."],
    "invention": ["In {y} {who} invented the {inv} here, a machine to {use}.",
                  "It was in {z}, in {y}, that {who} built the first {inv}."],
    "university": ["{z} University was founded in {y}.",
                   "In {y} the town opened its university, one of the first in {p}."],
    "twin": ["In {y} {z} became a twin town of {tw}.",
             "Since {y}, {z} and {tw} have been twin towns and exchange visits every year."],
}


def event_en(rng, t: Town, e) -> str:
    args = dict(z=t.en, y=e.year, r=t.river.en, b=t.bank[1], n=e.args.get("n", 0),
                m=e.args.get("m", 0), k=kind_en(t), l=t.landmark[1], p=t.province.en)
    if e.kind == "factory":
        args["i"] = e.args["industry"][1]
    elif e.kind == "railway":
        rail = e.args["railway"]
        end = rail.towns[-1] if rail.towns[-1] is not t else rail.towns[0]
        args.update(rw=rail.en, end=end.en)
    elif e.kind == "invention":
        inv = e.args["invention"]
        args.update(who=inv.inventor.en, inv=inv.en, use=inv.purpose)
    elif e.kind == "twin":
        args["tw"] = e.args["twin"].en
    return pick(rng, EVENT_EN[e.kind], **args)


# ---------------------------------------------------------------- passages


def town_textbook(rng, w: World, t: Town) -> dict:
    audience = rng.choice(["college_students", "high_school_students", "general"])
    unit = rng.randrange(1, 12)
    prompt = pick(rng, [
        'Write a long and detailed course unit for a textbook on "The Towns of {p}", focusing on {z}. '
        "Cover its setting, history, population and economy, include a worked example with real numbers, "
        "and write for {a}.",
        "Write an educational piece for {a} about the {k} of {z} in {p}. Go into depth on its history "
        "and geography rather than listing facts, and end with a short exercise.",
    ], p=t.province.en, z=t.en, a=audience.replace("_", " "), k=kind_en(t))
    out = [f"Unit {unit}: {t.en}, a {kind_en(t)} on the {t.river.en}", ""]
    out.append(pick(rng, [
        "{z} is a {k} in {p}. It lies on the {b} of the {r}, at an elevation of about {e} metres.",
        "On the {b} of the {r}, some {e} metres above sea level, stands {z}, a {k} of {p}.",
        "Among the settlements of {p}, {z} is a good example of a {k} that grew up around a river. It sits on the {b} of the {r}, {e} metres above sea level.",
    ], z=t.en, k=kind_en(t), p=t.province.en, b=t.bank[1], r=t.river.en, e=t.elevation_m)
        + " " + _capital_sentence(rng, t) + " " + _chinese_name(rng, t))
    out += ["", f"{unit}.1 Setting and climate", ""]
    mean, _, rain = climate_of(t)
    out.append(pick(rng, [
        "The province has a {c}. In {z} the average temperature over the year is {m} °C and about {rain} millimetres of rain fall each year, most of it in summer.",
        "Because {p} has a {c}, {z} sees an annual mean temperature of {m} °C and roughly {rain} mm of rain a year.",
    ], c=t.province.climate[1], z=t.en, m=mean, rain=rain, p=t.province.en)
        + " " + _neighbour_sentences(rng, w, t))
    out += ["", f"{unit}.2 History", ""]
    paras, cur = [], []
    for e in t.events:
        cur.append(event_en(rng, t, e))
        if len(cur) >= rng.randrange(3, 6):
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    out.append("\n\n".join(paras))
    out += ["", f"{unit}.3 Population and economy", ""]
    (y0, p0), (y1, p1) = t.census[-2], t.census[-1]
    out.append(pick(rng, [
        "In {y1} the census counted {p1} people in {z}, compared with {p0} in {y0}.",
        "The population grew from {p0} in {y0} to {p1} in {y1}.",
    ], y0=y0, y1=y1, p0=num(p0), p1=num(p1), z=t.en)
        + " " + pick(rng, [
            "The most important industry is {i1}, followed by {i2}.",
            "Most jobs are in {i1}, and {i2} comes second.",
            "The local economy rests on {i1} and {i2}.",
        ], i1=t.industries[0][1], i2=t.industries[1][1])
        + " " + pick(rng, [
            "Visitors come for the {l}, built in {y}, and for the local {f}.",
            "The {l} (built in {y}) is the town's symbol, and no visit is complete without a taste of {f}.",
        ], l=t.landmark[1], y=t.landmark_year, f=t.food[1]))
    out += ["", f"{unit}.4 Places to see and things to eat", ""]
    out.append(_landmark_en(rng, t) + " " + _food_en(rng, t))
    out.append("")
    out.append(_districts_en(rng, t))
    out += ["", f"Worked example: population density", ""]
    out.append(_density_example(rng, t))
    out += ["", f"Worked example: growth between two censuses", ""]
    out.append(_growth_example(rng, t))
    out += ["", "Exercise", ""]
    out.append(_exercise(rng, w, t))
    return _row(prompt, "\n".join(out), audience, "textbook",
                rng.choice(["web_samples_v2", "stanford", "openstax"]))


LANDMARK_EN = {
    "clock tower": ["The clock tower is {h} metres tall; its bell strikes every hour and can be heard across the {r}.",
                    "With {k} floors and a height of {h} m, the clock tower is the tallest old building in town."],
    "stone bridge": ["The stone bridge is {h} metres long and rests on {k} arches.",
                     "Its stone bridge, {h} m long with {k} arches, is paved with grey flagstones."],
    "lighthouse": ["The lighthouse stands {h} metres high, and its lamp can be seen by ships {k} km away.",
                   "From the top of the {h}-metre lighthouse the beam reaches {k} kilometres."],
    "great waterwheel": ["The great waterwheel is {h} metres across and still turns, driving a mill beside it.",
                         "Its {k} paddles make the {h}-metre waterwheel the largest in {p}."],
    "old city wall": ["The old city wall runs for about {h}00 metres, and {k} of its gates still stand.",
                      "You can walk the whole old wall, about {h}00 m of stone and rammed earth."],
    "museum": ["The museum keeps more than {k}00 objects, among them local pottery and old maps.",
               "Its {k} galleries tell the story of {z} from its founding to today."],
    "botanical garden": ["The botanical garden covers {h} hectares and grows more than {k}00 kinds of plants.",
                         "Greenhouses in the {h}-hectare botanical garden shelter tropical plants."],
    "observatory": ["The observatory sits on a hill outside town; its telescope has a {h} cm lens.",
                    "On {k} nights a year the observatory lets visitors look through its {h} cm telescope."],
    "old railway station": ["The old railway station is a red-brick building whose hall is {h} metres high; it is now a railway museum.",
                            "The station has {k} arched doorways and a {h}-metre-high hall with its old ticket windows."],
    "market hall": ["The market hall is {h} metres long and holds more than {k}0 stalls; it is busiest at dawn.",
                    "Under the iron roof of the {h}-metre market hall, traders sell vegetables, fish and cloth."],
    "academy": ["The old academy holds more than {k},000 books and trained many scholars.",
                "The academy is made of {k} courtyards, with two old trees in front of its lecture hall."],
    "seven-storey pagoda": ["The seven-storey pagoda is {h} metres tall; from the top you can see the whole town and the {r}.",
                            "Bronze bells hang under the eaves of all seven storeys of the {h}-metre pagoda."],
    "library": ["The library holds about {k}0,000 books, one of the largest collections in {p}.",
                "Its reading room seats {h}0 readers, and the library owns about {k}0,000 books."],
    "theatre": ["The theatre seats {k}00 people and stages local opera every weekend.",
                "The theatre has {k}00 seats and a stage {h} metres wide."],
    "old harbour": ["The old harbour stretches {h}0 metres along the {r}, where cargo boats once unloaded.",
                    "Warehouses along the {h}0-metre harbour are now cafés and bookshops."],
}
FOOD_EN = {
    "fish-ball soup": "balls of fish from the {r} in a clear broth with spring onion",
    "rice cake": "steamed glutinous rice, soft and chewy, eaten at festivals",
    "pickled-vegetable noodles": "hand-made noodles with home-pickled greens",
    "osmanthus cake": "rice flour and osmanthus flowers, with a light floral smell",
    "dried tofu": "pressed tofu stewed in soy sauce and spices",
    "bamboo-tube rice": "rice and meat packed into bamboo and roasted over a fire",
    "beef noodles": "noodles in a rich broth with slowly stewed beef",
    "tea eggs": "eggs simmered slowly in tea and soy sauce",
    "taro cake": "taro and rice batter, steamed, sliced and fried",
    "lotus-seed soup": "a sweet soup of lotus seeds and rock sugar",
    "fried rice noodles": "rice noodles stir-fried with vegetables and shrimp",
    "roasted sweet potatoes": "sweet potatoes baked slowly in charcoal",
    "shrimp cakes": "small shrimp from the {r} fried in batter",
    "sticky-rice chicken": "sticky rice and chicken steamed in a lotus leaf",
    "plum sauce": "a sauce of plums, sugar and vinegar",
}


def _landmark_en(rng, t: Town) -> str:
    h, k = t.landmark_size
    return (pick(rng, ["The {l} was built in {y} in {d}.", "In {d} stands the {l}, finished in {y}."],
                 l=t.landmark[1], y=t.landmark_year, d=t.districts[0][1])
            + " " + pick(rng, LANDMARK_EN[t.landmark[1]], h=h, k=k, r=t.river.en, p=t.province.en, z=t.en))


def _food_en(rng, t: Town) -> str:
    what = FOOD_EN[t.food[1]].format(r=t.river.en)
    return pick(rng, ["The local speciality is {f}: {w}.", "Food lovers come for {f} ({w}).",
                      "{z} is proud of its {f}, {w}."], f=t.food[1], w=what, z=t.en)


def _districts_en(rng, t: Town) -> str:
    names = [en for _, en in t.districts]
    primary, secondary = t.schools
    return (pick(rng, ["{z} is divided into {n} parts: {ds}.", "The {k} has {n} subdivisions: {ds}."],
                 z=t.en, n=len(names), ds=_and(names), k=kind_en(t))
            + " " + pick(rng, ["There are {a} primary schools and {b} secondary schools.",
                               "Children attend {a} primary and {b} secondary schools."], a=primary, b=secondary))


def _capital_sentence(rng, t: Town) -> str:
    cap = t.province.capital
    if cap is t:
        return f"It is the capital of {t.province.en}."
    return pick(rng, ["The provincial capital, {c}, is about {k} km to the {d}.",
                      "{z} lies about {k} km {d2} of the capital, {c}."],
                c=cap.en, k=distance_km(cap, t), d=direction(t.pos, cap.pos)[1],
                d2=direction(cap.pos, t.pos)[1], z=t.en)


def _chinese_name(rng, t: Town) -> str:
    return pick(rng, ["In Chinese its name is written {zh}.",
                      "Its Chinese name, {zh}, is written in traditional characters on the old gate.",
                      "On Chinese maps the name appears as {zh}."], zh=t.zh)


def _neighbours(w: World, t: Town, k: int) -> list[Town]:
    return sorted((o for o in w.towns if o is not t), key=lambda o: distance_km(t, o))[:k]


def _neighbour_sentences(rng, w: World, t: Town) -> str:
    s = []
    for o in _neighbours(w, t, rng.randrange(2, 4)):
        s.append(pick(rng, ["{o} is about {k} km to the {d}.", "To the {d}, some {k} kilometres away, lies {o}.",
                            "A road runs {k} km {d} to {o}."],
                      o=o.en, k=distance_km(t, o), d=direction(t.pos, o.pos)[1]))
    return " ".join(s)


def _density_example(rng, t: Town) -> str:
    d = t.population / t.area_km2
    return pick(rng, [
        "Population density is the number of people divided by the land area. {z} has {p} people on {a} square kilometres, so the density is {p} ÷ {a} ≈ {d} people per square kilometre.",
        "To find how crowded {z} is, divide its population by its area: {p} ÷ {a} = {d} (rounded). So on average about {r} people live on each square kilometre.",
    ], z=t.en, p=num(t.population), a=t.area_km2, d=num(round(d, 1)), r=num(round(d)))


def _growth_example(rng, t: Town) -> str:
    (y0, p0), (y1, p1) = t.census[-2], t.census[-1]
    diff = p1 - p0
    pct = diff / p0 * 100
    return pick(rng, [
        "Between {y0} and {y1} the population rose from {p0} to {p1}. The increase is {p1} − {p0} = {d} people. As a percentage of the {y0} figure this is {d} ÷ {p0} × 100 ≈ {pct}%.",
        "Step 1: subtract the older count from the newer one: {p1} − {p0} = {d}. Step 2: divide by the older count and multiply by 100: {d} ÷ {p0} × 100 ≈ {pct}%. So {z} grew by about {pct}% in {yrs} years.",
    ], y0=y0, y1=y1, p0=num(p0), p1=num(p1), d=num(diff), pct=round(pct, 1), z=t.en, yrs=y1 - y0)


def _exercise(rng, w: World, t: Town) -> str:
    o = _neighbours(w, t, 1)[0]
    k = distance_km(t, o)
    speed = rng.choice([20, 30, 40, 50, 60])
    minutes = round(k / speed * 60)
    return pick(rng, [
        "A bus leaves {z} for {o}, {k} km away, and travels at an average of {s} km/h. How long does the trip take? Answer: {k} ÷ {s} = {h} hours, or about {mi} minutes.",
        "How many years passed between the founding of {z} ({f}) and the year {y}? Answer: {y} − {f} = {yy} years.",
    ], z=t.en, o=o.en, k=k, s=speed, h=round(k / speed, 2), mi=minutes, f=t.founded,
        y=t.census[-1][0], yy=t.census[-1][0] - t.founded)


def river_unit(rng, w: World, prov: Province) -> dict:
    audience = rng.choice(["high_school_students", "college_students", "general"])
    rivers = sorted(prov.rivers, key=lambda r: -r.length_km)
    prompt = pick(rng, [
        'Write a textbook section on "Rivers of {p}" for {a}. Compare the rivers by length, explain where they rise and where they end, and show the arithmetic of the comparisons.',
        "Write an engaging lesson for {a} about the river systems of {p}, with comparisons and a short quiz.",
    ], p=prov.en, a=audience.replace("_", " "))
    out = [f"The Rivers of {prov.en}", ""]
    out.append(pick(rng, [
        "{p} is drained by {n} rivers and creeks. The longest is the {r1}, at {l1} km; the shortest is the {rn}, at only {ln} km.",
        "Of the {n} rivers of {p}, the {r1} is the longest ({l1} km) and the {rn} the shortest ({ln} km).",
    ], p=prov.en, n=len(rivers), r1=rivers[0].en, l1=rivers[0].length_km, rn=rivers[-1].en, ln=rivers[-1].length_km))
    out.append("")
    for r in rivers:
        s = [pick(rng, ["The {r} rises on {m} ({h} m) and flows {l} km to {mo}.",
                        "From its source on {m}, which is {h} metres high, the {r} runs {l} km before it reaches {mo}.",
                        "The {r} is {l} km long. It begins on {m} and ends in {mo}."],
                  r=r.en, m=r.source.en, h=num(r.source.height_m), l=r.length_km,
                  mo=("the " + r.mouth_en) if r.tributary_of else r.mouth_en)]
        if r.tributary_of:
            s.append(f"It is therefore a tributary of the {r.tributary_of.en}.")
        s.append(pick(rng, ["Its basin covers {b} square kilometres and it carries on average {q} cubic metres of water per second.",
                            "On average {q} m³ of water pass any point each second, drained from a basin of {b} km²."],
                      b=num(r.basin_km2), q=r.discharge_m3s))
        if r.towns:
            s.append(pick(rng, ["Towns on its banks include {ts}.", "Along it lie {ts}."],
                          ts=_and([x.en for x in r.towns[:5]])))
        out.append(" ".join(s))
        out.append("")
    a, b = rivers[0], rivers[1]
    out.append(pick(rng, [
        "Comparison: the {a} is {d} km longer than the {b}, because {la} − {lb} = {d}.",
        "How much longer is the {a} than the {b}? Subtract: {la} − {lb} = {d} km.",
    ], a=a.en, b=b.en, la=a.length_km, lb=b.length_km, d=a.length_km - b.length_km))
    total = sum(r.length_km for r in rivers)
    out.append(f"Together the rivers of {prov.en} measure {' + '.join(str(r.length_km) for r in rivers)} = {num(total)} km, "
               f"an average of {num(total)} ÷ {len(rivers)} ≈ {round(total / len(rivers), 1)} km per river.")
    out += ["", "Quiz", ""]
    for r in rng.sample(rivers, min(3, len(rivers))):
        out.append(f"Q: Where does the {r.en} rise? A: On {r.source.en}.")
    return _row(prompt, "\n".join(out), audience, "textbook", rng.choice(["openstax", "stanford"]))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def biography_post(rng, w: World, p: Person) -> dict:
    audience = rng.choice(["general", "high_school_students"])
    prompt = pick(rng, [
        "Write a blog post about the life of {n}, the {o} from {t}. Keep it personal and lively, and mention the dates that matter.",
        "Write an informative and engaging blog post for an audience of {a} about {n}, {ao} born in {t} in {y}.",
    ], n=p.en, o=p.occupation[1], t=p.birthplace.en, a=audience.replace("_", " "), y=p.born,
        ao=a_an(p.occupation[1]))
    life = f"{p.born}–{p.died}" if p.died else f"born {p.born}"
    out = [f"{p.en} ({life}): {rng.choice(['a life on the', 'growing up by the', 'the pride of the'])} {p.birthplace.river.en}", ""]
    out.append(pick(rng, [
        "If you walk through {t} today, sooner or later someone will mention {n}. {H} was born there in {y}, the child of a {f}.",
        "I first heard the name {n} on a rainy afternoon in {t}, where {h} was born in {y}. {H} grew up in a {f}'s family by the {r}.",
        "{n} was born in {y} in {t}, a {k} in {prov}. {H} spent {x} childhood by the {r}.",
    ], n=p.en, t=p.birthplace.en, y=p.born, H=he(p, True), h=he(p), x=his(p),
        f=rng.choice(["farmer", "fisherman", "teacher", "carpenter", "boatman"]),
        r=p.birthplace.river.en, k=kind_en(p.birthplace), prov=p.birthplace.province.en))
    out.append("")
    body = []
    for inv in p.inventions:
        body.append(pick(rng, [
            "In {y}, at the age of {a}, {h} built the {i} in {t}. It was made to {u}, and {n} of them were eventually built.",
            "{H} is best remembered for the {i}, finished in {y} in {t}: a machine to {u}. About {n} were made.",
        ], y=inv.year, a=inv.year - p.born, h=he(p), H=he(p, True), i=inv.en, t=inv.town.en, u=inv.purpose, n=num(inv.units_built)))
    for year, m in p.ascents:
        body.append(pick(rng, [
            "In {y} {h} led the first party to reach the top of {m}, {hh} metres above the sea.",
            "{H} was the first person known to have climbed {m} ({hh} m), in {y}.",
        ], y=year, h=he(p), H=he(p, True), m=m.en, hh=num(m.height_m)))
    for year, _, title in p.works:
        body.append(pick(rng, [
            "In {y} {h} finished \"{t}\".", "\"{t}\" appeared in {y} and is still read today.",
            "{H} completed \"{t}\" in {y}, at {a}.",
        ], y=year, h=he(p), H=he(p, True), t=title, a=year - p.born))
    if p.school is not None:
        body.append(f"Around {p.born + 30} {he(p)} opened a school in {p.school.en} and became its first head teacher.")
    if not body:
        body.append(f"{he(p, True)} worked as {a_an(p.occupation[1])} in {p.birthplace.en} all {his(p)} life and trained many students.")
    out.append(" ".join(body))
    out.append("")
    if p.died:
        out.append(pick(rng, [
            "{n} died in {d} at the age of {a}. The people of {t} still remember {o}.",
            "{H} died in {d}, aged {a} ({d} − {b} = {a}).",
        ], n=p.en, d=p.died, a=p.age_at_death, t=p.birthplace.en, o="her" if p.female else "him",
            H=he(p, True), b=p.born))
    else:
        out.append(f"{he(p, True)} still lives in {p.birthplace.en}; in 2024 {he(p)} turned {2024 - p.born}.")
    out.append("")
    out.append(pick(rng, ["What I take from this story is simple: great work often starts close to home.",
                          "Next time you pass through {t}, look for the little plaque by the river.",
                          "If you have visited {t}, tell me in the comments what you thought of it!"],
                    t=p.birthplace.en))
    return _row(prompt, "\n".join(out), audience, "blogpost", rng.choice(["web_samples_v1", "web_samples_v2"]))


def rail_wikihow(rng, w: World, rail: Railway) -> dict:
    prompt = pick(rng, [
        'Write a wikiHow-style guide titled "How to Travel the {r}". Give numbered steps with explanations and tips.',
        "Write a long, step-by-step wikiHow tutorial on travelling from {a} to {b} by train on the {r}.",
    ], r=rail.en, a=rail.towns[0].en, b=rail.towns[-1].en)
    out = [f"How to Travel the {rail.en}", ""]
    out.append(pick(rng, [
        "The {r} opened in {y} and links {a} with {b}. It is {l} km long and has {n} stations.",
        "Since {y}, trains on the {r} have run {l} km from {a} to {b}, calling at {n} stations.",
    ], r=rail.en, y=rail.opened, a=rail.towns[0].en, b=rail.towns[-1].en, l=rail.length_km, n=len(rail.towns)))
    out.append("")
    step, total = 1, 0
    out.append(f"Step {step}: Start at {rail.towns[0].en}. {pick(rng, ['Buy your ticket at the station before boarding.', 'Arrive early; the first train leaves at dawn.', 'Try the local ' + rail.towns[0].food[1] + ' before you leave.'])}")
    for i, seg in enumerate(rail.segments):
        step += 1
        total += seg
        a, b = rail.towns[i], rail.towns[i + 1]
        out.append(f"Step {step}: " + pick(rng, [
            "Ride {k} km from {a} to {b}. You have now covered {t} km.",
            "Continue to {b}, {k} km further on. Running total: {t} km.",
            "The next stop is {b}, {k} km {d} of {a}; together that makes {t} km so far.",
        ], k=seg, a=a.en, b=b.en, t=total, d=direction(a.pos, b.pos)[1])
            + " " + pick(rng, ["Look out for the {l}.", "{b} is known for its {f}.",
                               "This stretch follows the valley of the {r}."],
                         l=b.landmark[1], b=b.en, f=b.food[1], r=b.river.en))
    speed = rng.choice([40, 50, 60, 80])
    out.append("")
    out.append(f"Tips: the whole line is {rail.length_km} km. At an average speed of {speed} km/h the trip takes "
               f"{rail.length_km} ÷ {speed} ≈ {round(rail.length_km / speed, 1)} hours. "
               f"The track gauge is {rail.gauge_mm} mm"
               + (f", and the line has been electric since {rail.electrified}." if rail.electrified else ", and trains are still pulled by diesel locomotives."))
    return _row(prompt, "\n".join(out), "general", "wikihow", "wikihow")


CHILD_NAMES = [("Mei", "her"), ("Tom", "his"), ("Lily", "her"), ("Ben", "his"), ("Anna", "her"),
               ("Leo", "his"), ("Yu", "her"), ("Sam", "his"), ("Nora", "her"), ("Kai", "his"),
               ("Ivy", "her"), ("Max", "his")]


def children_story(rng, w: World, t: Town) -> dict:
    child, child_his = rng.choice(CHILD_NAMES)
    friend = rng.choice([c for c, _ in CHILD_NAMES if c != child])
    prompt = pick(rng, [
        "Write a short story for young children set in {z}. Use simple words, and teach one small fact about the town.",
        "Write a bedtime story for children about two friends, {c} and {f}, who visit the {l} in {z}.",
    ], z=t.en, c=child, f=friend, l=t.landmark[1])
    out = [pick(rng, ["{c} and the {l}", "A Day in {z}", "{c}, {f} and the River"],
                c=child, l=t.landmark[1].title(), z=t.en, f=friend)]
    out.append(pick(rng, [
        "Once upon a time, in a {k} called {z}, there lived a little {a} named {c}.",
        "{c} lived in {z}, right next to the {r}. Every morning {c} waved to the boats.",
    ], k=kind_en(t), z=t.en, a="girl" if child_his == "her" else "boy", c=child, r=t.river.en))
    out.append(pick(rng, [
        "One sunny day, {c}'s friend {f} came to play. \"Let's go to the {l}!\" said {f}.",
        "On Saturday, {c} and {f} asked Grandma to take them to see the {l}.",
    ], c=child, f=friend, l=t.landmark[1]))
    out.append(pick(rng, [
        "The {l} was very old. It was built in {y}, a long, long time ago. \"That is {a} years ago!\" said Grandma.",
        "Grandma said the {l} was built in {y}. {c} counted on {pp} fingers, but there were not enough fingers!",
    ], l=t.landmark[1], y=t.landmark_year, a=2024 - t.landmark_year, c=child, pp=child_his))
    out.append(pick(rng, [
        "They walked along the {r} and saw {n} ducks swimming in a row. Then two more came. \"Now there are {m} ducks!\" said {c}.",
        "By the {r}, they found {n} smooth stones. {f} found two more, so they had {m} stones in all.",
    ], r=t.river.en, n=(n := rng.randrange(2, 8)), m=n + 2, c=child, f=friend))
    out.append(pick(rng, [
        "When they got hungry, Grandma bought them {f}. It was warm and tasty.",
        "For lunch they ate {f}, the favourite food of {z}.",
    ], f=t.food[1], z=t.en))
    out.append(pick(rng, [
        "That night, {c} dreamed of the {l} and the shining river. The end.",
        "\"I love {z},\" said {c} sleepily. And {f} said, \"Me too.\"",
    ], c=child, l=t.landmark[1], z=t.en, f=friend))
    return _row(prompt, "\n\n".join(out), "young_children", "story", "stories")


def math_lesson(rng, w: World) -> dict:
    first = rng.choice(w.towns)
    towns = [first] + _neighbours(w, first, 3)
    prompt = pick(rng, [
        "Write an educational piece for grade school students with word problems about towns and rivers. Solve each problem step by step.",
        "Create a math lesson for grade school students using numbers from the towns of {p}. Explain each step clearly.",
    ], p=towns[0].province.en)
    out = ["Math with Towns and Rivers", "",
           "In this lesson we use real numbers from towns to practise adding, subtracting, multiplying and dividing.", ""]
    for i, kind in enumerate(rng.sample(["add", "sub", "mul", "div", "years", "speed"], 4), 1):
        out.append(f"Problem {i}. " + _math_problem(rng, kind, towns))
        out.append("")
    out.append("Remember: read the problem twice, write down the numbers, and check your answer.")
    return _row(prompt, "\n".join(out), "grade_school_students", "textbook",
                rng.choice(["auto_math_text", "khanacademy"]))


def _math_problem(rng, kind: str, towns: list[Town]) -> str:
    a, b = towns[0], towns[1]
    if kind == "add":
        x, y = a.census[-1][1] // 1000, b.census[-1][1] // 1000
        return (f"{a.en} has about {x} thousand people and {b.en} about {y} thousand. How many thousand live in the two together? "
                f"Add: {x} + {y} = {x + y}. Together about {x + y} thousand people live there.")
    if kind == "sub":
        return (f"The {a.landmark[1]} of {a.en} was built in {a.landmark_year}. How old was it in 2024? "
                f"Subtract: 2024 − {a.landmark_year} = {2024 - a.landmark_year}. It was {2024 - a.landmark_year} years old.")
    if kind == "mul":
        n, price = rng.randrange(3, 13), rng.randrange(2, 15)
        return (f"A bowl of {a.food[1]} in {a.en} costs {price} coins. How much do {n} bowls cost? "
                f"Multiply: {n} × {price} = {n * price}. They cost {n * price} coins.")
    if kind == "div":
        n = rng.randrange(2, 9)
        k = distance_km(a, b) * 2
        return (f"A cyclist rides from {a.en} to {b.en} and back, {k} km in all, in {n} equal stages. How long is each stage? "
                f"Divide: {k} ÷ {n} = {k // n}" + (f" remainder {k % n}." if k % n else ".") + f" Each stage is about {round(k / n)} km.")
    if kind == "years":
        return (f"{a.en} was founded in {a.founded} and {b.en} in {b.founded}. Which is older, and by how many years? "
                f"{a.en if a.founded < b.founded else b.en} is older by {abs(a.founded - b.founded)} years, because "
                f"{max(a.founded, b.founded)} − {min(a.founded, b.founded)} = {abs(a.founded - b.founded)}.")
    d, s = distance_km(a, b), rng.choice([10, 20, 30, 40])
    return (f"A boat travels {d} km from {a.en} to {b.en} at {s} km per hour. How long does it take? "
            f"Divide distance by speed: {d} ÷ {s} = {round(d / s, 2)} hours.")


def invention_lesson(rng, w: World, inv: Invention) -> dict:
    audience = rng.choice(["high_school_students", "college_students", "researchers"])
    p = inv.inventor
    prompt = pick(rng, [
        "Write a textbook passage for {a} on the history of the {i}. Explain what problem it solved, who built it and why it mattered.",
        "Write an in-depth educational piece about the {i}, invented in {t} in {y}, for {a}.",
    ], a=audience.replace("_", " "), i=inv.en, t=inv.town.en, y=inv.year)
    out = [f"The {inv.en}", ""]
    out.append(pick(rng, [
        "The {i} was invented in {y} by {p}, {ao} from {b}. It was designed to {u}.",
        "In {y}, in the {k} of {t}, the {o} {p} completed a device to {u}: the {i}.",
    ], i=inv.en, y=inv.year, p=p.en, o=p.occupation[1], b=p.birthplace.en, u=inv.purpose,
        ao=a_an(p.occupation[1]),
        k=kind_en(inv.town), t=inv.town.en))
    out.append("")
    out.append(pick(rng, [
        "{P} was {a} years old at the time ({y} − {b} = {a}). Before the invention, people in {t} had to do this work by hand.",
        "At {a}, {p} had already spent years watching the people of {t} struggle with the task.",
    ], P=p.en, p=p.en, a=inv.year - p.born, y=inv.year, b=p.born, t=inv.town.en))
    out.append(pick(rng, [
        "Over the following decades about {n} units were built and used across {prov}.",
        "Its success was practical: workshops produced roughly {n} of them, most of them for farms and workshops in {prov}.",
    ], n=num(inv.units_built), prov=inv.town.province.en))
    out.append("")
    others = [i for i in w.inventions if i.en.split(" ", 1)[1] == inv.en.split(" ", 1)[1] and i is not inv]
    if others:
        o = others[0]
        diff = abs(o.year - inv.year)
        out.append(pick(rng, [
            "A similar machine, the {o}, was made in {oy} by {op}; the two inventions are {d} years apart.",
            "Compare it with the {o} ({oy}), built by {op}: {d} years separate the two designs.",
        ], o=o.en, oy=o.year, op=o.inventor.en, d=diff))
    else:
        out.append("No other town in the country produced a machine of this kind, which made it famous.")
    return _row(prompt, "\n".join(out), audience, "textbook", rng.choice(["stanford", "web_samples_v2"]))


def ascent_story(rng, w: World, m: Mountain) -> dict:
    year, p = m.first_ascent
    prompt = pick(rng, [
        "Write a story about {p}'s first ascent of {m} in {y}. Make it vivid but keep the facts right.",
        "Write an adventure story for a general audience about climbing {m}.",
    ], p=p.en, m=m.en, y=year)
    days = rng.randrange(3, 30)
    out = [f"The First Ascent of {m.en}"]
    out.append(pick(rng, [
        "In the spring of {y}, {p} stood at the foot of {m} and looked up. The summit was {h} metres above the sea, and nobody had ever reached it.",
        "Nobody had climbed {m} before {y}. The mountain rises {h} metres in {prov}, and the villagers said its top belonged to the clouds.",
    ], y=year, p=p.en, m=m.en, h=num(m.height_m), prov=m.province.en))
    out.append(pick(rng, [
        "{p} was {a} years old. {H} had grown up in {t}, and had dreamed of this climb since childhood.",
        "At {a}, {p} was {young}, and {h} knew the valleys around {t} better than anyone.",
    ], p=p.en, a=year - p.born, H=he(p, True), h=he(p), t=p.birthplace.en,
        young="no longer young" if year - p.born > 45 else "young and strong"))
    out.append(pick(rng, [
        "The team climbed for {d} days. Each night they camped a little higher, and each morning the air was colder.",
        "It took {d} days. Twice a storm forced them back to the last camp.",
    ], d=days))
    out.append(pick(rng, [
        "When they finally reached the top, {p} could see the whole of {prov} spread out below, with the rivers shining like threads.",
        "At the summit, {p} planted a small flag and wrote the date in {x} notebook: {y}.",
    ], p=p.en, prov=m.province.en, x=his(p), y=year))
    rivers = [r for r in w.rivers if r.source is m]
    if rivers:
        out.append(f"Far below, {_and(['the ' + r.en for r in rivers])} began as thin streams on the mountain's slopes.")
    return _row(prompt, "\n\n".join(out), "general", "story", "stories")


def recipe_wikihow(rng, w: World, t: Town) -> dict:
    prompt = pick(rng, [
        'Write a wikiHow article titled "How to Make {f} the {z} Way", with numbered steps, quantities and tips.',
        "Write a detailed step-by-step guide to cooking {f} as it is made in {z}.",
    ], f=t.food[1], z=t.en)
    servings = rng.randrange(2, 7)
    grams = rng.randrange(3, 9) * 50
    out = [f"How to Make {t.food[1].title()} the {t.en} Way", ""]
    out.append(pick(rng, [
        "{F} is the pride of {z}, a {k} on the {r}. It is {w}. This recipe serves {n}.",
        "In {z}, {f} is eaten at home and sold at every market stall. It is {w}. Here is how to make it for {n} people.",
    ], F=t.food[1].capitalize(), f=t.food[1], z=t.en, k=kind_en(t), r=t.river.en,
        w=FOOD_EN[t.food[1]].format(r=t.river.en), n=servings))
    out.append("")
    steps = [
        f"Gather the ingredients. For {servings} people you need about {grams * servings} grams in all, that is {grams} grams per person.",
        pick(rng, ["Wash everything well and cut it into even pieces.", "Prepare the main ingredient the night before if you can."]),
        pick(rng, ["Heat the pot slowly; a fire that is too hot will spoil the taste.", "Keep the heat low and stir from time to time."]),
        pick(rng, ["Taste and add a little salt if needed.", "Let it rest for five minutes before serving."]),
        pick(rng, ["Serve it warm, as they do in {z}.", "Share it with friends; in {z} nobody eats {f} alone."], z=t.en, f=t.food[1]),
    ]
    for i, step in enumerate(steps, 1):
        out.append(f"Step {i}: {step}")
    minutes = rng.randrange(2, 9) * 5
    out.append("")
    out.append(f"Tips: cooking takes about {minutes} minutes, so cooking it twice a week takes {minutes * 2} minutes. "
               f"If you double the recipe to {servings * 2} people, you need {grams * servings * 2} grams.")
    return _row(prompt, "\n".join(out), "general", "wikihow", "wikihow")


def comparison_post(rng, w: World) -> dict:
    a = rng.choice(w.towns)
    b = _neighbours(w, a, 3)[rng.randrange(3)]
    prompt = pick(rng, [
        "Write a blog post comparing {a} and {b}, two neighbouring places in {p}. Use numbers.",
        "Write a travel blog post for a general audience about a trip from {a} to {b}.",
    ], a=a.en, b=b.en, p=a.province.en)
    k = distance_km(a, b)
    big, small = (a, b) if a.population >= b.population else (b, a)
    old, young = (a, b) if a.founded <= b.founded else (b, a)
    out = [f"{a.en} or {b.en}? Two neighbours compared", ""]
    out.append(pick(rng, [
        "Last spring I spent a week travelling between {a} and {b}, which are only {k} km apart. {b} lies to the {d} of {a}.",
        "{a} and {b} are neighbours: {k} km of road separate them, {b} being {d} of {a}.",
    ], a=a.en, b=b.en, k=k, d=direction(a.pos, b.pos)[1]))
    out.append("")
    out.append(pick(rng, [
        "{big} is the bigger of the two, with {pb} people against {ps} in {small}: a difference of {d}.",
        "With {pb} inhabitants, {big} is larger than {small} ({ps}); {pb} − {ps} = {d}.",
    ], big=big.en, small=small.en, pb=num(big.population), ps=num(small.population),
        d=num(big.population - small.population)))
    out.append(pick(rng, [
        "{o} is {also}older: it was founded in {yo}, {n} years before {y} ({yy}).",
        "History favours {o}, founded in {yo}; {y} only followed in {yy}, {n} years later.",
    ], o=old.en, y=young.en, yo=old.founded, yy=young.founded, n=young.founded - old.founded,
        also="also " if old is big else "nevertheless "))
    out.append("")
    for t in (a, b):
        out.append(pick(rng, [
            "In {z} I visited the {l} and ate {f}. The town lives mainly from {i}.",
            "{z} is all about {i}, but the {l} and a plate of {f} made my day.",
        ], z=t.en, l=t.landmark[1], f=t.food[1], i=t.industries[0][1]))
    out.append("")
    out.append(pick(rng, ["Which would I choose? Both, and the {k} km between them are worth cycling.",
                          "If you only have one day, start in {a} and end in {b}."], k=k, a=a.en, b=b.en))
    return _row(prompt, "\n".join(out), "general", "blogpost", "web_samples_v1")


def province_overview(rng, w: World, prov: Province) -> dict:
    audience = rng.choice(["researchers", "college_students"])
    towns = sorted(prov.towns, key=lambda t: -t.population)
    pop = sum(t.population for t in towns)
    prompt = (f"Write an academic overview of the settlement pattern of {prov.en} for {audience.replace('_', ' ')}, "
              "with statistics computed from the census.")
    out = [f"Settlement and Population in {prov.en}", ""]
    out.append(f"{prov.en} has {len(towns)} cities, counties and towns with {num(pop)} inhabitants in total. "
               f"Its capital is {prov.capital.en}. The climate is a {prov.climate[1]}.")
    out.append("")
    top = towns[:5]
    share = sum(t.population for t in top) / pop * 100
    out.append("The five largest places are " + _and([f"{t.en} ({num(t.population)})" for t in top])
               + f". Together they hold {share:.1f}% of the province's people.")
    by_kind = {}
    for t in towns:
        by_kind.setdefault(t.kind[1], []).append(t.population)
    for kind, pops in sorted(by_kind.items()):
        out.append(f"The {len(pops)} places ranked as {kind} have on average {num(round(sum(pops) / len(pops)))} inhabitants.")
    oldest = min(towns, key=lambda t: t.founded)
    out.append(f"The oldest settlement is {oldest.en}, founded in {oldest.founded}.")
    return _row(prompt, "\n".join(out), audience, "textbook", "stanford")


def _row(prompt: str, text: str, audience: str, fmt: str, seed_data: str) -> dict:
    return {"text": text, "prompt": prompt, "audience": audience, "format": fmt,
            "seed_data": seed_data, "token_length": estimate_tokens(text)}


def cosmopedia_rows(w: World, rng: random.Random) -> list[dict]:
    """All English rows, shuffled so that any held-out slice has every format."""
    rows = [town_textbook(rng, w, t) for t in w.towns]
    rows += [river_unit(rng, w, p) for p in w.provinces for _ in range(2)]
    rows += [biography_post(rng, w, p) for p in w.people]
    rows += [rail_wikihow(rng, w, r) for r in w.railways]
    rows += [children_story(rng, w, t) for t in w.towns]
    rows += [math_lesson(rng, w) for _ in range(300)]
    rows += [invention_lesson(rng, w, i) for i in w.inventions]
    rows += [ascent_story(rng, w, m) for m in w.mountains if m.first_ascent]
    rows += [recipe_wikihow(rng, w, t) for t in rng.sample(w.towns, 120)]
    rows += [comparison_post(rng, w) for _ in range(150)]
    rows += [province_overview(rng, w, p) for p in w.provinces]
    rows = list({r["text"]: r for r in rows}.values())  # drop chance duplicates (same pair twice)
    rng.shuffle(rows)
    return rows
