"""SimWeb benchmark: build time, crop vs whole image, teacher and baselines on held-out entities.

    .venv/bin/python bench/bench_simweb.py [--size small] [--entities N] [--world DIR] [--seed 0]

Builds a world (or uses ``--world``), then measures with the project's real tools:
1. build time (generation + both indexes) and its CPU time;
2. top-1 image search on the test scenes: the target's crop vs the whole multi-entity scene (and
   whole-image search on single-entity photos), with the ratio crop / whole;
3. the expert teacher on test questions (paper and compact prompts), the same teacher with crop
   search switched off, and the direct-answer prior baseline (never searches).
Record the printed numbers in docs/LOG.md under "SimWeb".
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path


def _cpu_s() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="small")
    p.add_argument("--entities", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--world", help="use this built world instead of building one")
    args = p.parse_args(argv if argv is not None else [])
    logging.basicConfig(level=logging.WARNING)
    from deepmmsearch.simweb.build import build_world
    from deepmmsearch.simweb.checks import image_search_check, run_policy, score

    tmp = None
    if args.world:
        world = Path(args.world)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="simweb-bench-")
        world = Path(tmp.name) / "world"
        t0, c0 = time.perf_counter(), _cpu_s()
        m = build_world(
            world, seed=args.seed, size=args.size, entities=args.entities, progress=False
        )
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        n = sum(m["counts"]["entities"].values())
        print(
            f"build {args.size} ({n} entities, {m['counts']['pages']} pages, "
            f"{sum(m['counts']['scenes'].values())} scenes): {wall:.1f}s wall, {cpu:.1f}s CPU"
        )
    t0 = time.perf_counter()
    check = image_search_check(world)
    multi, single = check["multi"], check["single"]
    ratio = f"{multi['crop_top1'] / multi['whole_top1']:.0f}x" if multi["whole_top1"] else "inf"
    print(
        f"image search top-1, test multi-entity scenes (n={multi['n']}): "
        f"crop {multi['crop_top1']:.3f} vs whole {multi['whole_top1']:.3f} (crop/whole = {ratio});"
        f" single-entity photos whole {single['whole_top1']:.3f} (n={single['n']})"
        f" [{time.perf_counter() - t0:.1f}s]"
    )
    rows = [
        ("expert, paper prompts", "simweb-expert", {}),
        ("expert, compact prompts", "simweb-expert", {"prompts": "compact"}),
        ("expert, crop search off", "simweb-expert", {"crop_search": False}),
        ("direct prior (no search)", "simweb-prior", {}),
    ]
    base = None
    print(f"{'test split':28s} {'all':>6s} {'search-req':>10s} {'tools/q':>8s}  by type")
    for label, policy, opts in rows:
        t0 = time.perf_counter()
        trajs, samples = run_policy(world, policy, split="test", **opts)
        s = score(trajs, samples)
        base = base or s["accuracy"]
        types = ", ".join(f"{k} {v:.2f}" for k, v in s["by_type"].items())
        print(
            f"{label:28s} {s['accuracy']:6.3f} {s['search_required_accuracy']:10.3f} "
            f"{s['tool_calls_per_question']:8.2f}  {types}  "
            f"(x{s['accuracy'] / base:.2f} of expert, {time.perf_counter() - t0:.1f}s, n={s['n']})"
        )
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
