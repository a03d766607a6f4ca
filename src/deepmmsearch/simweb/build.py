"""Build a SimWeb world: entities, pictures, scenes, questions, pages, then the two indexes.

    deepmmsearch simweb build --seed 0 --out runs/simweb --size small

or ``build_world(out, seed=0, size="small")``. Deterministic for a seed: every generated file is
byte-identical between builds (``world.json`` records their SHA-256; the indexes are derived data
built by the project's own ``index`` backends and are not hashed). Held-out splits: every entity
belongs to one split (train, val or test) and a question's scene holds only entities of its split,
so no val/test entity appears in a training question.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import random
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from deepmmsearch.simweb.facts import (
    ATTRIBUTES,
    CATEGORIES,
    COLOURS,
    FactPools,
    draw_facts,
    draw_person_facts,
)
from deepmmsearch.simweb.names import NameGenerator
from deepmmsearch.simweb.pages import image_page, text_pages
from deepmmsearch.simweb.pictures import entity_picture
from deepmmsearch.simweb.questions import make_question
from deepmmsearch.simweb.scenes import SceneStyle, group_entities, render_scene
from deepmmsearch.simweb.world import (
    FORMAT_VERSION,
    WORLD_FILE,
    Entity,
    Person,
    Question,
    Scene,
    write_rows,
)

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SizeSpec:
    entities: int
    picture: int  # entity picture side, pixels
    scene: tuple[int, int]  # multi-entity scene size
    single: int  # single-entity scene side
    val_fraction: float = 0.04
    test_fraction: float = 0.1
    rounds: int = 1  # scenes (questions) per entity


SIZES: dict[str, SizeSpec] = {
    "small": SizeSpec(3000, 64, (224, 224), 144),
    "medium": SizeSpec(12000, 64, (256, 256), 144, 0.03, 0.05),
    "large": SizeSpec(40000, 80, (320, 320), 176, 0.02, 0.03),
}


def _rng(seed: int, *parts: Any) -> random.Random:
    return random.Random(":".join(["simweb", str(seed), *map(str, parts)]))


def make_entities(seed: int, spec: SizeSpec) -> list[Entity]:
    rng = _rng(seed, "entities")
    names = NameGenerator(rng)
    pools = FactPools.make(names, spec.entities)
    n_test = max(1, round(spec.entities * spec.test_fraction))
    n_val = max(1, round(spec.entities * spec.val_fraction))
    splits = ["test"] * n_test + ["val"] * n_val + ["train"] * (spec.entities - n_test - n_val)
    rng.shuffle(splits)
    colours = list(COLOURS)
    out = []
    for i, split in enumerate(splits):
        cat = CATEGORIES[i % len(CATEGORIES)]
        facts, dated = draw_facts(cat, rng, pools)
        eid = f"e{i:06d}"
        out.append(
            Entity(
                eid,
                names.entity(),
                cat,
                rng.choice(colours),
                facts,
                {k: [list(v) for v in vs] for k, vs in dated.items()},
                split,
                f"images/entities/{eid}.png",
            )
        )
    return out


def make_people(seed: int, entities: list[Entity]) -> list[Person]:
    """Every person an entity's facts name, in first-mention order, with their own facts (a
    birthplace among the world's cities, a birth year)."""
    names: dict[str, None] = {}
    cities = sorted({e.facts["city"] for e in entities})
    for e in entities:
        for a in ATTRIBUTES[e.category]:
            if a.kind != "person":
                continue
            values = [v for _, v in e.dated[a.key]] if a.dated else [e.facts[a.key]]
            names.update(dict.fromkeys(str(v) for v in values))
    rng = _rng(seed, "people")
    pools = FactPools(cities, [])
    return [Person(n, draw_person_facts(rng, pools)) for n in names]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_png(img, path: Path) -> None:
    img.save(path, format="PNG", compress_level=1)


# Rendering runs in worker processes (fork) when jobs > 1. Every item draws from its own random
# stream keyed by its id, so the files are identical whatever the number of jobs.
_SHARED: dict[str, Any] = {}


def _map(fn, items: list, jobs: int, desc: str, progress: bool) -> list:
    bar = {"desc": desc, "total": len(items), "disable": not progress, "mininterval": 1.0}
    # fork only from a process without torch's thread pools (forking them can deadlock)
    if (
        jobs <= 1
        or len(items) < 16
        or "fork" not in mp.get_all_start_methods()
        or "torch" in sys.modules
    ):
        return [fn(x) for x in tqdm(items, **bar)]
    with mp.get_context("fork").Pool(jobs) as pool:
        return list(tqdm(pool.imap(fn, items, chunksize=32), **bar))


def _picture_job(e: Entity) -> None:
    seed, spec, root = _SHARED["seed"], _SHARED["spec"], _SHARED["root"]
    img = entity_picture(e.category, COLOURS[e.colour], _rng(seed, "picture", e.id), spec.picture)
    _save_png(img, root / e.picture)


def _scene_job(plan) -> Scene:
    from deepmmsearch.tools.cache import image_digest

    seed, root, style = _SHARED["seed"], _SHARED["root"], _SHARED["style"]
    pictures = {}  # read back from disk: a large world's pictures need not all sit in memory
    for e in plan.entities:
        with Image.open(root / e.picture) as im:
            pictures[e.id] = im.convert("RGB")
    img, objects, bg = render_scene(plan, pictures, _rng(seed, "scene", plan.id), style)
    rel = f"images/scenes/{plan.id}.png"
    _save_png(img, root / rel)
    return Scene(
        plan.id, rel, img.width, img.height, image_digest(img), plan.kind, plan.split, bg, objects
    )


def _render(
    seed: int,
    entities: list[Entity],
    spec: SizeSpec,
    root: Path,
    jobs: int,
    progress: bool,
    people: list[Person] = (),
) -> tuple[list[Scene], list[Question]]:
    for sub in ("entities", "scenes"):
        (root / "images" / sub).mkdir(parents=True, exist_ok=True)
    _SHARED.update(
        seed=seed, spec=spec, root=root, style=SceneStyle(size=spec.scene, single_size=spec.single)
    )
    try:
        _map(_picture_job, entities, jobs, "pictures", progress)
        rng = _rng(seed, "scenes")
        plans = []
        for split in SPLITS:
            members = [e for e in entities if e.split == split]
            for _ in range(spec.rounds):
                plans += group_entities(members, rng, split=split, start=len(plans))
        scenes = _map(_scene_job, plans, jobs, "scenes", progress)
    finally:
        _SHARED.clear()
    questions: list[Question] = []
    by_name = {p.name: p for p in people}
    for plan, scene in zip(plans, scenes):
        qrng = _rng(seed, "questions", plan.id)
        for e, obj in zip(plan.entities, scene.objects):
            questions.append(make_question(f"q{len(questions):06d}", e, scene, obj, qrng, by_name))
    return scenes, questions


def _write_corpus(
    seed: int, entities: list[Entity], people: list[Person], root: Path
) -> tuple[int, int]:
    rng = _rng(seed, "pages")
    n_text = 0
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for page in text_pages(entities, rng, people):
            fh.write(json.dumps(page, ensure_ascii=False, sort_keys=True) + "\n")
            n_text += 1
    write_rows(root / "image_pages.jsonl", [image_page(e) for e in entities])
    return n_text, len(entities)


def _manifest(
    seed: int,
    size: str,
    spec: SizeSpec,
    root: Path,
    entities: list[Entity],
    scenes: list[Scene],
    questions: list,
    n_pages: int,
    n_image_pages: int,
    n_people: int,
) -> dict:
    files = {
        name: _sha256(root / name)
        for name in (
            "entities.jsonl",
            "people.jsonl",
            "corpus.jsonl",
            "image_pages.jsonl",
            "scenes.jsonl",
            "questions.jsonl",
        )
    }
    images = hashlib.sha256()
    for p in sorted((root / "images").rglob("*.png")):
        images.update(f"{p.relative_to(root).as_posix()}:{_sha256(p)}\n".encode())
    by = Counter((q.split, q.type) for q in questions)
    return {
        "format": "simweb",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "size": size,
        "spec": asdict(spec),
        "counts": {
            "entities": dict(Counter(e.split for e in entities)),
            "people": n_people,
            "scenes": dict(Counter(s.split for s in scenes)),
            "questions": {s: {t: by[(s, t)] for t in sorted({t for _, t in by})} for s in SPLITS},
            "pages": n_pages,
            "image_pages": n_image_pages,
        },
        "files": files,
        "images_sha256": images.hexdigest(),
        "indexes": {"text": "index/text", "image": "index/image"},
    }


def resolve_spec(size: str, entities: int | None = None, rounds: int | None = None) -> SizeSpec:
    """The size's spec with the given overrides, checked."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    spec = SIZES[size]
    if entities is not None:
        spec = replace(spec, entities=int(entities))
    if rounds is not None:
        spec = replace(spec, rounds=int(rounds))
    if spec.entities < 20:
        raise ValueError("a world needs at least 20 entities")
    if spec.rounds < 1:
        raise ValueError("rounds (questions per entity) must be >= 1")
    return spec


def _prepare(root: Path, overwrite: bool) -> None:
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} exists and is not empty; pass --overwrite to replace it")
        if not (root / WORLD_FILE).exists():
            raise FileExistsError(f"{root} is not a SimWeb world; refusing to delete it")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def build_world(
    out: str | Path,
    *,
    seed: int = 0,
    size: str = "small",
    entities: int | None = None,
    rounds: int | None = None,
    indexes: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    jobs: int | None = None,
) -> dict:
    """Build a world into ``out``; returns the manifest (also written to ``out/world.json``).

    ``entities`` and ``rounds`` (scenes, hence questions, per entity) override the size's values;
    ``jobs`` worker processes draw the pictures (default: up to 2).
    """
    spec = resolve_spec(size, entities, rounds)
    root = Path(out)
    _prepare(root, overwrite)
    jobs = min(2, os.cpu_count() or 1) if jobs is None else max(1, jobs)
    t0 = time.perf_counter()
    ents = make_entities(seed, spec)
    people = make_people(seed, ents)
    scenes, questions = _render(seed, ents, spec, root, jobs, progress, people)
    write_rows(root / "entities.jsonl", ents)
    write_rows(root / "people.jsonl", people)
    write_rows(root / "scenes.jsonl", scenes)
    write_rows(root / "questions.jsonl", questions)
    n_pages, n_img = _write_corpus(seed, ents, people, root)
    manifest = _manifest(
        seed, size, spec, root, ents, scenes, questions, n_pages, n_img, len(people)
    )
    (root / WORLD_FILE).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    t_gen = time.perf_counter() - t0
    log.info(
        "generated %d entities, %d scenes, %d questions, %d pages in %.1fs",
        len(ents),
        len(scenes),
        len(questions),
        n_pages,
        t_gen,
    )
    if indexes:
        build_indexes(root, progress=progress)
    log.info("world ready in %.1fs: %s", time.perf_counter() - t0, root)
    return manifest


def build_indexes(root: str | Path, *, progress: bool = True) -> None:
    """Index the world's corpus and image pages with the project's own local backends."""
    from deepmmsearch.tools.image.local import build_index as build_image_index
    from deepmmsearch.tools.text.bm25 import build_index as build_text_index

    root = Path(root)
    t0 = time.perf_counter()
    build_text_index(
        root / "corpus.jsonl", root / "index" / "text", show_progress=progress, overwrite=True
    )
    t1 = time.perf_counter()
    build_image_index(
        str(root / "image_pages.jsonl"), str(root / "index" / "image"), progress=progress
    )
    log.info("indexes: text %.1fs, image %.1fs", t1 - t0, time.perf_counter() - t1)
