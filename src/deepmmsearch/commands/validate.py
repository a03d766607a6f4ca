"""``deepmmsearch validate CFG [a.b=c ...]``: load, type-check and resolve every backend name."""

from __future__ import annotations

import argparse
import sys


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", default=[])
    p.add_argument("--print", action="store_true", help="print the resolved config")


def run(args: argparse.Namespace) -> int:
    import yaml

    from deepmmsearch.config import load_config, to_plain

    cfg = load_config(args.config, args.overrides)
    if args.print:
        yaml.safe_dump(to_plain(cfg), sys.stdout, sort_keys=False)
    print(f"{args.config}: OK ({cfg.stage})")
    return 0
