"""The world's annotation grounder and the ``simweb`` dataset loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from deepmmsearch.data.benchmarks.base import DatasetError
from deepmmsearch.data.benchmarks.simweb import load_simweb
from deepmmsearch.registry import DATASET, GROUNDER
from deepmmsearch.simweb.grounder import SimWebGrounder
from deepmmsearch.tools.crop import load_image
from deepmmsearch.types import Box, Sample


async def test_grounder_resolves_recorded_expressions(world_dir, world):
    g = GROUNDER.build({"name": "simweb", "world": str(world_dir)})
    assert isinstance(g, SimWebGrounder)
    multi = [s for s in world.scenes.values() if s.kind == "multi" and len(s.objects) >= 3][:10]
    assert multi
    for scene in multi:
        image = load_image(world_dir / scene.image)
        for obj in scene.objects:
            for expr in [obj.expression, *obj.aliases, obj.expression.upper() + "!"]:
                assert await g.ground(image, expr) == Box(*obj.box), expr
        assert await g.ground(image, "the unicorn on the moon") is None
        other = next(o for o in scene.objects)
        assert await g.ground(image, f"the {other.colour} submarine") is None


async def test_grounder_needs_one_of_the_worlds_scenes(world_dir, world):
    g = SimWebGrounder(world)
    scene = next(iter(world.scenes.values()))
    image = load_image(world_dir / scene.image)
    image.putpixel((0, 0), (1, 2, 3))  # another picture: the content hash no longer matches
    assert await g.ground(image, scene.objects[0].expression) is None
    assert await g.ground(Image.new("RGB", (50, 50)), "the red bird") is None


def test_loader_splits_types_limit_and_metadata(world_dir, world):
    data = DATASET.build({"name": "simweb", "path": str(world_dir), "split": "test"})
    test = list(data)
    assert test and all(isinstance(s, Sample) and s.split == "test" for s in test)
    assert len(test) == sum(q.split == "test" for q in world.questions.values())
    s = test[0]
    q = world.questions[s.id]
    assert s.question == q.question and s.answers == q.answers and s.question_type == q.type
    assert Path(s.image).is_absolute() and Path(s.image).is_file() and s.source == "simweb"
    assert s.search_required == (q.type != "search-free") and s.category == q.category
    assert s.metadata == {
        "world": str(world_dir.resolve()),
        "scene": q.scene,
        "entity": q.entity,
        "attribute": q.attribute,
        "expression": q.expression,
        "search": q.search,
        "hop": q.hop,
    }
    name = world.entities[q.entity].name
    assert all(name not in str(v) for v in s.metadata.values())  # no answer, no name leaks
    free = load_simweb(str(world_dir / "questions.jsonl"), types="search-free")
    assert free.samples and {x.question_type for x in free} == {"search-free"}
    a = load_simweb(str(world_dir), split="train", limit=20, seed=1).ids()
    assert a == load_simweb(str(world_dir), split="train", limit=20, seed=1).ids() and len(a) == 20
    assert a != load_simweb(str(world_dir), split="train", limit=20, seed=2).ids()


def test_loader_errors_and_bad_rows(world_dir, tmp_path):
    with pytest.raises(DatasetError, match="split"):
        load_simweb(str(world_dir), split="dev")
    with pytest.raises(DatasetError, match="types"):
        load_simweb(str(world_dir), types=["riddle"])
    with pytest.raises(DatasetError, match="not found"):
        load_simweb(str(tmp_path / "nowhere"))
    lines = (world_dir / "questions.jsonl").read_text().splitlines()[:5]
    (tmp_path / "questions.jsonl").write_text(
        "\n".join(lines + ["{not json", '{"id": "x"}']) + "\n"
    )
    data = load_simweb(str(tmp_path / "questions.jsonl"))
    assert len(data) == 0 and data.report.bad_rows == 2 and data.report.missing_images == 5


async def test_damaged_world_files_are_clear_errors(world_dir, world, tmp_path):
    import shutil

    from deepmmsearch.simweb.world import World, WorldError

    g = SimWebGrounder(world)
    scene = next(iter(world.scenes.values()))
    rgba = load_image(world_dir / scene.image).convert("RGBA")
    assert await g.ground(rgba, scene.objects[0].expression) == Box(*scene.objects[0].box)
    copy = tmp_path / "w"
    shutil.copytree(world_dir, copy, ignore=shutil.ignore_patterns("images", "index"))
    path = copy / "scenes.jsonl"
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(WorldError, match=r"scenes.jsonl:\d+: damaged row"):
        SimWebGrounder(copy).world.scenes  # noqa: B018
    (copy / "entities.jsonl").unlink()
    with pytest.raises(WorldError, match="missing"):
        World.load(copy).entities  # noqa: B018
