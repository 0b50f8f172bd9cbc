"""The demo's own benchmark: multiple-choice questions about its fictional world.

The demo's models never saw a standard benchmark's facts, so lm-eval's tasks would score
them at chance and tell nothing. These tasks ask what the demo corpus does teach: in
which province a town lies, on which river, where a person was born, what they did, where
a mountain stands. The same facts are stated in the Chinese wiki and the English
textbooks (`demo_world`), so each language gets its own task: `demo_world_en` and
`demo_world_zh` (Simplified script, as the model reads Chinese after the OpenCC step).

Items are questions, a form the corpus never uses, so no item is training text
(tests/demo/test_demo_tasks.py checks that no question occurs verbatim in any demo input).
Three wrong choices are drawn from the same kind of entity, the answer's position is
random; everything comes from one seeded generator, so the same seed gives the same
bytes. Rows: `{"id", "relation", "question", "choices": [4 strings], "answer": index}`,
the fields the task YAML (secateurs.evaluate.benchmarks) reads.
"""

from __future__ import annotations

import json
import random

from demo_world import World

ITEMS_PER_RELATION = 40


def _simplified(text: str) -> str:
    from opencc import OpenCC

    return OpenCC("t2s").convert(text)


def _relations(world: World):
    """(relation, entities, question_en, question_zh, answer(entity) -> (en, zh), pool)."""
    towns = world.towns
    people = [p for p in world.people if p.birthplace is not None]
    return [
        ("town_province", towns,
         lambda t: f"In which province is {t.en}?", lambda t: f"{t.zh}位於哪個省？",
         lambda t: (t.province.en, t.province.zh), [(p.en, p.zh) for p in world.provinces]),
        ("town_river", towns,
         lambda t: f"On which river does {t.en} lie?", lambda t: f"{t.zh}位於哪條河流邊上？",
         lambda t: (t.river.en, t.river.zh), [(r.en, r.zh) for r in world.rivers]),
        ("person_birthplace", people,
         lambda p: f"Where was {p.en} born?", lambda p: f"{p.zh}出生於哪裡？",
         lambda p: (p.birthplace.en, p.birthplace.zh), [(t.en, t.zh) for t in towns]),
        ("person_occupation", people,
         lambda p: f"What was {p.en}'s occupation?", lambda p: f"{p.zh}的職業是甚麼？",
         lambda p: (p.occupation[1], p.occupation[0]),
         sorted({(p.occupation[1], p.occupation[0]) for p in world.people})),
        ("mountain_province", world.mountains,
         lambda m: f"In which province is {m.en}?", lambda m: f"{m.zh}位於哪個省？",
         lambda m: (m.province.en, m.province.zh), [(p.en, p.zh) for p in world.provinces]),
    ]


def task_items(world: World, seed: int = 0,
               per_relation: int = ITEMS_PER_RELATION) -> dict[str, list[dict]]:
    """{"en": rows, "zh": rows}: the same questions in both languages, same answer order."""
    rng = random.Random(f"{seed}-tasks")
    out: dict[str, list[dict]] = {"en": [], "zh": []}
    for relation, entities, ask_en, ask_zh, answer, pool in _relations(world):
        for entity in rng.sample(entities, min(per_relation, len(entities))):
            gold = answer(entity)
            wrong = rng.sample([c for c in pool if c[0] != gold[0]], 3)
            choices = wrong[:]
            position = rng.randrange(4)
            choices.insert(position, gold)
            ident = f"{relation}-{len(out['en'])}"
            out["en"].append({"id": ident, "relation": relation, "question": ask_en(entity),
                              "choices": [c[0] for c in choices], "answer": position})
            out["zh"].append({"id": ident, "relation": relation,
                              "question": _simplified(ask_zh(entity)),
                              "choices": [_simplified(c[1]) for c in choices],
                              "answer": position})
    return out


def jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
