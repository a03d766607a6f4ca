"""``deepmmsearch ls``: the backends of each role."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("role", nargs="?", help="only this role")


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.config import STAGES
    from deepmmsearch.registry import ALL

    for role, reg in ALL.items():
        if args.role and role != args.role:
            continue
        print(f"{role}:")
        for name in reg.names():
            print(f"  {name:16s} {reg.table[name]}")
    if not args.role:
        print("stages (config 'stage:' values):")
        for name, target in STAGES.items():
            print(f"  {name:16s} {target}")
    return 0
