"""Data pipeline costs, each against a baseline run in the same process:

1. the resumable journal (one fsync'd line per finished episode) vs a plain buffered JSONL
   write of the same records — what durability costs per episode;
2. the distillation loop (scripted teacher, fixture tools, rule judge, journal) vs the same
   episodes through ``run_episodes`` alone — the overhead of checks, judge, labels and journal;
3. an InfoSeek-format load of N rows with image checks vs without.

    .venv/bin/python bench/bench_data_distill.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _record(i: int) -> dict:
    turns = [{"index": k, "model_text": "<reason>" + "x" * 200 + "</reason><text_search>q</text_search>",
              "observation": "<information>" + "y" * 1500 + "</information>"} for k in range(3)]
    return {"failed": None, "category": "animals", "trajectory": {"id": str(i), "turns": turns}}


def bench_journal(n: int, tmp: Path) -> None:
    from deepmmsearch.data.journal import Journal

    recs = [_record(i) for i in range(n)]
    t0 = time.perf_counter()
    with open(tmp / "plain.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"id": str(i), **r}) + "\n" for i, r in enumerate(recs))
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    with Journal(tmp / "journal.jsonl") as j:
        for i, r in enumerate(recs):
            j.append(str(i), r)
    dur = time.perf_counter() - t0
    t0 = time.perf_counter()
    with Journal(tmp / "journal_batched.jsonl", fsync_interval_s=0.5) as j:
        for i, r in enumerate(recs):
            j.append(str(i), r)
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    Journal(tmp / "journal.jsonl").close()
    reopen = time.perf_counter() - t0
    print(f"journal: {n} records, plain write {base * 1e3:.0f} ms, fsync'd journal {dur * 1e3:.0f} ms "
          f"({dur / n * 1e3:.2f} ms/record, ratio {dur / base:.1f}x), fsync at most every 0.5 s "
          f"{batched * 1e3:.0f} ms (ratio {batched / base:.1f}x); reopen+index {reopen * 1e3:.0f} ms")


def bench_distill(n: int, tmp: Path) -> None:
    import os

    from deepmmsearch.agent.loop import run_episodes
    from deepmmsearch.agent.runtime import build_agent
    from deepmmsearch.config import load_config
    from deepmmsearch.data.distill import distill
    from deepmmsearch.types import Sample

    os.chdir(ROOT)
    base_rows = [json.loads(x) for x in (ROOT / "tests/fixtures/distill/questions.jsonl").read_text().splitlines()]
    samples = []
    for k in range(n):
        r = base_rows[k % len(base_rows)]
        samples.append(Sample(f"{r['id']}_{k}", r["question"], r["answers"], category=r["category"],
                              image=str(ROOT / "tests/fixtures/scene.png")))
    scripts = json.loads(json.dumps(__import__("yaml").safe_load(
        (ROOT / "tests/fixtures/distill/teacher.yaml").read_text())))
    from deepmmsearch.policies.scripted import ScriptedPolicy

    policy = ScriptedPolicy(scripts={s.id: scripts[s.id.split("_")[0]] for s in samples})
    cfg = load_config(ROOT / "configs/distill/fixture.yaml",
                      [f"out_dir={tmp / 'd'}", "parquet=false", f"target_size={n // 2}"], expect="distill")
    agent = build_agent(cfg.teacher, policy=policy)

    async def plain() -> None:
        eps = [agent.episode(s.question, s.image, episode_id=s.id) for s in samples]
        await run_episodes(eps, agent.policy, agent.toolbox, concurrency=8)

    t0 = time.perf_counter()
    asyncio.run(plain())
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = asyncio.run(distill(cfg, policy=policy, samples=samples, progress=False))
    dur = time.perf_counter() - t0
    fast = load_config(ROOT / "configs/distill/fixture.yaml",
                       [f"out_dir={tmp / 'd2'}", "parquet=false", f"target_size={n // 2}",
                        "fsync_interval_s=0.5"], expect="distill")
    t0 = time.perf_counter()
    asyncio.run(distill(fast, policy=policy, samples=samples, progress=False))
    dur_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    asyncio.run(distill(cfg, policy=policy, samples=samples, progress=False))
    resume = time.perf_counter() - t0
    print(f"distill: {n} episodes, run_episodes alone {base:.2f} s, full distillation {dur:.2f} s "
          f"(ratio {dur / base:.2f}x, {n / dur:.0f} episodes/s; kept {res.passed}, selected {res.selected}), "
          f"with fsync_interval_s=0.5 {dur_fast:.2f} s (ratio {dur_fast / base:.2f}x); "
          f"re-run with everything journaled {resume:.2f} s")


def bench_loader(n: int, tmp: Path) -> None:
    from PIL import Image

    from deepmmsearch.data.benchmarks.infoseek import load_infoseek

    img_dir = tmp / "img"
    img_dir.mkdir()
    for k in range(50):
        Image.new("RGB", (64, 48), (k, 0, 0)).save(img_dir / f"oven_{k}.jpg")
    rng = random.Random(0)
    with open(tmp / "infoseek.jsonl", "w") as fh:
        fh.writelines(json.dumps({"data_id": f"infoseek_val_{i}", "image_id": f"oven_{rng.randrange(50)}",
                                 "question": "What is this?", "answer": ["x"], "answer_eval": ["x", "y"],
                                 "data_split": "val_unseen_entity"}) + "\n" for i in range(n))
    t0 = time.perf_counter()
    load_infoseek(str(tmp / "infoseek.jsonl"), image_root=str(img_dir), check_images=False)
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = load_infoseek(str(tmp / "infoseek.jsonl"), image_root=str(img_dir), check_images=True)
    dur = time.perf_counter() - t0
    print(f"loader: {n} InfoSeek rows, without image checks {base:.2f} s ({n / base:.0f} rows/s), "
          f"with header checks {dur:.2f} s (ratio {dur / base:.2f}x); {len(d)} samples")


def main(argv: list[str]) -> int:
    import logging

    logging.disable(logging.INFO)
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bench_journal(args.n, tmp)
        bench_distill(min(args.n, 1000), tmp)
        bench_loader(args.n * 10, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
