"""Qwen3-VL and Qwen3.5 as base models, on tiny random models built locally (the family table of
conversation/families.py, chosen by ``model_type``): our template gives prompts the family's own
processor accepts, image-token counts follow the processor's resize, the SFT labels equal the
rollout env_mask token by token, the ``hf`` policy runs an episode with real tool calls, a model
fully fine-tuned from scratch on two trajectories replays them through ``ask``, and the ``self``
grounder reads the family's 0–1000 boxes. (One TRL GRPO step: tests/grpo/test_grpo_families.py.)
"""

from __future__ import annotations

import asyncio
import json

import pytest
import torch
import yaml
from PIL import Image

from deepmmsearch.agent.loop import run_episode
from deepmmsearch.cli import main as cli_main
from deepmmsearch.conversation.encoding import IGNORE_INDEX, encode_messages, encode_trajectory
from deepmmsearch.conversation.families import FAMILIES, family_for, family_of
from deepmmsearch.conversation.template import render_text
from deepmmsearch.models.processor import ImageEncoder
from deepmmsearch.policies.hf import HFPolicy
from deepmmsearch.tools.crop import load_image
from deepmmsearch.train.sft_data import encode_examples, example_texts, read_examples
from deepmmsearch.types import Box, Message

from .conftest import (
    ENTITIES,
    QUESTION,
    ScriptForcer,
    entity_episode,
    entity_image,
    entity_script,
    make_toolbox,
    write_jsonl,
)

NEW_FAMILIES = ["qwen3_vl", "qwen3_5"]
SIZES = [(7, 5), (31, 33), (56, 56), (64, 300), (100, 70), (300, 64), (224, 224), (500, 499),
         (1000, 20), (17, 1200), (640, 480), (1280, 720), (3000, 2000)]


@pytest.fixture(scope="module", params=NEW_FAMILIES)
def tiny_family(request, sft_data):
    """(family name, model, processor) of a tiny random model whose tokenizer saw the SFT data."""
    from deepmmsearch.models.tiny import TinySpec, build_tiny, default_texts

    texts = default_texts() + list(example_texts(read_examples(sft_data[1])))
    model, processor = build_tiny(texts, TinySpec(vocab_size=400, family=request.param))
    return request.param, model, processor


def test_the_table_is_chosen_by_model_type(tiny_family):
    name, model, processor = tiny_family
    fam = family_of(model)
    assert fam.name == name and model.config.model_type in fam.model_types
    assert type(model).__name__ == fam.model_class
    assert fam.processor_class in [c.__name__ for c in type(processor).__mro__]
    assert processor.image_processor.patch_size == fam.patch_size == 16
    assert fam.image_factor == 32 and fam.self_coords == "norm1000"
    assert family_for(None).name == "qwen2_5_vl"  # the paper's configs keep Qwen2.5-VL


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("budget", [(56 * 56, 112 * 112), (3136, 1003520)])
def test_image_token_counts_follow_the_processors_resize(family, budget, tmp_path):
    from deepmmsearch.models.tiny import TinySpec, tiny_image_processor

    fam = family_for(family)
    lo, hi = budget
    ip = tiny_image_processor(fam, TinySpec(family=family, min_pixels=lo, max_pixels=hi))
    lo, hi = ip.size["shortest_edge"], ip.size["longest_edge"]  # the bounds it resizes with
    enc = ImageEncoder(ip, cache_size=0)
    for w, h in SIZES:
        path = tmp_path / f"{w}x{h}.png"
        Image.new("RGB", (w, h), (w % 255, h % 255, 7)).save(path)
        grid = ip(images=[load_image(str(path))], return_tensors="pt")["image_grid_thw"][0]
        want = int(grid.prod()) // fam.merge_size ** 2
        assert enc.token_counts([str(path)]) == [want], (family, w, h)
        assert fam.image_tokens(h, w, min_pixels=lo, max_pixels=hi) == want, (family, w, h)
        rw, rh = fam.resized_size(w, h, min_pixels=lo, max_pixels=hi)
        assert (int(grid[1]) * fam.patch_size, int(grid[2]) * fam.patch_size) == (rh, rw)


def test_our_template_gives_prompts_the_processor_accepts(tiny_family, sft_data, tmp_path):
    """The family's own processor expands our prompt's image pads to the same ids we encode, and
    the model runs on a whole rendered trajectory."""
    _, model, processor = tiny_family
    path = entity_image(tmp_path, 4)
    counts = ImageEncoder(processor.image_processor).token_counts([path])
    msgs = [Message("user", "<image>What is it?", images=(path,))]
    enc = encode_messages(processor.tokenizer, msgs, image_tokens=counts)
    out = processor(text=[render_text(msgs)], images=[load_image(path)], return_tensors="pt")
    assert out["input_ids"][0].tolist() == enc.prompt_ids
    traj = sft_data[0][0]
    whole = processor(text=[render_text(traj.messages(), add_generation_prompt=False)],
                      images=[load_image(traj.image)], return_tensors="pt")
    ours = encode_trajectory(processor.tokenizer, traj, ImageEncoder(processor.image_processor)
                             .token_counts([traj.image]))
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert whole["input_ids"][0].tolist().count(pad) == ours.input_ids.count(pad)
    with torch.no_grad():
        logits = model(**whole).logits
    assert logits.shape[1] == whole["input_ids"].shape[1] and torch.isfinite(logits).all()


@pytest.fixture(scope="module")
def rollout(tiny_family, tmp_path_factory):
    name, model, processor = tiny_family
    folder = tmp_path_factory.mktemp(f"rollout_{name}")
    policy = HFPolicy.from_objects(model, processor, extra_processors=[ScriptForcer(processor.tokenizer)])
    traj = asyncio.run(run_episode(entity_episode(folder, 5), policy, make_toolbox()))
    return policy, traj, folder


def test_hf_policy_runs_an_episode_with_real_tool_calls(rollout):
    _, traj, _ = rollout
    name, speed = ENTITIES[5]
    assert [t.model_text for t in traj.turns] == entity_script(name, speed)
    assert [t.tool_call.kind for t in traj.turns[:2]] == ["image_search", "text_search"]
    assert name in traj.turns[0].observation and traj.answer == f"{speed} km/h"


def test_sft_labels_equal_the_rollout_env_mask(rollout, tiny_family):
    policy, traj, folder = rollout
    _, _, processor = tiny_family
    rl = policy.rollout_tokens(traj, forget=False)
    (row,) = encode_examples(read_examples(write_jsonl([traj], folder / "one.jsonl")),
                             processor.tokenizer, ImageEncoder(processor.image_processor))
    assert row["input_ids"] == rl.input_ids
    assert [int(x != IGNORE_INDEX) for x in row["labels"]] == rl.loss_mask
    assert [x for x in row["labels"] if x != IGNORE_INDEX] == [
        t for t, m in zip(rl.completion_ids, rl.env_mask) if m]
    injected = processor.tokenizer.decode([t for t, m in zip(rl.completion_ids, rl.env_mask) if not m])
    assert injected == "".join(t.observation for t in traj.turns if t.observation)


@pytest.mark.slow
@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_full_finetune_from_scratch_replays_through_ask(family, sft_data, tmp_path, capsys):
    cfg = {"stage": "sft", "data": str(sft_data[1]), "tiny": {"vocab_size": 400, "family": family},
           "out": str(tmp_path / "run"), "method": "full", "max_steps": 100, "learning_rate": 1e-2,
           "max_examples": 2, "per_device_batch_size": 1, "global_batch_size": 1,
           "lr_scheduler": "constant", "warmup_ratio": 0.0, "logging_steps": 50, "save_steps": 1000,
           "torch_threads": 1, "device": "cpu", "save_adapter": False}
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    assert cli_main(["sft", "-c", str(tmp_path / "sft.yaml")]) == 0
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert saved["model_type"] == family
    toolbox = make_toolbox()
    agent = {"stage": "agent", "agent": {
        "policy": {"name": "hf", "model": str(tmp_path / "run" / "model"), "device": "cpu",
                   "torch_threads": 1},
        "text_search": {"name": "fixture", "responses": {
            q: [h.to_dict() for h in hits] for q, hits in toolbox.text_search.table.items()}},
        "image_search": {"name": "fixture", "responses": {
            q: [h.to_dict() for h in hits] for q, hits in toolbox.image_search.table.items()}},
        "grounder": {"name": "fixed"}, "summarizer": {"name": "none"}, "prompts": "compact"}}
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(agent), encoding="utf-8")
    capsys.readouterr()
    for i in (0, 1):  # the two trained trajectories
        image = str(sft_data[1].parent / f"entity{i}.png")
        assert cli_main(["ask", "-c", str(tmp_path / "agent.yaml"), "--image", image, QUESTION,
                         "--json"]) == 0
        traj = json.loads(capsys.readouterr().out)
        assert [t["model_text"] for t in traj["turns"]] == entity_script(*ENTITIES[i])


@pytest.mark.parametrize("family", NEW_FAMILIES)
async def test_self_grounder_reads_the_familys_0_1000_boxes(family, tmp_path):
    from deepmmsearch.agent.state import Episode
    from deepmmsearch.agent.toolbox import Toolbox
    from deepmmsearch.registry import GROUNDER
    from deepmmsearch.tools.image.fixture import FixtureImageSearch
    from deepmmsearch.tools.summarize import PassthroughSummarizer
    from deepmmsearch.tools.text.fixture import FixtureTextSearch

    image = Image.new("RGB", (1000, 500), (20, 90, 160))
    g = GROUNDER.build({"name": "self", "coords": family})
    reply = '```json\n[{"bbox_2d": [100, 100, 500, 900], "label": "bird"}]\n```'
    assert await g.ground(image, reply) == Box(100, 50, 500, 450)
    assert await g.ground(image, "[0, 0, 1000, 1000]") == Box(0, 0, 1000, 500)
    path = tmp_path / "scene.png"
    image.save(path)
    toolbox = Toolbox(text_search=FixtureTextSearch(responses={}),
                      image_search=FixtureImageSearch(responses={"*": [{"title": "t", "url": "u",
                                                                      "snippet": "s"}]}),
                      grounder=g, summarizer=PassthroughSummarizer(), crop_margin=0.0)
    ep = Episode("Which bird?", str(path), episode_id="g")
    step = ep.step(f"<reason>the bird</reason><img_search>{reply}</img_search>")
    call = await toolbox.run(step, question="Which bird?", image=str(path))
    assert call.error is None and call.box == Box(100, 50, 500, 450)
