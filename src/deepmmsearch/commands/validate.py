"""``deepmmsearch validate CFG [a.b=c ...]``: load, type-check and resolve every backend name,
and check that the input files the backends and dataset loaders name exist."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

# options of a backend or loader that name an input that must already exist (outputs such as
# `out`, `work_dir` or the cache's `path` are not backend options, so they are never checked)
INPUT_KEYS = ("path", "index", "world", "qtype", "image_map", "image_root", "corpus")


def missing_inputs(data: Any, where: str = "") -> list[str]:
    """``"agent.text_search.path: /x (not found)"`` for every missing input of a plain config."""
    out: list[str] = []
    if isinstance(data, dict):
        component = isinstance(data.get("name"), str)
        for key, value in data.items():
            here = f"{where}.{key}" if where else str(key)
            if (component and key in INPUT_KEYS and isinstance(value, str) and value
                    and "://" not in value and not Path(value).expanduser().exists()):
                out.append(f"{here}: {value} (not found)")
            else:
                out.extend(missing_inputs(value, here))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.extend(missing_inputs(value, f"{where}[{i}]"))
    return out


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", default=[])
    p.add_argument("--print", action="store_true", help="print the resolved config")
    p.add_argument("--no-files", action="store_true",
                   help="do not check that the input files the config names exist")


def run(args: argparse.Namespace) -> int:
    import yaml

    from deepmmsearch.config import load_config, to_plain
    from deepmmsearch.registry import ConfigError

    cfg = load_config(args.config, args.overrides)
    if args.print:
        yaml.safe_dump(to_plain(cfg), sys.stdout, sort_keys=False)
    if not args.no_files:
        missing = missing_inputs(to_plain(cfg))
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ConfigError(f"{args.config}: input file missing: {missing[0]}{more}; fix the "
                              "path or pass --no-files")
    print(f"{args.config}: OK ({cfg.stage})")
    return 0
