"""The demo's SlimOrca: ShareGPT conversations with Orca-style system prompts.

Rows are `{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}, ...]}` as in
Open-Orca/SlimOrca. Questions are answerable from the demo world (the same towns, rivers
and people the wiki and textbooks describe) or by arithmetic, and every answer is computed
from the world, so a chat model that learns them learns true statements. Each system
prompt asks either for a short answer or for step-by-step reasoning, and the answer's
length follows it, as Orca's system messages steer the length of GPT-4's answers.
"""

from __future__ import annotations

import random

from demo_world import Town, World, a_an, pick

SYSTEM_SHORT = [
    "You are an AI assistant that helps people find information. Give a short, correct answer.",
    "You are an AI assistant. Answer briefly and precisely.",
    "You are a helpful assistant. Reply in one or two sentences.",
]
SYSTEM_LONG = [
    "You are an AI assistant. Answer the user's question accurately and explain how you reached the answer.",
    "You are an AI assistant. The user gives you a task; complete it as faithfully as you can, thinking step by step and justifying each step.",
    "You are a teacher. Explain the answer in simple steps, as you would to a student.",
    "You are a helpful assistant who always shows its reasoning before the final answer.",
    "You are an AI assistant. Give a detailed answer, so that the user does not need to look anything up.",
]


def _qa_river(rng, w: World) -> tuple[str, str, str]:
    t = rng.choice(w.towns)
    q = pick(rng, ["Which river does {z} lie on?", "What river flows past {z}?",
                   "On which river is the {k} of {z}?"], z=t.en, k=t.kind[1])
    short = f"{t.en} lies on the {t.river.en}."
    long = (f"{t.en} is a {t.kind[1]} in {t.province.en}. It was built on the {t.bank[1]} of the "
            f"{t.river.en}, a river {t.river.length_km} km long that rises on {t.river.source.en}. "
            f"So the answer is: the {t.river.en}.")
    return q, short, long


def _qa_founded(rng, w: World):
    t = rng.choice(w.towns)
    q = pick(rng, ["When was {z} founded?", "In what year was {z} founded, and how old was it in 2024?"], z=t.en)
    age = 2024 - t.founded
    short = f"{t.en} was founded in {t.founded}, so it was {age} years old in 2024."
    long = (f"According to its history, {t.en} was founded in {t.founded}. To find its age in 2024, "
            f"subtract: 2024 − {t.founded} = {age}. So {t.en} was {age} years old in 2024.")
    return q, short, long


def _qa_population(rng, w: World):
    t = rng.choice(w.towns)
    d = round(t.population / t.area_km2, 1)
    q = pick(rng, ["What is the population density of {z}?",
                   "{z} has {p} inhabitants and an area of {a} km². How many people live per square kilometre?"],
             z=t.en, p=f"{t.population:,}", a=t.area_km2)
    short = f"About {d:,} people per square kilometre."
    long = (f"Population density is population divided by area. {t.en} has {t.population:,} people "
            f"on {t.area_km2} km², so {t.population:,} ÷ {t.area_km2} ≈ {d:,}. "
            f"About {d:,} people live on each square kilometre.")
    return q, short, long


def _qa_compare_rivers(rng, w: World):
    a, b = rng.sample(w.rivers, 2)
    q = pick(rng, ["Which is longer, the {a} or the {b}, and by how much?",
                   "Compare the lengths of the {a} and the {b}."], a=a.en, b=b.en)
    if a.length_km == b.length_km:
        return q, "They are the same length.", f"Both rivers are {a.length_km} km long."
    lo, hi = sorted([a, b], key=lambda r: r.length_km)
    d = hi.length_km - lo.length_km
    short = f"The {hi.en} is longer, by {d} km."
    long = (f"The {a.en} is {a.length_km} km long and the {b.en} is {b.length_km} km long. "
            f"Since {hi.length_km} > {lo.length_km}, the {hi.en} is longer. The difference is "
            f"{hi.length_km} − {lo.length_km} = {d} km.")
    return q, short, long


def _qa_compare_mountains(rng, w: World):
    a, b = rng.sample(w.mountains, 2)
    hi, lo = sorted([a, b], key=lambda m: -m.height_m)
    d = hi.height_m - lo.height_m
    q = f"Which mountain is higher: {a.en} or {b.en}?"
    short = f"{hi.en} is higher, by {d} m." if d else "They are equally high."
    long = (f"{a.en} is {a.height_m:,} m high and {b.en} is {b.height_m:,} m high. "
            f"{hi.en} is therefore higher; {hi.height_m:,} − {lo.height_m:,} = {d:,} m.")
    return q, short, long


def _qa_inventor(rng, w: World):
    inv = rng.choice(w.inventions)
    p = inv.inventor
    q = pick(rng, ["Who invented the {i}?", "Who built the first {i}, and when?"], i=inv.en)
    short = f"{p.en} invented it in {inv.year}."
    long = (f"The {inv.en} was invented by {p.en}, {a_an(p.occupation[1])} born in {p.birthplace.en} in "
            f"{p.born}. {('She' if p.female else 'He')} built it in {inv.town.en} in {inv.year}, "
            f"at the age of {inv.year - p.born}, to {inv.purpose}.")
    return q, short, long


def _qa_person(rng, w: World):
    p = rng.choice([p for p in w.people if p.died])
    q = pick(rng, ["Where was {n} born, and how old was {h} at death?",
                   "How long did {n} live?"], n=p.en, h="she" if p.female else "he")
    short = f"{p.en} was born in {p.birthplace.en} in {p.born} and died in {p.died}, aged {p.age_at_death}."
    long = (f"{p.en}, the {p.occupation[1]}, was born in {p.born} in {p.birthplace.en}, {p.birthplace.province.en}. "
            f"{'She' if p.female else 'He'} died in {p.died}. The age at death is {p.died} − {p.born} = "
            f"{p.age_at_death} years.")
    return q, short, long


def _qa_chinese(rng, w: World):
    t = rng.choice(w.towns)
    if rng.random() < 0.5:
        q = f"What is the Chinese name of {t.en}?"
        short = f"Its Chinese name is {t.zh}."
        long = (f"{t.en} is written {t.zh} in traditional Chinese characters. The last character, "
                f"{t.kind[0]}, means that it is a {t.kind[1]}.")
    else:
        q = f"Which place is called {t.zh} in Chinese?"
        short = f"{t.zh} is {t.en}, a {t.kind[1]} in {t.province.en}."
        long = (f"{t.zh} is the Chinese name of {t.en}. The final character {t.kind[0]} marks a "
                f"{t.kind[1]}; it lies on the {t.river.en} in {t.province.en}.")
    return q, short, long


def _qa_rail(rng, w: World):
    r = rng.choice(w.railways)
    i, j = sorted(rng.sample(range(len(r.towns)), 2))
    segs = r.segments[i:j]
    total = sum(segs)
    q = pick(rng, ["How far is it from {a} to {b} on the {r}?",
                   "On the {r}, what is the rail distance between {a} and {b}?"],
             a=r.towns[i].en, b=r.towns[j].en, r=r.en)
    short = f"{total} km."
    stops = " → ".join(t.en for t in r.towns[i:j + 1])
    long = (f"The stations in order are {stops}. The sections are "
            f"{' + '.join(map(str, segs))} km, which add up to {total} km.")
    return q, short, long


def _qa_province_choice(rng, w: World):
    prov = rng.choice(w.provinces)
    right = rng.choice(prov.towns)
    wrong = rng.sample([t for t in w.towns if t.province is not prov], 3)
    options = wrong + [right]
    rng.shuffle(options)
    letters = "ABCD"
    opts = " ".join(f"({letters[k]}) {t.en}" for k, t in enumerate(options))
    k = letters[options.index(right)]
    q = f"Which of these places is in {prov.en}? Options: {opts}"
    short = f"({k}) {right.en}."
    long = ("Let's check each option. " + " ".join(f"{t.en} is in {t.province.en}." for t in options)
            + f" Only {right.en} is in {prov.en}, so the answer is ({k}).")
    return q, short, long


def _qa_true_false(rng, w: World):
    t = rng.choice(w.towns)
    true = rng.random() < 0.5
    river = t.river if true else rng.choice([r for r in w.rivers if r is not t.river])
    q = f'Is the following statement true or false? "{t.en} lies on the {river.en}."'
    short = "True." if true else f"False. {t.en} lies on the {t.river.en}."
    long = (f"{t.en} was built on the {t.bank[1]} of the {t.river.en}. "
            + ("The statement names the same river, so it is true." if true
               else f"The statement names the {river.en}, a different river, so it is false."))
    return q, short, long


def _qa_arithmetic(rng, w: World):
    op = rng.choice("+-×÷")
    a, b = rng.randrange(2, 999), rng.randrange(2, 99)
    if op == "+":
        r, steps = a + b, f"Add the numbers: {a} + {b} = {a + b}."
    elif op == "-":
        a, b = max(a, b), min(a, b)
        r, steps = a - b, f"Subtract: {a} − {b} = {a - b}."
        op = "−"
    elif op == "×":
        a = rng.randrange(2, 99)
        tens, ones = b // 10 * 10, b % 10
        r = a * b
        steps = (f"Split {b} into {tens} + {ones}: {a} × {tens} = {a * tens} and {a} × {ones} = {a * ones}. "
                 f"Then {a * tens} + {a * ones} = {r}.")
    else:
        r = rng.randrange(2, 60)
        a = r * b
        steps = f"Find how many times {b} fits into {a}: {b} × {r} = {a}, so {a} ÷ {b} = {r}."
    q = pick(rng, ["What is {a} {op} {b}?", "Calculate {a} {op} {b}.", "Solve: {a} {op} {b} = ?"], a=a, op=op, b=b)
    return q, f"{a} {op} {b} = {r}.", steps + f" The answer is {r}."


def _qa_word_problem(rng, w: World):
    t = rng.choice(w.towns)
    n, k, price = rng.randrange(3, 20), rng.randrange(2, 9), rng.randrange(2, 12)
    q = (f"A shop in {t.en} sells {t.food[1]} for {price} coins a portion. A family buys {n} portions "
         f"and then {k} more. How much do they pay?")
    total = (n + k) * price
    short = f"They pay {total} coins."
    long = (f"First count the portions: {n} + {k} = {n + k}. Each costs {price} coins, so the family "
            f"pays {n + k} × {price} = {total} coins.")
    return q, short, long


def _qa_reading(rng, w: World):
    t = rng.choice(w.towns)
    ev = [e for e in t.events if e.kind in ("flood", "fire", "bridge", "school", "hospital")]
    if not ev:
        return _qa_founded(rng, w)
    e = rng.choice(ev)
    what = {"flood": ("a flood", f"about {e.args['n']} houses were washed away"),
            "fire": ("a fire", f"about {e.args['n']} buildings burned"),
            "bridge": ("a new bridge", f"the bridge was {e.args['n']} metres long"),
            "school": ("the first modern school", f"it had {e.args['n']} pupils"),
            "hospital": ("the first hospital", f"it had {e.args['n']} beds")}[e.kind]
    text = (f"{t.en} is a {t.kind[1]} on the {t.river.en}. It was founded in {t.founded}. "
            f"In {e.year} the town saw {what[0]}; {what[1]}. Today {t.population:,} people live there.")
    q = f"Read the text and answer the question.\n\nText: {text}\n\nQuestion: In which year did {t.en} see {what[0]}?"
    short = f"In {e.year}."
    long = (f"The text says: \"In {e.year} the town saw {what[0]}\". So the answer is {e.year}, "
            f"which is {e.year - t.founded} years after the town was founded in {t.founded}.")
    return q, short, long


def _qa_sort(rng, w: World):
    towns = rng.sample(w.towns, 4)
    q = "Sort these places from the largest population to the smallest: " + ", ".join(t.en for t in towns) + "."
    ranked = sorted(towns, key=lambda t: -t.population)
    short = ", ".join(t.en for t in ranked) + "."
    long = ("Their populations are: " + "; ".join(f"{t.en} {t.population:,}" for t in towns)
            + ". Ordered from largest to smallest: " + short)
    return q, short, long


def _qa_landmark(rng, w: World):
    t = rng.choice(w.towns)
    q = pick(rng, ["What is the best-known sight in {z}, and when was it built?",
                   "How old is the {l} of {z}?"], z=t.en, l=t.landmark[1])
    age = 2024 - t.landmark_year
    short = f"The {t.landmark[1]}, built in {t.landmark_year} ({age} years ago in 2024)."
    long = (f"The best-known sight in {t.en} is its {t.landmark[1]}, built in {t.landmark_year}. "
            f"In 2024 it was 2024 − {t.landmark_year} = {age} years old.")
    return q, short, long


def _qa_food(rng, w: World):
    t = rng.choice(w.towns)
    others = [o.en for o in w.towns if o.food == t.food and o is not t][:3]
    q = pick(rng, ["What food is {z} known for?", "I am visiting {z}. What local dish should I try?"], z=t.en)
    short = f"{t.food[1].capitalize()}."
    long = (f"{t.en} is known for its {t.food[1]}. "
            + (f"The same dish is also popular in {', '.join(others)}." if others
               else "It is the town's own speciality."))
    return q, short, long


def _qa_schools(rng, w: World):
    t = rng.choice(w.towns)
    primary, secondary = t.schools
    q = f"How many schools are there in {t.en}?"
    short = f"{primary + secondary}: {primary} primary and {secondary} secondary."
    long = (f"{t.en} has {primary} primary schools and {secondary} secondary schools, so "
            f"{primary} + {secondary} = {primary + secondary} schools in all.")
    return q, short, long


QUESTIONS = [_qa_landmark, _qa_food, _qa_schools, _qa_river, _qa_founded, _qa_population, _qa_compare_rivers, _qa_compare_mountains,
             _qa_inventor, _qa_person, _qa_chinese, _qa_rail, _qa_province_choice,
             _qa_true_false, _qa_arithmetic, _qa_arithmetic, _qa_word_problem, _qa_reading,
             _qa_sort]


def _follow_ups(rng, t: Town) -> list[tuple[str, str]]:
    """Follow-up questions about one town, for multi-turn conversations."""
    (y0, p0), (y1, p1) = t.census[-2], t.census[-1]
    pairs = [
        (f"Tell me about {t.en}.",
         f"{t.en} ({t.zh}) is a {t.kind[1]} in {t.province.en} on the {t.bank[1]} of the {t.river.en}. "
         f"It was founded in {t.founded} and had {t.population:,} inhabitants in 2020. "
         f"It is known for {t.industries[0][1]} and for its {t.landmark[1]}."),
        ("What is it famous for?",
         f"Its best-known sight is the {t.landmark[1]}, built in {t.landmark_year}, and its best-known food is {t.food[1]}."),
        (f"How much did its population change between {y0} and {y1}?",
         f"It went from {p0:,} to {p1:,}, an increase of {p1 - p0:,} people ({(p1 - p0) / p0 * 100:.1f}%)."),
        ("Which river is it on, and how long is that river?",
         f"It is on the {t.river.en}, which is {t.river.length_km} km long."),
    ]
    if t.railways:
        r = t.railways[0]
        pairs.append(("Can I get there by train?",
                      f"Yes. The {r.en}, opened in {r.opened}, has a station there."))
    return pairs[:1] + rng.sample(pairs[1:], min(len(pairs) - 1, rng.randrange(1, 4)))


def slimorca_rows(w: World, rng: random.Random, n: int = 2000) -> list[dict]:
    """`n` conversations: about 90% one question, about 10% several turns on one town."""
    rows = []
    for _ in range(n):
        long = rng.random() < 0.65
        system = rng.choice(SYSTEM_LONG if long else SYSTEM_SHORT)
        conv = [{"from": "system", "value": system}]
        if rng.random() < 0.1:
            for q, a in _follow_ups(rng, rng.choice(w.towns)):
                conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
        else:
            q, short, detailed = rng.choice(QUESTIONS)(rng, w)
            conv += [{"from": "human", "value": q}, {"from": "gpt", "value": detailed if long else short}]
        rows.append({"conversations": conv})
    return rows
