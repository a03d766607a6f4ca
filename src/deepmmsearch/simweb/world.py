"""SimWeb's records and a loaded world.

A built world is a directory (see ``deepmmsearch simweb build --help``)::

    world.json            manifest: seed, size, counts, file hashes, index paths
    entities.jsonl        Entity rows (names, categories, colours, facts, dated facts, split)
    corpus.jsonl          text pages {id, title, text, url, date}
    image_pages.jsonl     image pages {image, title, url, text}
    scenes.jsonl          Scene rows (image, digest, objects with boxes and referring expressions)
    people.jsonl          Person rows (the designers, architects, ...: birthplace, birth year)
    questions.jsonl       Question rows (benchmark style: id, image, question, answers, type, split)
    images/entities/      one picture per entity (PNG)
    images/scenes/        question images (PNG)
    index/text/           BM25 index of corpus.jsonl (``deepmmsearch index text``)
    index/image/          local image index of image_pages.jsonl (``deepmmsearch index image``)

``World.load(dir)`` reads the rows and offers the look-ups the expert teacher and the grounder need.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from deepmmsearch.simweb.facts import NOUNS, Attribute, attribute, dated_attribute

WORLD_FILE = "world.json"
FORMAT_VERSION = 1
QUESTION_TYPES = ("search-free", "image-then-text", "text-only", "time-sensitive", "two-hop")


def normalise_expression(text: str) -> str:
    """Lower case, no punctuation, no leading article: ``The red bird!`` -> ``red bird``."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    while words and words[0] in ("the", "a", "an", "this"):
        words = words[1:]
    return " ".join(words)


class _Row:
    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = cls.__dataclass_fields__  # type: ignore[attr-defined]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Entity(_Row):
    id: str
    name: str
    category: str
    colour: str
    facts: dict[str, str]
    dated: dict[str, list[list]]  # key -> [[year, value], ...], oldest first
    split: str
    picture: str  # relative path of the entity's picture

    @property
    def noun(self) -> str:
        return NOUNS[self.category][0]

    @property
    def page_noun(self) -> str:
        return NOUNS[self.category][1]

    def value(self, key: str) -> str:
        """The current value of a fact (the latest version of a dated one)."""
        if key in self.facts:
            return self.facts[key]
        return str(self.dated[key][-1][1])

    def attr(self, key: str) -> Attribute:
        return attribute(self.category, key)

    def dated_attr(self) -> Attribute:
        return dated_attribute(self.category)


@dataclass
class Person(_Row):
    """A person named by entities' facts (designer, architect, ...), with a page of their own."""

    name: str
    facts: dict[str, str]  # PERSON_FACTS key -> value


@dataclass
class SceneObject(_Row):
    entity: str
    box: list[float]  # x1, y1, x2, y2 in pixels
    colour: str
    noun: str
    expression: str  # the canonical referring expression, e.g. "the red bird on the left"
    aliases: list[str] = field(default_factory=list)  # other unique expressions


@dataclass
class Scene(_Row):
    id: str
    image: str  # relative path
    width: int
    height: int
    digest: str  # deepmmsearch.tools.cache.image_digest of the RGB image
    kind: str  # "single" (one entity filling the frame) or "multi" (entities and clutter)
    split: str
    background: str
    objects: list[SceneObject]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        row = super().from_dict(data)
        row.objects = [
            o if isinstance(o, SceneObject) else SceneObject.from_dict(o) for o in row.objects
        ]
        return row


@dataclass
class Question(_Row):
    id: str
    image: str  # relative path of the scene
    question: str
    answers: list[str]  # canonical first, then aliases
    type: str  # one of QUESTION_TYPES
    split: str
    entity: str  # the target entity id
    scene: str
    attribute: str | None  # None for search-free (colour) questions
    search: str  # what an ideal agent does: "none", "crop", "whole" or "text"
    expression: str | None = None  # how the question refers to the entity in the image
    category: str = ""  # the target entity's category (bird, building, vehicle, plant, logo)
    hop: str | None = None  # two-hop: the fact asked of the person `attribute` names (PERSON_FACTS)

    @property
    def search_required(self) -> bool:
        return self.type != "search-free"


class WorldError(ValueError):
    """The directory is not a built SimWeb world (or is damaged)."""


def read_rows(path: Path, cls: type) -> list:
    """Rows of a world file; a missing file or a damaged row is a :class:`WorldError`."""
    if not path.exists():
        raise WorldError(f"{path} is missing: rebuild the world (deepmmsearch simweb build)")
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(cls.from_dict(json.loads(line)))
                except (ValueError, TypeError) as exc:
                    raise WorldError(f"{path.name}:{n}: damaged row ({exc})") from None
    return out


def write_rows(path: Path, rows: list) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            d = r if isinstance(r, dict) else r.to_dict()
            fh.write(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n")


class World:
    """A built world on disk, loaded lazily. ``World.load(dir)`` checks the manifest."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest

    @classmethod
    def load(cls, root: str | Path) -> World:
        root = Path(root)
        mf = root / WORLD_FILE
        if not mf.exists():
            raise WorldError(
                f"{root} is not a SimWeb world (no {WORLD_FILE}); build one with "
                f"`deepmmsearch simweb build --seed 0 --out {root}`"
            )
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise WorldError(f"{mf}: not valid JSON ({exc})") from None
        return cls(root, manifest)

    def path(self, rel: str) -> Path:
        return self.root / rel

    @cached_property
    def entities(self) -> dict[str, Entity]:
        return {e.id: e for e in read_rows(self.root / "entities.jsonl", Entity)}

    @cached_property
    def scenes(self) -> dict[str, Scene]:
        return {s.id: s for s in read_rows(self.root / "scenes.jsonl", Scene)}

    @cached_property
    def questions(self) -> dict[str, Question]:
        return {q.id: q for q in read_rows(self.root / "questions.jsonl", Question)}

    @cached_property
    def people(self) -> dict[str, Person]:
        """Person rows by name (empty for a world built before people had pages)."""
        path = self.root / "people.jsonl"
        return {p.name: p for p in read_rows(path, Person)} if path.exists() else {}

    def person_fact(self, e: Entity, attribute: str, fact: str) -> str | None:
        """A two-hop answer: ``fact`` of the person ``e``'s ``attribute`` names (None: no page)."""
        person = self.people.get(e.value(attribute))
        return person.facts.get(fact) if person else None

    @cached_property
    def scene_by_digest(self) -> dict[str, Scene]:
        return {s.digest: s for s in self.scenes.values()}

    @cached_property
    def entity_by_name(self) -> dict[str, Entity]:
        return {e.name: e for e in self.entities.values()}

    @cached_property
    def by_category(self) -> dict[str, list[Entity]]:
        out: dict[str, list[Entity]] = {}
        for e in self.entities.values():
            out.setdefault(e.category, []).append(e)
        return out

    @cached_property
    def question_by_text(self) -> dict[tuple[str, str], Question]:
        """(normalised question, scene image file name) -> question; for callers without ids."""
        return {
            (normalise_expression(q.question), Path(q.image).name): q
            for q in self.questions.values()
        }

    def find_question(self, question: str, image: str | None) -> Question | None:
        key = (normalise_expression(question), Path(image).name if image else "")
        return self.question_by_text.get(key)
