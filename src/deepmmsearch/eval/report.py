"""``deepmmsearch report RUN_DIR... [--out DIR]``: the paper's tables and figures from eval runs.

Writes, into ``--out`` (default: ``RUN_DIR/report`` for one run, ``runs/report`` for several):

- ``table1.md`` / ``table1.csv``: accuracy (primary judge, %) per dataset and the unweighted
  average, one row per run x workflow — the paper's Table 1; several runs side by side;
- ``table2.md`` / ``table2.csv``: the paper's Table 2 (general VQA without search: per set, the
  ``base`` and ``trained`` workflows' score and the difference), when both labels are present;
- ``report.md``: Table 1, official scores, Table 2, every judge's accuracy and their agreement (Cohen's
  kappa, unparseable counts), tool use, cost and latency, the ablations (each workflow against its
  baseline), the comparison of runs along a varying tag (e.g. the SFT search ratio), and a few
  rendered trajectories;
- ``tool_use.csv``, ``cost.csv``; figures ``accuracy.png``, ``tool_use.png``,
  ``text_searches.png``, ``crop_vs_whole.png`` and ``by_<tag>.png`` (see :mod:`.figures`).

From Python: ``write_report(["runs/eval/a", "runs/eval/b"], "runs/report")``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepmmsearch.eval.render import render_examples
from deepmmsearch.eval.runs import RunData, load_run
from deepmmsearch.eval.tables import (
    ablation_table,
    agreement_table,
    by_kind_table,
    cost_table,
    csv_text,
    judge_cost_table,
    judges_table,
    md_table,
    official_table,
    seed_groups,
    seeds_table,
    table1,
    table2,
    tag_table,
    tool_use_table,
    varying_tag,
)

log = logging.getLogger(__name__)

__all__ = ["RunData", "load_run", "md_table", "official_table", "table1", "table2", "write_report"]


# -- the report --------------------------------------------------------------------------------


def _section(title: str, table: tuple[list[str], list[list[Any]]] | None, note: str = "") -> str:
    if table is None:
        return ""
    return f"## {title}\n\n" + (f"{note}\n\n" if note else "") + md_table(*table) + "\n"


def write_report(run_dirs: Sequence[str | Path], out: str | Path | None = None, *,
                 tag: str | None = None, examples: int = 6, figures: bool = True) -> Path:
    """Write the tables, figures and example trajectories of one or more runs; returns ``out``."""
    runs = [load_run(d) for d in run_dirs]
    if not runs:
        raise ValueError("give at least one run directory")
    out = Path(out) if out else (runs[0].run_dir / "report" if len(runs) == 1 else Path("runs/report"))
    out.mkdir(parents=True, exist_ok=True)
    t1 = table1(runs)
    (out / "table1.md").write_text(md_table(*t1), encoding="utf-8")
    (out / "table1.csv").write_text(csv_text(*t1), encoding="utf-8")
    tu, cost = tool_use_table(runs), cost_table(runs)
    (out / "tool_use.csv").write_text(csv_text(*tu), encoding="utf-8")
    (out / "cost.csv").write_text(csv_text(*cost), encoding="utf-8")
    vary = varying_tag(runs, tag)
    parts = [f"# Evaluation report: {', '.join(r.name for r in runs)}\n",
             _section("Table 1: accuracy (%)", t1,
                      "Primary judge: " + ", ".join(f"{r.name}: {r.primary}" for r in runs)
                      + ". avg is the unweighted mean over the datasets (* = some missing)."),
             _section("Official scores (%)", official_table(runs)),
             _section("Table 2: without search, base against trained (%)", table2(runs),
                      "Official metric where the set has one (MMBench: circular), else the "
                      "primary judge's mean score; difference in points.")]
    t2 = table2(runs)
    if t2 is not None:
        (out / "table2.md").write_text(md_table(*t2), encoding="utf-8")
        (out / "table2.csv").write_text(csv_text(*t2), encoding="utf-8")
    for group in seed_groups(runs):
        parts.append(_section(f"{group[0].name}: accuracy over seeds (mean ± std, %)",
                              seeds_table(group)))
    for run in runs:
        prefix = f"{run.name}: " if len(runs) > 1 else ""
        if len(run.judges) > 1:
            parts.append(_section(f"{prefix}judges", judges_table(run)))
            parts.append(_section(f"{prefix}judge agreement", agreement_table(run),
                                  "Over the samples both judges could grade."))
        else:
            parts.append(_section(f"{prefix}judge", judges_table(run)))
        parts.append(_section(f"{prefix}ablations (accuracy %, Δ against the baseline)",
                              ablation_table(run)))
        parts.append(_section(f"{prefix}accuracy by kind of question (%)", by_kind_table(run)))
    if vary:
        parts.append(_section(f"Runs along `{vary}`", tag_table(runs, vary)))
    parts += [_section("Tool use", tu), _section("Cost and latency per sample", cost),
              _section("Judge and cache cost per run", judge_cost_table(runs))]
    if figures:
        from deepmmsearch.eval.figures import write_figures

        paths = write_figures(runs, out, vary)
        parts.append("## Figures\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in paths) + "\n")
    if examples:
        for run in runs:
            parts.append(render_examples(run.records, run.primary, examples,
                                         f"Example trajectories ({run.name})"))
    (out / "report.md").write_text("\n".join(p for p in parts if p), encoding="utf-8")
    log.info("report written to %s", out)
    return out
