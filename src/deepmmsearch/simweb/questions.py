"""Questions about scene objects, one consistent template per type.

=================  ==================================================  =========================
type               example                                             what an ideal agent does
=================  ==================================================  =========================
search-free        What colour is the bird on the left?                answers from the image
image-then-text    What is the wingspan of the red bird on the left?   crop search, text search
                   What is the wingspan of this bird? (single scene)   whole-image, text search
text-only          What is the wingspan of the bird Kelumo?            text search
time-sensitive     What is the latest population of the red bird ...?  image and/or text search
=================  ==================================================  =========================

Answers list the canonical form first, then aliases (bare numbers, other units, the surname).
Logos stand for brands: "the brand of the red logo on the left", "the brand Kelumo".
"""

from __future__ import annotations

import random

from deepmmsearch.simweb.facts import ATTRIBUTES, answer_aliases, dated_attribute
from deepmmsearch.simweb.scenes import colourless_expression
from deepmmsearch.simweb.world import Entity, Question, Scene, SceneObject

TYPE_WEIGHTS = {
    "search-free": 0.15,
    "image-then-text": 0.45,
    "text-only": 0.2,
    "time-sensitive": 0.2,
}
P_NAMED_TIME = 0.3  # time-sensitive questions that name the entity (text search only)


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
    qid: str, e: Entity, scene: Scene, obj: SceneObject, rng: random.Random
) -> Question:
    """One question about ``obj`` (entity ``e``) in ``scene``; its type is drawn by TYPE_WEIGHTS."""
    types, weights = zip(*TYPE_WEIGHTS.items())
    qtype = rng.choices(types, weights)[0]
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
