"""A small search world for the GRPO tests: entity pictures, fixture tools, a sample file, and a
tiny Qwen2.5-VL whose tokenizer saw the texts (built once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ENTITIES = [("Kavo", "41"), ("Telmi", "17"), ("Rusan", "83"), ("Pobit", "26")]
QUESTION = "What is the top speed of this animal?"
# a direct, wrong answer: with the search script, the two behaviours the learnability test mixes
DIRECT = ["<reason>i know it</reason><answer>50 km/h</answer>"]


def script(name: str, speed: str) -> list[str]:
    return [
        "<reason>unknown animal</reason><img_search><img></img_search>",
        f"<reason>it is {name}</reason><text_search>{name} top speed</text_search>",
        f"<reason>found</reason><answer>{speed} km/h</answer>",
    ]


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict:
    from PIL import Image, ImageDraw

    root = tmp_path_factory.mktemp("grpo_world")
    image_hits, text_hits, rows = {}, {}, []
    for i, (name, speed) in enumerate(ENTITIES):
        w = 56 + 2 * i
        img = Image.new("RGB", (w, 56), (40 * i, 90, 200 - 30 * i))
        ImageDraw.Draw(img).ellipse([8, 8, 40, 40], fill=(255, 200 - 40 * i, 0))
        img.save(root / f"e{i}.png")
        image_hits[f"{w}x56"] = [{"title": name, "url": f"https://sim/{name}", "snippet": f"a {name}"}]
        text_hits[f"{name} top speed"] = [{"title": name, "url": f"https://sim/{name}/f",
                                           "snippet": f"{name} runs at {speed} km/h."}]
        rows.append({"id": f"q{i}", "question": QUESTION, "image": f"e{i}.png",
                     "answers": [f"{speed} km/h", speed]})
    samples = root / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"root": root, "samples": samples, "image_hits": image_hits, "text_hits": text_hits,
            "scripts": {f"q{i}": script(n, s) for i, (n, s) in enumerate(ENTITIES)}}


@pytest.fixture(scope="session")
def tiny_model_dir(world, tmp_path_factory) -> Path:
    from deepmmsearch.models.loading import save_model_dir
    from deepmmsearch.models.tiny import TinySpec, build_tiny, default_texts

    texts = default_texts() + [t for s in world["scripts"].values() for t in s] + DIRECT
    texts += [f"{n} runs at {s} km/h." for n, s in ENTITIES]
    model, processor = build_tiny(texts, TinySpec(vocab_size=400))
    return save_model_dir(model, processor, tmp_path_factory.mktemp("grpo_tiny") / "model")


def grpo_config(world: dict, model_dir: Path, out: Path, **overrides):
    from deepmmsearch.config import load_config

    data = {
        "stage": "grpo",
        "model": str(model_dir),
        "dataset": {"name": "jsonl", "path": str(world["samples"])},
        "agent": {
            "prompts": "compact",
            "text_search": {"name": "fixture", "responses": world["text_hits"]},
            "image_search": {"name": "fixture", "responses": world["image_hits"]},
            "summarizer": {"name": "none"},
            "limits": {"max_turns": 4, "max_new_tokens_per_turn": 48, "max_response_tokens": 160},
        },
        "judge": {"name": "rule"},
        "out": str(out),
        "device": "cpu",
        "trl": {"num_generations": 4, "per_device_train_batch_size": 4, "max_steps": 1,
                "learning_rate": 1e-3, "warmup_steps": 0},
    }
    for k, v in overrides.items():
        data[k] = v
    return load_config(data=data, expect="grpo")
