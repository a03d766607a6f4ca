"""Scenes: which entities share a question image, where they sit, and how to refer to them.

Two kinds of scene:

- ``multi``: one to four entity pictures at random places on a varied background with clutter.
  Most scenes repeat a category ("the red bird on the left" and "the blue bird on the right"), so
  a whole-image search cannot tell which entity a question means: the crop matters.
- ``single``: one entity enlarged to fill the frame — a question about "this bird" concerns the
  whole image, and a whole-image search is the right tool.

Within a scene every (colour, noun) pair is unique, so ``the {colour} {noun}`` always names one
object; the canonical expression adds where the object sits in the image (``on the left``, ``at
the top right``, ``in the centre``: a 3x3 grid).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image

from deepmmsearch.simweb.facts import CATEGORIES, COLOURS
from deepmmsearch.simweb.pictures import BACKGROUNDS, background, clutter, place_boxes
from deepmmsearch.simweb.world import Entity, SceneObject, normalise_expression

SCENE_SIZES = {1: 0.3, 2: 0.25, 3: 0.25, 4: 0.2}  # entities per scene -> probability


@dataclass
class ScenePlan:
    id: str
    kind: str  # "multi" | "single"
    split: str
    entities: list[Entity]


def group_entities(
    entities: list[Entity],
    rng: random.Random,
    *,
    split: str,
    start: int,
    p_single: float = 0.4,
    p_theme: float = 0.75,
) -> list[ScenePlan]:
    """Partition ``entities`` (one split) into scenes of 1-4 with unique (colour, noun) pairs."""
    order = list(entities)
    rng.shuffle(order)
    by_cat: dict[str, list[Entity]] = {c: [] for c in CATEGORIES}
    for e in order:
        by_cat[e.category].append(e)
    pos = dict.fromkeys(CATEGORIES, 0)
    used: set[str] = set()
    sizes, weights = zip(*SCENE_SIZES.items())
    plans: list[ScenePlan] = []

    def take(cat: str, taken: set[tuple[str, str]]) -> Entity | None:
        pool = by_cat[cat]
        while pos[cat] < len(pool) and pool[pos[cat]].id in used:
            pos[cat] += 1
        for e in pool[pos[cat] : pos[cat] + 40]:
            if e.id not in used and (e.colour, e.category) not in taken:
                return e
        return None

    for first in order:
        if first.id in used:
            continue
        n = rng.choices(sizes, weights)[0]
        group = [first]
        used.add(first.id)
        taken = {(first.colour, first.category)}
        for _ in range(n - 1):
            cat = first.category if rng.random() < p_theme else rng.choice(CATEGORIES)
            e = take(cat, taken)
            if e is not None:
                group.append(e)
                used.add(e.id)
                taken.add((e.colour, e.category))
        kind = "single" if len(group) == 1 and rng.random() < p_single else "multi"
        plans.append(ScenePlan(f"s{start + len(plans):06d}", kind, split, group))
    return plans


# ---------------------------------------------------------------------------------------------
# referring expressions

# where an object's centre falls in a 3x3 grid over the image -> the phrase for it
_REGIONS = {
    (0, 0): "at the top left",
    (1, 0): "at the top",
    (2, 0): "at the top right",
    (0, 1): "on the left",
    (1, 1): "in the centre",
    (2, 1): "on the right",
    (0, 2): "at the bottom left",
    (1, 2): "at the bottom",
    (2, 2): "at the bottom right",
}


def region(box: tuple[float, float, float, float], size: tuple[int, int]) -> str:
    """Where ``box`` sits in the image: ``on the left``, ``at the top right``, ``in the centre``..."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    col = min(2, int(3 * cx / size[0]))
    row = min(2, int(3 * cy / size[1]))
    return _REGIONS[(col, row)]


def describe(
    entities: list[Entity], boxes: list[tuple[int, int, int, int]], size: tuple[int, int]
) -> list[SceneObject]:
    """Scene objects with a canonical expression and unique aliases (normalised for grounding).

    The canonical expression is ``the {colour} {noun}`` — unique in the scene — followed, when
    the scene has several objects, by the object's region (``the red bird on the left``). Aliases:
    the colour and noun alone, ``the {noun}`` when only one object has that noun, ``the {noun}
    {region}`` when no other object with that noun is in the same region.
    """
    where = [region(b, size) for b in boxes]
    out = []
    for i, (e, b) in enumerate(zip(entities, boxes)):
        base = f"the {e.colour} {e.noun}"
        expression = f"{base} {where[i]}" if len(entities) > 1 else base
        aliases = [base]
        same = [j for j, o in enumerate(entities) if o.noun == e.noun]
        if len(same) == 1:
            aliases.append(f"the {e.noun}")
        if len(entities) > 1 and [where[j] for j in same].count(where[i]) == 1:
            aliases.append(f"the {e.noun} {where[i]}")
        if len(entities) == 1:
            aliases.append(f"this {e.noun}")
        out.append(
            SceneObject(
                e.id,
                [float(v) for v in b],
                e.colour,
                e.noun,
                expression,
                [a for a in aliases if a != expression],
            )
        )
    return out


def colourless_expression(obj: SceneObject) -> str | None:
    """An expression for ``obj`` that does not name its colour (for colour questions)."""
    for a in obj.aliases:
        if obj.colour not in normalise_expression(a).split():
            return a
    return None


# ---------------------------------------------------------------------------------------------
# rendering


@dataclass(frozen=True)
class SceneStyle:
    size: tuple[int, int] = (224, 224)  # multi scenes
    single_size: int = 160  # single scenes (square)
    single_scale: float = 2.0  # single scenes: the picture is enlarged by this factor
    clutter: tuple[int, int] = (12, 30)  # shapes per multi scene


def render_scene(
    plan: ScenePlan, pictures: dict[str, Image.Image], rng: random.Random, style: SceneStyle
) -> tuple[Image.Image, list[SceneObject], str]:
    """Draw the scene; returns the image, its objects (boxes + expressions) and the background."""
    bg_kind = rng.choice(BACKGROUNDS)
    palette = list(COLOURS.values())
    if plan.kind == "single":
        e = plan.entities[0]
        pic = pictures[e.id]
        s = round(pic.width * style.single_scale)
        size = (style.single_size, style.single_size)
        img = background(bg_kind, size, rng)
        slack = style.single_size - s  # centred, a little off: a photo framed on the entity
        x, y = slack // 2 + rng.randint(-2, 2), slack // 2 + rng.randint(-2, 2)
        box = (x, y, x + s, y + s)
        clutter(img, rng, 6, [box], palette)
        img.paste(pic.resize((s, s), Image.BICUBIC), (x, y))
        return img, describe([e], [box], size), bg_kind
    sizes = [pictures[e.id].width for e in plan.entities]
    boxes = None
    while boxes is None:
        boxes = place_boxes(rng, sizes, style.size)
    img = background(bg_kind, style.size, rng)
    clutter(img, rng, rng.randint(*style.clutter), boxes, palette)
    for e, b in zip(plan.entities, boxes):
        img.paste(pictures[e.id], (b[0], b[1]))
    return img, describe(plan.entities, boxes, style.size), bg_kind
