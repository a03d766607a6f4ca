"""``deepmmsearch grpo --config CFG [a.b=c ...]``: GRPO with multi-turn tool rollouts (TRL)."""

from __future__ import annotations

import argparse
import json


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="a GRPO config (stage: grpo)")
    p.add_argument("overrides", nargs="*", default=[], help="config overrides a.b=c")
    p.add_argument("--dry-run", action="store_true", help="validate the config and stop")


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.config import load_config

    cfg = load_config(args.config, args.overrides, expect="grpo")
    if args.dry_run:
        print(f"{args.config}: OK")
        return 0
    from deepmmsearch.train.grpo import run_grpo

    summary = run_grpo(cfg)
    print(json.dumps(summary, indent=2))
    return 0
