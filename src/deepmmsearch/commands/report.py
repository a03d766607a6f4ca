"""``deepmmsearch report RUN_DIR... [--out DIR] [--tag search_ratio]``

Table 1 (markdown and CSV), judge agreement, tool use, cost, ablations, runs side by side, figures
(PNG) and a few rendered trajectories; see :mod:`deepmmsearch.eval.report`.
"""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="evaluation run directories")
    p.add_argument("--out", help="output folder (default: RUN_DIR/report, or runs/report)")
    p.add_argument("--tag", help="compare the runs along this tag (default: the tag that varies)")
    p.add_argument("--examples", type=int, default=6, help="trajectories rendered per run")
    p.add_argument("--no-figures", action="store_true", help="tables only")


def run(args: argparse.Namespace) -> int:
    from deepmmsearch.eval.report import load_run, md_table, table1, write_report

    out = write_report(args.runs, args.out, tag=args.tag, examples=args.examples,
                       figures=not args.no_figures)
    print(md_table(*table1([load_run(d) for d in args.runs])))
    print(f"report: {out / 'report.md'}")
    return 0
