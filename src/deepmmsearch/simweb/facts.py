"""Categories, attributes and the facts of SimWeb's entities.

Every category has four static attributes and one *dated* attribute whose value changed over time
(time-sensitive questions ask for its latest value). Each attribute says how its value is drawn,
how a page states it (``sentence``: always ``NAME`` and the attribute's query ``word`` in one plain
sentence, so a tiny model can copy the value out of ``<information>``) and how a question asks
for it.
Value ranges are wide, so guessing from training answers fails on held-out entities.

>>> ATTRIBUTES["bird"][0].question.format(x="the red bird on the left")
'What is the wingspan of the red bird on the left?'
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from deepmmsearch.simweb.names import NameGenerator

NOW_YEAR = 2025  # the world's "today": dated facts end before it

# name -> RGB; names are what referring expressions and search-free answers use
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 35, 35),
    "orange": (240, 135, 25),
    "yellow": (235, 205, 30),
    "green": (45, 150, 55),
    "teal": (25, 150, 150),
    "blue": (40, 75, 205),
    "purple": (125, 55, 175),
    "pink": (235, 115, 170),
    "brown": (125, 75, 35),
    "black": (30, 30, 30),
}


@dataclass(frozen=True)
class Attribute:
    """One fact of an entity. ``kind``: number, year, city or person."""

    key: str
    word: str  # the query keyword; appears in the question and in the page sentence
    kind: str
    sentence: str  # {name} {value}
    question: str  # {x}: the entity as the question refers to it
    low: int = 0
    high: int = 0
    unit: str = ""  # appended to numbers: "42 cm"
    unit_aliases: tuple[str, ...] = ()
    dated: bool = False
    old_sentence: str = ""  # dated: {year} {name} {value} — an earlier version
    latest_sentence: str = ""  # dated: {year} {name} {value} — the current version


def _a(key, word, kind, sentence, question, low=0, high=0, unit="", unit_aliases=()):
    return Attribute(key, word, kind, sentence, question, low, high, unit, tuple(unit_aliases))


def _dated(key, word, kind, question, low=0, high=0, unit="", unit_aliases=()):
    return Attribute(
        key,
        word,
        kind,
        sentence="",
        question=question,
        low=low,
        high=high,
        unit=unit,
        unit_aliases=tuple(unit_aliases),
        dated=True,
        old_sentence=f"In {{year}}, the {word} of {{name}} was {{value}}.",
        latest_sentence=f"The latest {word} of {{name}} is {{value}}, since {{year}}.",
    )


# category -> (the noun used in images and questions, the noun used on pages)
NOUNS: dict[str, tuple[str, str]] = {
    "bird": ("bird", "bird"),
    "building": ("building", "building"),
    "vehicle": ("car", "car"),
    "plant": ("plant", "plant"),
    "logo": ("logo", "brand"),
}

# Numbers have at most four digits: every digit is a token the agent copies from <information> into
# its answer, and a tiny model's copies go wrong digit by digit (447128 -> 474282; docs/LOG.md,
# Quickstart, 2026-12-02); a real page's figure is rarely longer to quote.
ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {
    "bird": (
        _a(
            "wingspan",
            "wingspan",
            "number",
            "The wingspan of {name} is {value}.",
            "What is the wingspan of {x}?",
            20,
            260,
            "cm",
            ("centimetres", "centimeters"),
        ),
        _a(
            "city",
            "city",
            "city",
            "{name} nests near the city of {value}.",
            "Near which city does {x} nest?",
        ),
        _a(
            "year",
            "year",
            "year",
            "{name} was first described in the year {value}.",
            "In which year was {x} first described?",
            1750,
            2015,
        ),
        _a(
            "discoverer",
            "discoverer",
            "person",
            "The discoverer of {name} is {value}.",
            "Who is the discoverer of {x}?",
        ),
        _dated(
            "population",
            "population",
            "number",
            "What is the latest population of {x}?",
            100,
            9900,
        ),
    ),
    "building": (
        _a(
            "height",
            "height",
            "number",
            "The height of {name} is {value}.",
            "What is the height of {x}?",
            20,
            900,
            "m",
            ("metres", "meters"),
        ),
        _a(
            "city",
            "city",
            "city",
            "{name} stands in the city of {value}.",
            "In which city does {x} stand?",
        ),
        _a(
            "year",
            "year",
            "year",
            "{name} was completed in the year {value}.",
            "In which year was {x} completed?",
            1800,
            2023,
        ),
        _a(
            "architect",
            "architect",
            "person",
            "The architect of {name} is {value}.",
            "Who is the architect of {x}?",
        ),
        _dated("owner", "owner", "person", "Who is the latest owner of {x}?"),
    ),
    "vehicle": (
        _a(
            "speed",
            "speed",
            "number",
            "The top speed of {name} is {value}.",
            "What is the top speed of {x}?",
            60,
            420,
            "km/h",
            ("kmh", "km per hour"),
        ),
        _a(
            "city",
            "city",
            "city",
            "{name} is built in the city of {value}.",
            "In which city is {x} built?",
        ),
        _a(
            "year",
            "year",
            "year",
            "{name} was introduced in the year {value}.",
            "In which year was {x} introduced?",
            1900,
            2023,
        ),
        _a(
            "designer",
            "designer",
            "person",
            "The designer of {name} is {value}.",
            "Who is the designer of {x}?",
        ),
        _dated(
            "price",
            "price",
            "number",
            "What is the latest price of {x}?",
            1000,
            9900,
            "euros",
            ("euro", "EUR"),
        ),
    ),
    "plant": (
        _a(
            "height",
            "height",
            "number",
            "The height of {name} is {value}.",
            "What is the height of {x}?",
            5,
            4000,
            "cm",
            ("centimetres", "centimeters"),
        ),
        _a(
            "city",
            "city",
            "city",
            "{name} grows near the city of {value}.",
            "Near which city does {x} grow?",
        ),
        _a(
            "year",
            "year",
            "year",
            "{name} was first described in the year {value}.",
            "In which year was {x} first described?",
            1700,
            2020,
        ),
        _a(
            "botanist",
            "botanist",
            "person",
            "The botanist of {name} is {value}.",
            "Who is the botanist of {x}?",
        ),
        _dated(
            "population", "population", "number", "What is the latest population of {x}?", 50, 9000
        ),
    ),
    "logo": (
        _a(
            "founder",
            "founder",
            "person",
            "The founder of {name} is {value}.",
            "Who is the founder of {x}?",
        ),
        _a(
            "city",
            "city",
            "city",
            "{name} is based in the city of {value}.",
            "In which city is {x} based?",
        ),
        _a(
            "year",
            "year",
            "year",
            "{name} was founded in the year {value}.",
            "In which year was {x} founded?",
            1800,
            2022,
        ),
        _a(
            "employees",
            "employees",
            "number",
            "{name} has {value} employees.",
            "How many employees does {x} have?",
            20,
            9900,
        ),
        _dated("chief", "chief", "person", "Who is the latest chief of {x}?"),
    ),
}
CATEGORIES = tuple(ATTRIBUTES)


@dataclass(frozen=True)
class PersonFact:
    """A fact of a person (the designer, architect, ... of an entity): what two-hop questions ask.

    ``sentence`` states it on the person's page with the query ``word`` in it, like an entity's
    facts; ``question`` asks it of ``{x}`` = "the designer of the blue car at the bottom".

    >>> PERSON_FACTS[0].question.format(x="the designer of the car Nisunu")
    'In which city was the designer of the car Nisunu born?'
    """

    key: str
    word: str
    kind: str  # city | year
    sentence: str  # {name} {value}
    question: str
    low: int = 0
    high: int = 0


PERSON_FACTS: tuple[PersonFact, ...] = (
    PersonFact("birthplace", "birthplace", "city", "The birthplace of {name} is the city of {value}.",
               "In which city was {x} born?"),
    PersonFact("birth_year", "birth year", "year", "The birth year of {name} is {value}.",
               "In which year was {x} born?", 1890, 1995),
)


def person_fact(key: str) -> PersonFact:
    for f in PERSON_FACTS:
        if f.key == key:
            return f
    raise KeyError(f"people have no fact {key!r}")


def person_attribute(category: str) -> Attribute:
    """The category's static person attribute (the first hop of a two-hop question)."""
    return next(a for a in ATTRIBUTES[category] if a.kind == "person" and not a.dated)


def attribute(category: str, key: str) -> Attribute:
    for a in ATTRIBUTES[category]:
        if a.key == key:
            return a
    raise KeyError(f"{category} has no attribute {key!r}")


def dated_attribute(category: str) -> Attribute:
    return next(a for a in ATTRIBUTES[category] if a.dated)


def format_value(attr: Attribute, value: str) -> str:
    """The value as pages and gold answers write it (``42 cm``)."""
    return f"{value} {attr.unit}" if attr.unit else value


def answer_aliases(attr: Attribute, value: str) -> list[str]:
    """Gold answers: the canonical form first, then aliases (bare number, units, surname)."""
    out = [format_value(attr, value)]
    if attr.kind == "number":
        out.append(value)
        out += [f"{value} {u}" for u in attr.unit_aliases]
        if len(value) > 3:
            out.append(f"{int(value):,}")
    elif attr.kind == "person":
        out.append(value.split(" ", 1)[1])
    seen: list[str] = []
    for a in out:
        if a not in seen:
            seen.append(a)
    return seen


@dataclass
class FactPools:
    """Cities and people shared by the whole world (facts draw from them)."""

    cities: list[str]
    people: list[str]

    @classmethod
    def make(cls, names: NameGenerator, n_entities: int) -> FactPools:
        n_cities = max(200, n_entities // 4)
        n_people = max(300, n_entities // 2)
        return cls(
            [names.city() for _ in range(n_cities)], [names.person() for _ in range(n_people)]
        )


def draw_value(attr: Attribute, rng: random.Random, pools: FactPools) -> str:
    if attr.kind in ("number", "year"):
        return str(rng.randint(attr.low, attr.high))
    if attr.kind == "city":
        return rng.choice(pools.cities)
    return rng.choice(pools.people)


def draw_person_facts(rng: random.Random, pools: FactPools) -> dict[str, str]:
    """A person's facts (``PERSON_FACTS``): a birthplace from the city pool, a birth year."""
    return {f.key: rng.choice(pools.cities) if f.kind == "city" else str(rng.randint(f.low, f.high))
            for f in PERSON_FACTS}


def draw_facts(
    category: str, rng: random.Random, pools: FactPools
) -> tuple[dict[str, str], dict[str, list[tuple[int, str]]]]:
    """Static facts and the dated versions (2-3, oldest first, distinct values, years < NOW)."""
    facts: dict[str, str] = {}
    dated: dict[str, list[tuple[int, str]]] = {}
    for attr in ATTRIBUTES[category]:
        if not attr.dated:
            facts[attr.key] = draw_value(attr, rng, pools)
            continue
        years = sorted(rng.sample(range(2000, NOW_YEAR), rng.choice((2, 3))))
        values: list[str] = []
        while len(values) < len(years):
            v = draw_value(attr, rng, pools)
            if v not in values:
                values.append(v)
        dated[attr.key] = list(zip(years, values))
    return facts, dated
