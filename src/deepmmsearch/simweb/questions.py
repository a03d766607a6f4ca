"""Questions about scene objects, one consistent template per type.

=================  ==================================================  =========================
type               example                                             what an ideal agent does
=================  ==================================================  =========================
search-free        What colour is the bird on the left?                answers from the image
image-then-text    What is the wingspan of the red bird on the left?   crop search, text search
                   What is the wingspan of this bird? (single scene)   whole-image, text search
text-only          What is the wingspan of the bird Kelumo?            text search
time-sensitive     What is the latest population of the red bird ...?  image and/or text search
two-hop            In which city was the designer of the blue car      crop search, text search
                   at the bottom born?                                 for the designer, a second
                                                                       (refined) text search for
                                                                       the designer's birthplace
=================  ==================================================  =========================

Answers list the canonical form first, then aliases (bare numbers, other units, the surname).
Logos stand for brands: "the brand of the red logo on the left", "the brand Kelumo".
"""

from __future__ import annotations

import random

from deepmmsearch.simweb.facts import (
    ATTRIBUTES,
    PERSON_FACTS,
    answer_aliases,
    dated_attribute,
    person_attribute,
)
from deepmmsearch.simweb.scenes import colourless_expression
from deepmmsearch.simweb.world import Entity, Person, Question, Scene, SceneObject

# search-free : search-required = 30 : 70 (the paper balances its SFT set 50 : 50, Figure 3 right;
# the distillation's search_ratio sets the mix the student trains on). Two-hop questions are
# what needs a second, refined text search (the one-text-search ablation).
TYPE_WEIGHTS = {
    "search-free": 0.3,
    "image-then-text": 0.3,
    "text-only": 0.1,
    "time-sensitive": 0.15,
    "two-hop": 0.15,
}
P_NAMED_TIME = 0.3  # time-sensitive and two-hop questions that name the entity (text search only)


def image_subject(e: Entity, expression: str) -> str:
    """How a question refers to an entity seen in the image."""
    return f"the brand of {expression}" if e.category == "logo" else expression


def named_subject(e: Entity) -> str:
    return f"the {e.page_noun} {e.name}"


def _subject(e: Entity, scene: Scene, obj: SceneObject) -> tuple[str, str, str]:
    """(subject phrase, search mode, expression) for an image-based question."""
    if scene.kind == "single":
        expr = f"this {e.noun}"
        return image_subject(e, expr), "whole", expr
    return image_subject(e, obj.expression), "crop", obj.expression


def make_question(
    qid: str,
    e: Entity,
    scene: Scene,
    obj: SceneObject,
    rng: random.Random,
    people: dict[str, Person] | None = None,
) -> Question:
    """One question about ``obj`` (entity ``e``) in ``scene``; its type is drawn by TYPE_WEIGHTS.
    Two-hop questions need ``people`` (the world's person rows); without, they become
    image-then-text."""
    types, weights = zip(*TYPE_WEIGHTS.items())
    qtype = rng.choices(types, weights)[0]
    if qtype == "two-hop" and not people:
        qtype = "image-then-text"
    colourless = f"this {e.noun}" if scene.kind == "single" else colourless_expression(obj)
    if qtype == "search-free" and colourless is None:
        qtype = "image-then-text"
    common = {
        "id": qid,
        "image": scene.image,
        "split": scene.split,
        "entity": e.id,
        "scene": scene.id,
        "category": e.category,
    }
    if qtype == "search-free":
        return Question(
            question=f"What colour is {colourless}?",
            answers=[e.colour],
            type=qtype,
            attribute=None,
            search="none",
            expression=colourless,
            **common,
        )
    if qtype == "two-hop":
        return _two_hop(e, scene, obj, rng, people or {}, common)
    if qtype == "time-sensitive":
        attr = dated_attribute(e.category)
        if rng.random() < P_NAMED_TIME:
            subject, search, expr = named_subject(e), "text", None
        else:
            subject, search, expr = _subject(e, scene, obj)
    else:
        attr = rng.choice([a for a in ATTRIBUTES[e.category] if not a.dated])
        if qtype == "text-only":
            subject, search, expr = named_subject(e), "text", None
        else:
            subject, search, expr = _subject(e, scene, obj)
    return Question(
        question=attr.question.format(x=subject),
        answers=answer_aliases(attr, e.value(attr.key)),
        type=qtype,
        attribute=attr.key,
        search=search,
        expression=expr,
        **common,
    )


def _two_hop(
    e: Entity,
    scene: Scene,
    obj: SceneObject,
    rng: random.Random,
    people: dict[str, Person],
    common: dict,
) -> Question:
    """"In which city was the designer of the blue car at the bottom born?": the entity's person
    (first hop: image and/or text search), then that person's fact (a second text search)."""
    attr = person_attribute(e.category)
    fact = rng.choice(PERSON_FACTS)
    if rng.random() < P_NAMED_TIME:
        subject, search, expr = named_subject(e), "text", None
    else:
        subject, search, expr = _subject(e, scene, obj)
    person = people[e.facts[attr.key]]
    return Question(
        question=fact.question.format(x=f"the {attr.word} of {subject}"),
        answers=[person.facts[fact.key]],
        type="two-hop",
        attribute=attr.key,
        search=search,
        expression=expr,
        hop=fact.key,
        **common,
    )
