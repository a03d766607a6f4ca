"""Fixtures for the model tests: the tiny Qwen2.5-VL (built once per session) and SFT data made
by running scripted episodes over fixture tools (the real episode engine, no model)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

ENTITIES = [
    ("Kavo", "41"), ("Telmi", "17"), ("Rusan", "83"), ("Pobit", "26"), ("Lanor", "58"),
    ("Miska", "12"), ("Dorvel", "90"), ("Sutra", "35"),
]
QUESTION = "What is the top speed of this animal?"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One thread: on a shared 2-core machine two threads ran tiny models 10-30x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def entity_image(folder: Path, i: int) -> str:
    """A distinct small picture per entity; its width keys the fixture image search."""
    from PIL import Image, ImageDraw

    w = 56 + 2 * i
    img = Image.new("RGB", (w, 56), (30 * i % 255, 90, 200 - 20 * i))
    ImageDraw.Draw(img).ellipse([8, 8, 40, 40], fill=(255, 255 - 25 * i, 0))
    path = folder / f"entity{i}.png"
    img.save(path)
    return str(path)


def entity_script(name: str, speed: str) -> list[str]:
    return [
        "<reason>I do not know this animal.</reason><img_search><img></img_search>",
        f"<reason>It is a {name}.</reason><text_search>{name} top speed</text_search>",
        f"<reason>The page gives the speed.</reason><answer>{speed} km/h</answer>",
    ]


def make_toolbox():
    """Fixture tools that know every entity: image search by picture width, text search by name."""
    from deepmmsearch.agent.toolbox import Toolbox
    from deepmmsearch.tools.grounding.basic import FixedGrounder
    from deepmmsearch.tools.image.fixture import FixtureImageSearch
    from deepmmsearch.tools.summarize import PassthroughSummarizer
    from deepmmsearch.tools.text.fixture import FixtureTextSearch

    image_hits, text_hits = {}, {}
    for i, (name, speed) in enumerate(ENTITIES):
        image_hits[f"{56 + 2 * i}x56"] = [{"title": name, "url": f"https://sim/{name}",
                                           "snippet": f"A photo of a {name}."}]
        text_hits[f"{name} top speed"] = [{"title": name, "url": f"https://sim/{name}/facts",
                                           "snippet": f"The {name} runs at {speed} km/h."}]
    return Toolbox(
        text_search=FixtureTextSearch(responses=text_hits),
        image_search=FixtureImageSearch(responses=image_hits),
        grounder=FixedGrounder(), summarizer=PassthroughSummarizer(),
    )


def entity_episode(folder: Path, i: int):
    from deepmmsearch.agent.state import Episode
    from deepmmsearch.prompts import COMPACT

    _, speed = ENTITIES[i]
    return Episode(QUESTION, entity_image(folder, i), prompts=COMPACT, episode_id=f"ep{i}",
                   gold=[f"{speed} km/h"])


def make_trajectories(folder: Path, n: int = len(ENTITIES)) -> list:
    """Run ``n`` scripted episodes (compact prompts) and return their trajectories."""
    from deepmmsearch.agent.loop import run_episode
    from deepmmsearch.policies.scripted import ScriptedPolicy

    folder.mkdir(parents=True, exist_ok=True)
    policy = ScriptedPolicy(scripts={f"ep{i}": entity_script(*e) for i, e in enumerate(ENTITIES)})
    toolbox = make_toolbox()

    async def go() -> list:
        return [await run_episode(entity_episode(folder, i), policy, toolbox) for i in range(n)]

    trajs = asyncio.run(go())
    assert all(t.answer for t in trajs), [t.stop_reason for t in trajs]
    return trajs


class ScriptForcer:
    """A LogitsProcessor that makes any model play the entity script *from what it reads*: the
    name in turn 2 is copied from the image-search ``<information>``, the speed in turn 3 from the
    text-search one. After each action it keeps forcing ``JUNK``, so only stopping at the closing
    tag gives a valid turn."""

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        self.header = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
        self.info_end = tokenizer.convert_tokens_to_ids("</information>")

    def target(self, infos: list[str]) -> str:
        import re

        if not infos:
            turn = entity_script("X", "0")[0]
        elif len(infos) == 1:
            name = re.search(r"A photo of a (\w+)", infos[0]).group(1)
            turn = entity_script(name, "0")[1]
        else:
            speed = re.search(r"runs at (\d+) km/h", infos[1]).group(1)
            turn = entity_script("X", speed)[2]
        return turn + " JUNK JUNK <information>fake</information>"

    def __call__(self, input_ids, scores):
        from deepmmsearch.protocol import extract_information

        for b in range(input_ids.shape[0]):
            ids = input_ids[b].tolist()
            n = len(self.header)
            start = max(i + n for i in range(len(ids) - n + 1) if ids[i:i + n] == self.header)
            ends = [i + 1 for i in range(start, len(ids)) if ids[i] == self.info_end]
            turn_start = ends[-1] if ends else start
            infos = extract_information(self.tok.decode(ids[start:turn_start]))
            target = self.tok.encode(self.target(infos), add_special_tokens=False)
            done = len(ids) - turn_start
            nxt = target[done] if done < len(target) else self.tok.eos_token_id
            scores[b, :] = -1e4
            scores[b, nxt] = 0.0
        return scores


def write_jsonl(trajs: list, path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"trajectory": t.to_dict()}) + "\n" for t in trajs)
    return path


@pytest.fixture(scope="session")
def sft_data(tmp_path_factory) -> tuple[list, Path]:
    """(trajectories, JSONL path) of the scripted episodes."""
    folder = tmp_path_factory.mktemp("sftdata")
    trajs = make_trajectories(folder)
    return trajs, write_jsonl(trajs, folder / "sft.jsonl")


@pytest.fixture(scope="session")
def tiny(sft_data):
    """(model, processor) of a tiny random Qwen2.5-VL whose tokenizer saw the SFT data."""
    from deepmmsearch.models.tiny import TinySpec, build_tiny, default_texts
    from deepmmsearch.train.sft_data import example_texts, read_examples

    texts = default_texts() + list(example_texts(read_examples(sft_data[1])))
    return build_tiny(texts, TinySpec(vocab_size=400))


@pytest.fixture(scope="session")
def tiny_dir(tiny, tmp_path_factory) -> Path:
    """The tiny model saved as a model directory (what ``from_pretrained`` reloads)."""
    from deepmmsearch.models.loading import save_model_dir

    return save_model_dir(*tiny, tmp_path_factory.mktemp("tiny") / "model")
