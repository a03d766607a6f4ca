"""Evaluation-harness benchmarks.

(a) Harness overhead: the ``agent`` workflow of ``deepmmsearch eval`` (load, run, judge with the
    rule judge, append + fsync one results row per sample, summary) against the bare driver
    (``agent.loop.run_episodes``) running the same episodes with the same policy, tools and
    concurrency, in the same process. Printed: samples per second of both and their ratio
    (goal: the harness keeps at least 0.8 of the bare driver's throughput on latency-bound tools).
(b) Concurrency: the same evaluation with ``agent.concurrency`` 1 and 16; every tool call takes
    ``--latency`` seconds (fixture backends, as a web API would). Printed: the speed-up.
(c) Replay: the evaluation again from its tool cache (``cache.mode: replay``), no backend call.

Run: ``.venv/bin/python bench/bench_eval_harness.py [--samples 96 --latency 0.05]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from deepmmsearch.agent.loop import run_episodes
from deepmmsearch.agent.runtime import build_agent
from deepmmsearch.config import load_config
from deepmmsearch.eval.harness import Evaluation

SCENE = Path(__file__).parents[1] / "tests" / "fixtures" / "scene.png"
SCRIPT = ["<reason>Which bird?</reason><img_search>the white bird</img_search>",
          "<reason>A great egret.</reason><text_search>great egret wingspan</text_search>",
          "<reason>Found it.</reason><answer>131 to 170 cm</answer>"]
HITS = {"*": [{"title": "Great egret", "url": "https://example.org/egret",
               "snippet": "The great egret is a large heron. Its wingspan is 131 to 170 cm."}]}


def _world(root: Path, n: int) -> dict[str, Path]:
    shutil.copy(SCENE, root / "scene.png")
    rows = [{"id": f"s{i}", "question": f"What is the wingspan of bird {i}?",
             "answers": ["131 to 170 cm"], "image": "scene.png"} for i in range(n)]
    (root / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "hits.yaml").write_text(yaml.safe_dump(HITS))
    return {"samples": root / "samples.jsonl", "hits": root / "hits.yaml"}


def _config(root: Path, out: str, latency: float, concurrency: int, cache: str) -> object:
    p = {"samples": root / "samples.jsonl", "hits": root / "hits.yaml"}
    return load_config(data={
        "stage": "eval", "out": str(root / out), "progress": False, "save_crops": False,
        "agent": {"policy": {"name": "scripted", "turns": SCRIPT},
                  "text_search": {"name": "fixture", "path": str(p["hits"]), "latency_s": latency},
                  "image_search": {"name": "fixture", "path": str(p["hits"]), "latency_s": latency},
                  "grounder": {"name": "fixed", "box": [20, 20, 90, 80]}, "summarizer": "none",
                  "cache": {"mode": cache, "path": str(root / "tools.sqlite")} if cache != "off"
                  else {"mode": "off"},
                  "concurrency": concurrency},
        "datasets": [{"label": "bench", "loader": {"name": "jsonl", "path": str(p["samples"])}}],
        "workflows": [{"kind": "agent"}], "judges": ["rule"],
    }, expect="eval")


async def _bare(cfg, n_samples: int) -> float:
    from deepmmsearch.registry import DATASET

    samples = list(DATASET.build(cfg.datasets[0].loader).samples)[:n_samples]
    agent = build_agent(cfg.agent)
    eps = [agent.episode(s.question, s.image, episode_id=s.id, metadata={"id": s.id}) for s in samples]
    t0 = time.perf_counter()
    await run_episodes(eps, agent.policy, agent.toolbox, concurrency=cfg.agent.concurrency)
    return time.perf_counter() - t0


async def _harness(cfg) -> tuple[float, float]:
    """(total seconds, seconds of the evaluation loop alone: setup excluded)."""
    t0 = time.perf_counter()
    result = await Evaluation(cfg).run()
    info = json.loads((result.run_dir / "run.json").read_text())
    return time.perf_counter() - t0, info["sessions"][-1]["seconds"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--latency", type=float, default=0.05)
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    n, lat = args.samples, args.latency
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _world(root, n)
        asyncio.run(_harness(_config(root, "warm", lat, 16, "off")))  # imports, page cache
        bare = asyncio.run(_bare(_config(root, "bare", lat, 16, "off"), n))
        total, loop = asyncio.run(_harness(_config(root, "h16", lat, 16, "off")))
        print(f"(a) {n} samples, 2 tool calls each at {lat * 1000:.0f} ms, concurrency 16: "
              f"bare driver {n / bare:.1f}/s; eval harness {n / loop:.1f}/s in its loop "
              f"(ratio {bare / loop:.2f}, goal >= 0.8), {n / total:.1f}/s with its setup "
              f"({total - loop:.2f} s: config, dataset, git, backends)")
        _, seq = asyncio.run(_harness(_config(root, "h1", lat, 1, "off")))
        print(f"(b) concurrency 1: {n / seq:.1f}/s; concurrency 16: {n / loop:.1f}/s; "
              f"speed-up {seq / loop:.1f}x")
        asyncio.run(_harness(_config(root, "record", lat, 16, "live")))
        _, replay = asyncio.run(_harness(_config(root, "replay", lat, 16, "replay")))
        print(f"(c) replay from the tool cache (no backend call): {n / replay:.1f}/s "
              f"({loop / replay:.1f}x the live run at concurrency 16)")
        return int(bare / loop < 0.8)


if __name__ == "__main__":
    sys.exit(main())
