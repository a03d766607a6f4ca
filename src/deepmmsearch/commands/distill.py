"""``deepmmsearch distill --config CFG [a.b=c ...]``: distil SFT trajectories from a teacher.

Runs the teacher over the source dataset, keeps what passes the checks and the judge, samples a
balanced set, and writes ``sft.jsonl`` / ``sft.parquet`` / ``stats.{md,json,png}``. Interrupt it
at any time and run the same command again: it continues where it stopped. ``--resample`` skips
the teacher and only re-samples from the journal (e.g. ``search_ratio=0.7 sft_dir=runs/x``).
"""

from __future__ import annotations

import argparse

from deepmmsearch import jsontext


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="a distill config (stage: distill)")
    p.add_argument("overrides", nargs="*", default=[], help="config overrides a.b=c")
    p.add_argument("--resample", action="store_true",
                   help="do not run the teacher: re-sample and re-report from the journal")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.config import load_config
    from deepmmsearch.data.distill import run_distill

    cfg = load_config(args.config, args.overrides, expect="distill")
    result = run_distill(cfg, run=not args.resample, progress=not args.no_progress)
    if args.json:
        print(jsontext.dumps(result.to_dict(), indent=2))
        return 0
    s = result.stats
    print(f"episodes: {s['episodes']} of {result.samples} samples "
          f"({result.ran} run now, {result.resumed} resumed)")
    print(f"passed every filter: {result.passed}; dropped: "
          + ", ".join(f"{k} {v}" for k, v in s["failed"].items() if v))
    ratio = s["search_ratio"]["selected"]
    print(f"selected: {result.selected} (target {s['target']}), search-required share "
          f"{'-' if ratio is None else f'{100 * ratio:.1f}%'} (target {100 * s['target_search_ratio']:.0f}%)")
    for key in ("jsonl", "parquet", "stats_md", "stats_png"):
        if key in result.paths:
            print(f"  {key}: {result.paths[key]}")
    return 0
