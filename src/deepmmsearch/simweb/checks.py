"""Measurements of a built world: does the crop matter, does the teacher pass, does guessing fail?

    from deepmmsearch.simweb.checks import image_search_check, run_policy, score
    image_search_check("runs/simweb")              # top-1 entity found: crop vs whole image
    trajs, samples = run_policy("runs/simweb", {"name": "simweb-expert"}, split="test")
    score(trajs, samples)                          # accuracy overall, by type, search-required

Everything goes through the project's own pieces: the local image index, BM25, the ``simweb``
grounder, the toolbox's crop, the episode engine and the ``rule`` judge.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

from deepmmsearch.simweb.world import World
from deepmmsearch.types import Sample, Trajectory


def image_search_check(
    world: str | Path | World, split: str = "test", margin: float = 0.1, limit: int | None = None
) -> dict[str, Any]:
    """Top-1 image-search accuracy (the hit's title is the target's name), crop vs whole image.

    Over the multi-entity cluttered scenes of ``split`` (each question's target, cropped with its
    recorded box and the toolbox's padding) and, separately, the single-entity scenes searched
    whole. Returns counts and rates.
    """
    from deepmmsearch.tools.crop import crop_box, load_image
    from deepmmsearch.tools.image.local import LocalImageSearch
    from deepmmsearch.types import Box

    w = world if isinstance(world, World) else World.load(world)
    index = LocalImageSearch(str(w.root / w.manifest["indexes"]["image"]))
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # n, crop ok, whole ok
    scenes = [s for s in w.scenes.values() if s.split == split][:limit]
    for scene in scenes:
        image = load_image(w.root / scene.image)
        whole = index.query(image, 1)
        for obj in scene.objects:
            name = w.entities[obj.entity].name
            crop, _ = crop_box(image, Box(*obj.box), margin=margin)
            found = index.query(crop, 1)
            t = tally[scene.kind]
            t[0] += 1
            t[1] += int(bool(found) and found[0].title == name)
            t[2] += int(bool(whole) and whole[0].title == name)
    out: dict[str, Any] = {"split": split}
    for kind, (n, c, wh) in sorted(tally.items()):
        out[kind] = {"n": n, "crop_top1": c / n if n else 0.0, "whole_top1": wh / n if n else 0.0}
    return out


def agent_config(
    world: str | Path,
    policy: Any,
    *,
    prompts: str = "paper",
    crop_search: bool = True,
    summarizer: Any = "extractive",
    **limits: Any,
):
    """An AgentConfig with the world's backends (BM25, local image index, simweb grounder)."""
    from deepmmsearch.config import AgentConfig, build_dataclass

    root = Path(world)
    data = {
        "policy": policy,
        "text_search": {"name": "bm25", "index": str(root / "index" / "text")},
        "image_search": {"name": "local", "index": str(root / "index" / "image")},
        "grounder": {"name": "simweb", "world": str(root)},
        "summarizer": summarizer,
        "prompts": prompts,
        "limits": {"crop_search": crop_search, **limits},
    }
    return build_dataclass(AgentConfig, data)


def run_policy(
    world: str | Path,
    policy: Any,
    *,
    split: str = "test",
    limit: int | None = None,
    samples: list[Sample] | None = None,
    concurrency: int = 8,
    **options: Any,
) -> tuple[list[Trajectory], list[Sample]]:
    """Run ``policy`` (a spec such as ``{"name": "simweb-expert"}``; the world is filled in) on
    the questions of ``split`` through the real tools. ``options`` go to :func:`agent_config`."""
    from deepmmsearch.agent.loop import run_episodes
    from deepmmsearch.agent.runtime import build_agent
    from deepmmsearch.data.benchmarks.simweb import load_simweb

    if samples is None:
        samples = list(load_simweb(str(world), split=split, limit=limit))
    spec = {"name": policy} if isinstance(policy, str) else dict(policy)
    spec.setdefault("world", str(world))
    agent = build_agent(agent_config(world, spec, **options))
    episodes = [
        agent.episode(
            s.question,
            s.image,
            episode_id=s.id,
            gold=s.answers,
            metadata={**s.metadata, "id": s.id},
        )
        for s in samples
    ]
    trajs = asyncio.run(
        run_episodes(episodes, agent.policy, agent.toolbox, concurrency=concurrency)
    )
    return trajs, samples


def score(trajectories: list[Trajectory], samples: list[Sample]) -> dict[str, Any]:
    """Accuracy with the ``rule`` judge: overall, search-required, and by question type."""
    from deepmmsearch.reward.judge import RuleJudge

    judge = RuleJudge()
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    req = [0, 0]
    tools = 0
    for t, s in zip(trajectories, samples):
        ok = int(bool(judge.decide(t.answer, s.answers).correct))
        by_type[s.question_type or "?"][0] += 1
        by_type[s.question_type or "?"][1] += ok
        if s.search_required:
            req[0] += 1
            req[1] += ok
        tools += len(t.tool_calls)
    n = len(samples)
    return {
        "n": n,
        "accuracy": sum(v[1] for v in by_type.values()) / n if n else 0.0,
        "search_required_accuracy": req[1] / req[0] if req[0] else 0.0,
        "by_type": {k: v[1] / v[0] for k, v in sorted(by_type.items())},
        "tool_calls_per_question": tools / n if n else 0.0,
    }
