"""End to end on local backends: a scripted policy runs text search -> crop image search -> text
search -> answer (BM25 text index + the local image index); the trajectory records the box and
the saved crop. Then the paper's ablations: crop search off, and the image-search budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from deepmmsearch.agent.loop import run_episode
from deepmmsearch.agent.runtime import build_agent
from deepmmsearch.config import load_config
from deepmmsearch.tools.image.synthetic import make_picture, make_scene
from deepmmsearch.types import Trajectory

R = "<reason>{}</reason>"
TARGET, OTHERS = 10, (20, 30)
EXPR = "the picture on the left"


@pytest.fixture(scope="module")
def world(image_index, tmp_path_factory) -> dict:
    """A cluttered scene holding gallery pictures 10, 20, 30, a BM25 corpus about them."""
    bm25 = pytest.importorskip("deepmmsearch.tools.text.bm25")
    root = tmp_path_factory.mktemp("episode")
    ids = [TARGET, *OTHERS]
    scene, boxes = make_scene([make_picture(i, 96 + 16 * (i % 3)) for i in ids], size=(400, 300), seed=11)
    scene.save(root / "scene.png")
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"id": f"d{i}", "title": f"Entity {i}", "url": f"https://wiki.test/e{i}",
                                 "text": f"Entity {i} is a landmark. Its height is {100 + i} metres."}) + "\n" for i in range(40))
        fh.write(json.dumps({"id": "scene", "title": "Scenes with pictures", "url": "https://wiki.test/s",
                             "text": "Cluttered scenes show several pictures side by side."}) + "\n")
    bm25.build_index(root / "corpus.jsonl", root / "text_index", show_progress=False)
    return {"root": root, "scene": str(root / "scene.png"), "box": boxes[0].as_list(),
            "text_index": str(root / "text_index"), "image_index": str(image_index)}


def _agent(world: dict, turns: list[str], tmp_path: Path, **limits):
    cfg = load_config(data={"stage": "agent", "agent": {
        "policy": {"name": "scripted", "turns": turns},
        "text_search": {"name": "bm25", "index": world["text_index"]},
        "image_search": {"name": "local", "index": world["image_index"]},
        "grounder": {"name": "fixed", "boxes": {EXPR: world["box"]}},
        "summarizer": "extractive",
        "artifacts_dir": str(tmp_path / "artifacts"),
        "limits": limits,
    }})
    return build_agent(cfg.agent)


async def _run(world, turns, tmp_path, **limits) -> Trajectory:
    agent = _agent(world, turns, tmp_path, **limits)
    ep = agent.episode("How tall is the landmark on the left?", world["scene"], episode_id="ep1")
    return await run_episode(ep, agent.policy, agent.toolbox)


FULL = [
    R.format("First, what kind of scene is this?") + "<text_search>cluttered scenes pictures</text_search>",
    R.format("Search the picture on the left by itself.") + f"<img_search>{EXPR}</img_search>",
    R.format("It is Entity 10; find its height.") + "<text_search>Entity 10 height</text_search>",
    R.format("The page gives the height.") + "<answer>110 metres</answer>",
]


async def test_text_then_crop_image_then_text_then_answer(world, tmp_path):
    traj = await _run(world, FULL, tmp_path)
    assert traj.stop_reason == "answer" and traj.answer == "110 metres"
    calls = traj.tool_calls
    assert [c.kind for c in calls] == ["text_search", "image_search", "text_search"]
    assert all(c.error is None for c in calls)
    img = calls[1]
    assert img.backend == "local" and img.grounder == "fixed" and not img.whole_image
    assert img.query == EXPR and img.box is not None
    x1, y1, x2, y2 = world["box"]
    assert img.box.x1 <= x1 and img.box.x2 >= x2 and img.box.y1 <= y1 and img.box.y2 >= y2  # padded
    assert img.hits[0].url == f"https://gallery.test/e{TARGET}"
    assert f"Entity {TARGET}" in traj.turns[1].observation
    crop, boxed = Path(img.crop_path), Path(img.boxed_path)
    assert crop.exists() and boxed.exists() and crop.parent == tmp_path / "artifacts" / "ep1"
    assert Image.open(crop).size == (round(img.box.width), round(img.box.height))
    assert Image.open(boxed).size == Image.open(world["scene"]).size
    assert calls[2].hits[0].url == f"https://wiki.test/e{TARGET}" and "110 metres" in calls[2].summary
    again = Trajectory.from_dict(json.loads(traj.to_json()))  # the record keeps box and crop paths
    assert again.tool_calls[1].box == img.box and again.tool_calls[1].crop_path == img.crop_path


async def test_crop_search_off_searches_the_whole_scene(world, tmp_path):
    traj = await _run(world, FULL, tmp_path, crop_search=False)
    img = traj.tool_calls[1]
    assert img.whole_image and img.box is None and img.crop_path is None
    assert "crop search is disabled" in img.note and "crop search is disabled" in traj.turns[1].observation
    assert img.hits and img.hits[0].url != f"https://gallery.test/e{TARGET}"  # clutter confuses it
    assert not (tmp_path / "artifacts" / "ep1").exists()


TWO_IMAGE_SEARCHES = [
    R.format("Search the whole image.") + "<img_search><img></img_search>",
    R.format("Now the picture on the left.") + f"<img_search>{EXPR}</img_search>",
    R.format("Done.") + "<answer>110 metres</answer>",
]


async def test_image_search_budget_default_one(world, tmp_path):
    traj = await _run(world, TWO_IMAGE_SEARCHES, tmp_path)
    assert [c.kind for c in traj.tool_calls] == ["image_search"]
    assert traj.turns[1].tool_call is None
    assert "image search may be used once" in traj.turns[1].observation


async def test_image_search_budget_raised_to_two(world, tmp_path):
    traj = await _run(world, TWO_IMAGE_SEARCHES, tmp_path, max_image_searches=2)
    whole, crop = traj.tool_calls
    assert whole.whole_image and not crop.whole_image
    assert crop.hits[0].url == f"https://gallery.test/e{TARGET}"
    assert whole.hits[0].url != f"https://gallery.test/e{TARGET}"


async def test_image_search_disabled(world, tmp_path):
    traj = await _run(world, TWO_IMAGE_SEARCHES, tmp_path, max_image_searches=0)
    assert traj.tool_calls == [] and "not available" in traj.turns[0].observation
