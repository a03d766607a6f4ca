"""Agent-runtime benchmarks.

(a) Engine overhead per turn: ``Episode.step`` + ``Episode.observe`` on a scripted episode
    (text search, crop image search, text search, answer), against a bare ``parse_action`` call on
    the same turns (the floor: every engine turn parses once). Goal: under 1 ms per turn.
(b) Concurrency: episodes through ``run_episodes``, 64 at a time, three tool calls each, every
    tool call taking 100 ms (fixture backends with injected latency, as a web API would). Ideal:
    3 × latency per wave of 64. Printed: a burst (64 episodes started together, so every
    episode's CPU work lands on the critical path) and a sustained run (640 episodes through 64
    slots: the throughput, held to the goal ≥ 0.9 for the ``text`` variant, which measures the
    driver and engine), plus a bare-asyncio floor (64 tasks sleeping the same time) measured in
    the same process. Two more variants show what local CPU work costs on top: ``crop`` (one
    search is a crop search: the image is decoded, grounded and cropped) and ``crop+extractive``
    (plus the pure-Python extractive summariser); they are reported with their CPU time per
    episode, not held to the goal.

Run: ``.venv/bin/python bench/bench_engine.py [--episodes 64 --latency 0.1 --turns 2000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from deepmmsearch.agent.loop import run_episodes
from deepmmsearch.agent.state import Episode, ToolRequest
from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.policies.scripted import ScriptedPolicy
from deepmmsearch.protocol import parse_action
from deepmmsearch.tools.grounding.basic import FixedGrounder
from deepmmsearch.tools.image.fixture import FixtureImageSearch
from deepmmsearch.tools.summarize import ExtractiveSummarizer, PassthroughSummarizer
from deepmmsearch.tools.text.fixture import FixtureTextSearch
from deepmmsearch.types import SearchHit, ToolCall

IMAGE = str(Path(__file__).parents[1] / "tests" / "fixtures" / "scene.png")
QUESTION = "What is the wingspan of this bird?"
SCRIPT = [
    ("<reason>I need the wingspan of this bird; first a text search.</reason>"
     "<text_search>great egret wingspan</text_search>"),
    "<reason>Let me make sure which bird it is.</reason><img_search>the white bird</img_search>",
    "<reason>It is a great egret; where does it live?</reason><text_search>great egret habitat</text_search>",
    "<reason>The first search gave the wingspan.</reason><answer>131 to 170 cm</answer>",
]
HITS = [SearchHit(f"Page {i}", f"https://example.org/{i}",
                  "The great egret is a large heron. Its wingspan is 131 to 170 cm. It lives near water.")
        for i in range(5)]


def _engine_episode() -> int:
    ep = Episode(QUESTION, IMAGE, episode_id="bench")
    for text in SCRIPT:
        step = ep.step(text, n_tokens=32)
        if isinstance(step, ToolRequest):
            ep.observe(ToolCall(step.kind, "fixture", query=step.query, hits=list(HITS),
                                summary="The great egret has a wingspan of 131 to 170 cm."))
    return len(SCRIPT)


def _parse_only() -> int:
    for text in SCRIPT:
        parse_action(text)
    return len(SCRIPT)


def _per_turn(fn, n_turns: int, repeats: int = 5) -> float:
    """Best-of-``repeats`` median seconds per turn (the machine is shared and noisy)."""
    runs = []
    for _ in range(repeats):
        done, t0 = 0, time.perf_counter()
        while done < n_turns:
            done += fn()
        runs.append((time.perf_counter() - t0) / done)
    return min(runs)


def bench_overhead(n_turns: int) -> dict[str, float]:
    _engine_episode(), _parse_only()  # warm up
    engine = _per_turn(_engine_episode, n_turns)
    parse = _per_turn(_parse_only, n_turns)
    return {"engine_us": engine * 1e6, "parse_us": parse * 1e6, "ratio": engine / parse}


TEXT_ONLY = [SCRIPT[0], SCRIPT[2], SCRIPT[0], SCRIPT[3]]
VARIANTS = {  # name -> (script, extractive summariser?)
    "text": (TEXT_ONLY, False),  # the driver and engine alone: 3 text searches
    "crop": (SCRIPT, False),  # + a crop search: decode, ground and crop the image on the CPU
    "crop+extractive": (SCRIPT, True),  # + the pure-Python extractive summariser
}


def _toolbox(latency: float, extractive: bool) -> Toolbox:
    text = {"*": [h.to_dict() for h in HITS]}
    return Toolbox(
        text_search=FixtureTextSearch(responses=text, latency_s=latency),
        image_search=FixtureImageSearch(responses=text, latency_s=latency),
        grounder=FixedGrounder(box=[20, 20, 90, 80]),
        summarizer=ExtractiveSummarizer() if extractive else PassthroughSummarizer(),
    )


async def _concurrent(n: int, latency: float, variant: str, rounds: int = 1
                      ) -> tuple[float, float, float]:
    """``rounds`` × ``n`` episodes, ``n`` at a time. Returns (wall, floor, cpu) seconds."""
    script, extractive = VARIANTS[variant]
    box = _toolbox(latency, extractive)
    episodes = [Episode(QUESTION, IMAGE, episode_id=f"e{i}") for i in range(n * rounds)]
    c0, t0 = time.process_time(), time.perf_counter()
    trajs = await run_episodes(episodes, ScriptedPolicy(turns=script), box, concurrency=n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(t.answer == "131 to 170 cm" and len(t.tool_calls) == 3 for t in trajs)
    t0 = time.perf_counter()  # the floor: n tasks sleeping the same total tool time
    await asyncio.gather(*(asyncio.sleep(3 * latency) for _ in range(n)))
    return wall, (time.perf_counter() - t0) * rounds, cpu / (n * rounds)


def bench_concurrency(n: int, latency: float, variant: str = "text", rounds: int = 1,
                      repeats: int = 3) -> dict[str, float]:
    runs = [asyncio.run(_concurrent(n, latency, variant, rounds)) for _ in range(repeats)]
    wall = statistics.median(r[0] for r in runs)
    floor = statistics.median(r[1] for r in runs)
    cpu = statistics.median(r[2] for r in runs)
    ideal = 3 * latency * rounds  # three tool calls per episode, n episodes in parallel
    return {"wall_s": wall, "floor_s": floor, "ideal_s": ideal, "ratio_to_ideal": ideal / wall,
            "ratio_to_floor": floor / wall, "episodes_per_s": n * rounds / wall,
            "cpu_ms_per_episode": cpu * 1e3}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=4000, help="turns timed for the overhead test")
    ap.add_argument("--episodes", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=10, help="sustained run: rounds x episodes")
    ap.add_argument("--latency", type=float, default=0.1, help="seconds per tool call")
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    o = bench_overhead(args.turns)
    ok1 = o["engine_us"] < 1000
    print(f"(a) engine overhead per turn (step + observe): {o['engine_us']:.1f} us "
          f"[goal < 1000 us: {'met' if ok1 else 'MISSED'}]; bare parse_action: {o['parse_us']:.1f} us; "
          f"ratio engine/parse = {o['ratio']:.1f}x")
    n, ms = args.episodes, args.latency * 1000
    print(f"(b) {n} episodes at a time, 3 tool calls x {ms:.0f} ms each; ideal = 3 x latency per "
          f"wave of {n}; ratio = ideal / measured wall time")
    ok2 = True
    for variant in VARIANTS:
        burst = bench_concurrency(n, args.latency, variant, 1, repeats=5)
        sus = bench_concurrency(n, args.latency, variant, args.rounds, repeats=1)
        goal = ""
        if variant == "text":
            ok2 = sus["ratio_to_ideal"] >= 0.9
            goal = f" [goal >= 0.9: {'met' if ok2 else 'MISSED'}]"
        print(f"    {variant:16s} CPU {burst['cpu_ms_per_episode']:.2f} ms/episode | burst of {n}: "
              f"wall {burst['wall_s']:.3f} s, ratio {burst['ratio_to_ideal']:.3f} (to the bare-asyncio "
              f"floor {burst['ratio_to_floor']:.3f}) | sustained {n * args.rounds} episodes: "
              f"{sus['episodes_per_s']:.0f} episodes/s, ratio {sus['ratio_to_ideal']:.3f}{goal}")
    return 0 if ok1 and ok2 else 1


if __name__ == "__main__":
    sys.exit(main())
