"""The vision warm-up: cell labels from a scene's annotations, and a warm-up that trains the
tower's probes on SimWeb scenes, rescales its output and leaves the language model alone."""

from __future__ import annotations

import pytest
import torch

from deepmmsearch.registry import ConfigError
from deepmmsearch.simweb.world import Scene, SceneObject
from deepmmsearch.train.vision_warmup import (
    VisionWarmupSpec,
    cell_labels,
    label_vocab,
    warm_up_vision,
)


def _scene(objects: list[SceneObject]) -> Scene:
    return Scene("s1", "x.png", 224, 224, "d", "multi", "train", "plain", objects)


def test_cells_take_the_object_that_covers_them():
    vocab = label_vocab()
    red = SceneObject("e1", [0, 0, 100, 100], "red", "bird", "the red bird at the top left")
    blue = SceneObject("e2", [130, 120, 224, 224], "blue", "car", "the blue car at the bottom right")
    lab = cell_labels(_scene([red, blue]), (2, 2), 0.2, vocab)
    colours = [vocab["colour"][i - 1] if i else None for i in lab.colour]
    assert colours == ["red", None, None, "blue"]  # row-major: top left ... bottom right
    assert [vocab["noun"][i - 1] if i else None for i in lab.noun] == ["bird", None, None, "car"]
    assert vocab["region"][lab.region[0] - 1] == "at the top left"
    assert vocab["region"][lab.region[3] - 1] == "at the bottom right"
    # a sliver below min_cover is no label; a lone object's region is the whole image
    lab = cell_labels(_scene([SceneObject("e1", [0, 0, 20, 20], "red", "bird", "the red bird")]),
                      (2, 2), 0.2, vocab)
    assert lab.colour == [0, 0, 0, 0]
    lab = cell_labels(_scene([SceneObject("e1", [0, 0, 224, 224], "red", "bird", "the red bird")]),
                      (2, 2), 0.2, vocab)
    assert {vocab["region"][i - 1] for i in lab.region} == {"whole"}


def test_spec_is_validated(tmp_path):
    with pytest.raises(ConfigError):
        VisionWarmupSpec(world=str(tmp_path), steps=0)
    with pytest.raises(ConfigError):
        VisionWarmupSpec(world=str(tmp_path), min_cover=0.0)


@pytest.mark.slow
def test_warm_up_trains_the_tower_only_and_matches_the_embedding_norm(tmp_path):
    from deepmmsearch.models.tiny import TinySpec, build_tiny
    from deepmmsearch.simweb.build import build_world

    world = tmp_path / "world"
    build_world(world, seed=3, entities=20, progress=False, jobs=1, indexes=False)
    model, proc = build_tiny(None, TinySpec(vocab_size=300, min_pixels=112 * 112, max_pixels=112 * 112))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    info = warm_up_vision(model, proc, VisionWarmupSpec(world=str(world), steps=12, batch_size=4,
                                                        learning_rate=3e-3))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("visual" in n for n in changed)  # never the language model
    assert any("patch_embed" in n for n in changed) and any("merger" in n for n in changed)
    assert info["steps"] == 12 and set(info["cell_accuracy"]) == {"colour", "noun", "region"}
    # the rescaled features have the word embeddings' mean norm
    from deepmmsearch.models.processor import ImageEncoder
    from deepmmsearch.simweb.world import World

    w = World.load(world)
    paths = [str(w.path(s.image)) for s in list(w.scenes.values())[:8]]
    enc = ImageEncoder(proc.image_processor).encode(paths)
    with torch.no_grad():
        feats = model.model.visual(enc["pixel_values"], grid_thw=enc["image_grid_thw"]).pooler_output
    words = model.get_input_embeddings().weight.norm(dim=-1).mean()
    assert float(feats.norm(dim=-1).mean() / words) == pytest.approx(1.0, rel=0.5)


def test_sft_takes_a_warm_up_only_for_a_model_built_from_scratch(tmp_path):
    from deepmmsearch.config import load_config

    base = {"stage": "sft", "data": "x.jsonl", "method": "full",
            "vision_warmup": {"world": str(tmp_path), "steps": 5}}
    cfg = load_config(data={**base, "tiny": {"vocab_size": 300}}, expect="sft")
    assert cfg.vision_warmup.steps == 5 and cfg.vision_warmup.world == str(tmp_path)
    with pytest.raises(ConfigError, match="vision_warmup"):
        load_config(data={**base, "model": "Qwen/Qwen2.5-VL-7B-Instruct"}, expect="sft")
    with pytest.raises(ConfigError):
        load_config(data={**base, "tiny": {}, "vision_warmup": {"world": "w", "stpes": 5}}, expect="sft")
