"""``deepmmsearch quickstart --out runs/quickstart [--config CFG] [--reduced] [--fresh] [a.b=c ...]``

Trains a tiny DeepMMSearch-R1 on SimWeb on a CPU, end to end (``make demo``): world → distillation
→ SFT → GRPO → evaluation → report; see :mod:`deepmmsearch.quickstart`. ``--reduced`` runs the
small configuration ``make test`` uses (every stage, tiny sizes, a couple of minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "quickstart"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="the run's folder (default: the config's 'out')")
    p.add_argument("--config", "-c", help=f"a quickstart config (default: {CONFIGS}/default.yaml)")
    p.add_argument("--reduced", action="store_true",
                   help="the reduced configuration (configs/quickstart/reduced.yaml)")
    p.add_argument("--fresh", action="store_true", help="redo every stage, even those done earlier")
    p.add_argument("overrides", nargs="*", default=[], help="config overrides a.b=c")


def _config_path(args: argparse.Namespace) -> Path:
    if args.config:
        return Path(args.config)
    name = "reduced.yaml" if args.reduced else "default.yaml"
    for root in (Path.cwd() / "configs" / "quickstart", CONFIGS):
        if (root / name).exists():
            return root / name
    from deepmmsearch.registry import ConfigError

    raise ConfigError(f"configs/quickstart/{name} not found; pass --config")


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.config import load_config
    from deepmmsearch.quickstart import run_quickstart

    t0 = time.perf_counter()
    overrides = list(args.overrides) + ([f"out={args.out}"] if args.out else [])
    cfg = load_config(_config_path(args), overrides, expect="quickstart")
    run_quickstart(cfg, fresh=args.fresh)
    data = json.loads((Path(cfg.out) / "quickstart.json").read_text(encoding="utf-8"))
    print()
    print(f"Quickstart finished in {time.perf_counter() - t0:.0f} s.")
    print(f"Report:  {data['report']}  (Table 1, ablations, tool-use figures, trajectories)")
    print(f"Summary: {Path(cfg.out) / 'quickstart.md'}")
    print("What it shows (held-out search-required test questions):")
    for g in data["goals"]:
        print(f"  [{'met' if g['met'] else 'MISSED'}] {g['goal']}: {g['measured']}")
    sys.stdout.flush()
    return 0
