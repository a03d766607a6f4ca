"""``deepmmsearch eval --config CFG [--out DIR] [--force] [--report] [a.b=c ...]``

Runs (or resumes: same command, same run directory) an evaluation of datasets x workflows with
one or more judges; see :mod:`deepmmsearch.eval.harness`. Prints the accuracy table at the end.
"""

from __future__ import annotations

import argparse

from deepmmsearch import jsontext


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="an eval config (stage: eval)")
    p.add_argument("--out", help="the run directory (default: the config's 'out')")
    p.add_argument("--force", action="store_true",
                   help="resume a run directory even though its config or samples differ")
    p.add_argument("--report", action="store_true", help="also write RUN_DIR/report")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    p.add_argument("overrides", nargs="*", default=[], help="config overrides a.b=c")


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.config import load_config
    from deepmmsearch.eval.harness import run_eval
    from deepmmsearch.eval.report import load_run, md_table, table1, write_report

    overrides = list(args.overrides) + (["progress=false"] if args.no_progress else [])
    cfg = load_config(args.config, overrides, expect="eval")
    result = run_eval(cfg, out=args.out, force=args.force)
    if args.json:
        print(jsontext.dumps(result.summary, indent=2))
    else:
        print(md_table(*table1([load_run(result.run_dir)])))
        print(f"run directory: {result.run_dir} ({result.new} samples evaluated now, "
              f"{len(result.records)} in all)")
    if args.report:
        print(f"report: {write_report([result.run_dir])}")
    if result.skipped:
        print(f"{len(result.skipped)} samples skipped (replay-cache misses), e.g. {result.skipped[:3]}")
        return 1
    return 0
