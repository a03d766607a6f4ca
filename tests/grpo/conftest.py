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


# -- the learnability tests (test_grpo_learn*.py): one recipe, two worlds ---------------------

LEARN_TEMPERATURE = 0.5  # sampling temperature of the rollouts and of the evaluations
LEARN_TRL = {"num_generations": 8, "per_device_train_batch_size": 16, "max_steps": 8,
             "learning_rate": 2e-4, "warmup_steps": 0, "beta": 0.0}


def sft_both_behaviours(data: Path, model: Path, out: Path):
    """Full fine-tuning on the search-or-guess mix (settings from docs/LOG.md, GRPO)."""
    from deepmmsearch.config import load_config
    from deepmmsearch.train.sft import run_sft

    return run_sft(load_config(data={
        "stage": "sft", "data": str(data), "model": str(model), "out": str(out), "method": "full",
        "max_steps": 100, "learning_rate": 3e-3, "warmup_ratio": 0.0, "per_device_batch_size": 8,
        "global_batch_size": 8, "device": "cpu", "save_adapter": False, "logging_steps": 50,
        "save_steps": 10000}, expect="sft"))


def sampled_stats(model_dir, episodes: list, toolbox, seed: int = 1234) -> dict[str, float]:
    """Mean reward (0.9·correct + 0.1·format), accuracy and no-search rate of sampled episodes."""
    import asyncio

    from deepmmsearch.agent.loop import run_episodes
    from deepmmsearch.policies.hf import HFPolicy
    from deepmmsearch.reward.combine import breakdown
    from deepmmsearch.reward.judge import RuleJudge

    policy = HFPolicy(str(model_dir), device="cpu", temperature=LEARN_TEMPERATURE, seed=seed,
                      max_batch_size=64)
    trajs = asyncio.run(run_episodes(episodes, policy, toolbox, concurrency=len(episodes)))
    judge = RuleJudge()
    scores = [breakdown(t, judge.decide(t.answer, t.gold)) for t in trajs]
    n = len(scores)
    return {"reward": sum(s.total for s in scores) / n, "accuracy": sum(s.correctness for s in scores) / n,
            "no_search": sum(not t.tool_calls for t in trajs) / n, "episodes": n}


def grpo_before_after(cfg, measure, out: Path, label: str) -> tuple[dict, dict]:
    """``measure(model_dir)`` before and after a GRPO run of ``cfg``; logged and kept in learn.json."""
    import logging

    from deepmmsearch.train.grpo_trainer import GRPORun

    before = measure(cfg.model)
    run = GRPORun(cfg)
    after = measure(run.run()["model_dir"])
    steps = [round(r["reward"], 3) for r in run.history]
    logging.getLogger(__name__).warning("GRPO learnability (%s): before %s after %s step rewards %s",
                                        label, before, after, steps)
    (out / "learn.json").write_text(json.dumps({"before": before, "after": after, "steps": steps}))
    return before, after
