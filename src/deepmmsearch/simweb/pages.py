"""The simulated web's pages: what text search and image search find.

Text pages (``corpus.jsonl``, rows ``{id, title, text, url, date}``):

- ``wiki-E``: the encyclopedia page of entity E — "NAME is a bird." then one plain sentence per
  fact
  ("The wingspan of NAME is 42 cm."), and the *oldest* version of its dated fact (stale, as
  encyclopedias are);
- ``news-E-YEAR``: one page per later version of the dated fact; the newest says "latest"
  ("The latest population of NAME is 1500, since 2021.");
- ``notes-E``: a distractor that mentions E but states the facts of another entity of the same
  category ("NAME is often confused with OTHER. The wingspan of OTHER is 37 cm.");
- ``city-C``: a city page listing entities found there (names, no facts);
- ``person-P``: the page of a person an entity's facts name (its designer, architect, ...): one
  sentence per person fact ("The birthplace of Mira Tolega is the city of Vantoro."): the second
  hop of a two-hop question.

Image pages (``image_pages.jsonl``, rows ``{image, title, url, text}``): one per entity, carrying
its picture, titled with its name; the text names its kind but not its colour.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from deepmmsearch.simweb.facts import ATTRIBUTES, PERSON_FACTS, format_value
from deepmmsearch.simweb.world import Entity, Person

DOMAIN = "https://simweb.test"


def _date(rng: random.Random, year: int) -> str:
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _fact_sentences(e: Entity) -> list[str]:
    return [
        a.sentence.format(name=e.name, value=format_value(a, e.facts[a.key]))
        for a in ATTRIBUTES[e.category]
        if not a.dated
    ]


def encyclopedia_page(e: Entity, rng: random.Random) -> dict[str, Any]:
    attr = e.dated_attr()
    year, value = e.dated[attr.key][0]
    sentences = _fact_sentences(e)
    rng.shuffle(sentences)
    text = " ".join(
        [f"{e.name} is a {e.colour} {e.page_noun}."]
        + sentences
        + [attr.old_sentence.format(year=year, name=e.name, value=format_value(attr, str(value)))]
    )
    return {
        "id": f"wiki-{e.id}",
        "title": e.name,
        "url": f"{DOMAIN}/wiki/{e.name}",
        "date": _date(rng, int(year)),
        "text": text,
    }


def news_pages(e: Entity, rng: random.Random) -> list[dict[str, Any]]:
    attr = e.dated_attr()
    versions = e.dated[attr.key]
    out = []
    for i, (year, value) in enumerate(versions[1:], 1):
        latest = i == len(versions) - 1
        template = attr.latest_sentence if latest else attr.old_sentence
        text = template.format(year=year, name=e.name, value=format_value(attr, str(value)))
        title = f"{e.name} latest {attr.word}" if latest else f"{e.name} {attr.word} in {year}"
        out.append(
            {
                "id": f"news-{e.id}-{year}",
                "title": title,
                "text": text,
                "url": f"{DOMAIN}/news/{year}/{e.name}-{attr.word}",
                "date": _date(rng, int(year)),
            }
        )
    return out


def distractor_page(e: Entity, other: Entity, rng: random.Random) -> dict[str, Any]:
    facts = _fact_sentences(other)
    rng.shuffle(facts)
    text = " ".join([f"{e.name} is often confused with {other.name}."] + facts[:2])
    return {
        "id": f"notes-{e.id}",
        "title": f"{e.name} or {other.name}",
        "text": text,
        "url": f"{DOMAIN}/notes/{e.name}-{other.name}",
        "date": _date(rng, rng.randint(2010, 2024)),
    }


def city_pages(entities: list[Entity], rng: random.Random) -> list[dict[str, Any]]:
    by_city: dict[str, list[str]] = defaultdict(list)
    for e in entities:
        by_city[e.facts["city"]].append(e.name)
    out = []
    for i, (city, names) in enumerate(sorted(by_city.items())):
        listed = ", ".join(names[:6])
        out.append(
            {
                "id": f"city-{i:05d}",
                "title": city,
                "url": f"{DOMAIN}/city/{city}",
                "date": _date(rng, rng.randint(2010, 2024)),
                "text": f"{city} is a city. Things found in {city} include {listed}.",
            }
        )
    return out


def person_pages(people: list[Person], rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i, p in enumerate(people):
        facts = [f.sentence.format(name=p.name, value=p.facts[f.key]) for f in PERSON_FACTS]
        rng.shuffle(facts)
        out.append(
            {
                "id": f"person-{i:05d}",
                "title": p.name,
                "url": f"{DOMAIN}/people/{p.name.replace(' ', '_')}",
                "date": _date(rng, rng.randint(2010, 2024)),
                "text": " ".join([f"{p.name} is a person.", *facts]),
            }
        )
    return out


def text_pages(
    entities: list[Entity], rng: random.Random, people: list[Person] = ()
) -> Iterator[dict[str, Any]]:
    """Every text page, in a fixed order (the corpus)."""
    by_cat: dict[str, list[Entity]] = defaultdict(list)
    for e in entities:
        by_cat[e.category].append(e)
    for e in entities:
        yield encyclopedia_page(e, rng)
        yield from news_pages(e, rng)
        pool = by_cat[e.category]
        other = pool[rng.randrange(len(pool))]
        if other.id != e.id:
            yield distractor_page(e, other, rng)
    yield from city_pages(entities, rng)
    yield from person_pages(list(people), rng)


def image_page(e: Entity) -> dict[str, Any]:
    what = (
        f"the logo of {e.name}, a brand" if e.category == "logo" else f"{e.name}, a {e.page_noun}"
    )
    return {
        "id": f"img-{e.id}",
        "image": e.picture,
        "title": e.name,
        "url": f"{DOMAIN}/img/{e.name}.png",
        "text": f"A photo of {what}.",
    }
