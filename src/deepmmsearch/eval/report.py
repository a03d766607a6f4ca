"""``deepmmsearch report RUN_DIR... [--out DIR]``: the paper's tables and figures from eval runs.

Writes, into ``--out`` (default: ``RUN_DIR/report`` for one run, ``runs/report`` for several):

- ``table1.md`` / ``table1.csv``: accuracy (primary judge, %) per dataset and the unweighted
  average, one row per run x workflow — the paper's Table 1; several runs side by side;
- ``report.md``: Table 1, official scores, every judge's accuracy and their agreement (Cohen's
  kappa, unparseable counts), tool use, cost and latency, the ablations (each workflow against its
  baseline), the comparison of runs along a varying tag (e.g. the SFT search ratio), and a few
  rendered trajectories;
- ``tool_use.csv``, ``cost.csv``; figures ``accuracy.png``, ``tool_use.png``,
  ``text_searches.png``, ``crop_vs_whole.png`` and ``by_<tag>.png`` (see :mod:`.figures`).

From Python: ``write_report(["runs/eval/a", "runs/eval/b"], "runs/report")``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.eval import store
from deepmmsearch.eval.metrics import CellMetrics, agreement, cell_metrics, judge_stats, mean_of
from deepmmsearch.eval.records import EvalRecord
from deepmmsearch.eval.render import render_examples

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """One run directory, loaded."""

    run_dir: Path
    name: str
    records: list[EvalRecord]
    judges: list[str]
    datasets: list[str]
    workflows: list[dict[str, Any]]  # label, kind, model, limits, baseline
    tags: dict[str, Any] = field(default_factory=dict)
    sessions: list[dict[str, Any]] = field(default_factory=list)  # run.json sessions
    cells: dict[tuple[str, str], CellMetrics] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        return self.judges[0]

    def records_of(self, dataset: str | None = None, workflow: str | None = None) -> list[EvalRecord]:
        return [r for r in self.records if (dataset is None or r.dataset == dataset)
                and (workflow is None or r.workflow == workflow)]

    def cell(self, dataset: str, workflow: str) -> CellMetrics | None:
        return self.cells.get((dataset, workflow))

    def workflow(self, label: str) -> dict[str, Any]:
        return next((w for w in self.workflows if w["label"] == label), {"label": label})


def load_run(run_dir: str | Path) -> RunData:
    d = Path(run_dir)
    if not (d / "results").is_dir():
        raise FileNotFoundError(f"{d} is not an evaluation run directory (no results/ folder)")
    info = store.read_json(d / "run.json") if (d / "run.json").exists() else {}
    records = store.load_run_records(d)
    judges = list(info.get("judges") or dict.fromkeys(j for r in records for j in r.verdicts))
    datasets = [x["label"] for x in info.get("datasets", [])] or list(
        dict.fromkeys(r.dataset for r in records))
    workflows = info.get("workflows") or [{"label": w} for w in dict.fromkeys(r.workflow for r in records)]
    run = RunData(d, info.get("name") or d.name, records, judges, datasets, workflows,
                  dict(info.get("tags") or {}), list(info.get("sessions") or []))
    groups: dict[tuple[str, str], list[EvalRecord]] = {}
    for r in records:
        groups.setdefault((r.dataset, r.workflow), []).append(r)
    order = {w["label"]: i for i, w in enumerate(workflows)}
    keys = sorted(groups, key=lambda k: (datasets.index(k[0]) if k[0] in datasets else 99,
                                         order.get(k[1], 99)))
    run.cells = {k: cell_metrics(groups[k], judges) for k in keys}
    return run


# -- tables ------------------------------------------------------------------------------------


def pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()


def all_datasets(runs: Sequence[RunData]) -> list[str]:
    return list(dict.fromkeys(d for run in runs for d in run.datasets))


def row_label(run: RunData, wf: str, many: bool) -> str:
    return f"{run.name}/{wf}" if many else wf


def table1(runs: Sequence[RunData], judge: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """Accuracy (%) per dataset and the unweighted average; ``judge`` defaults to each run's
    primary judge. Rows missing a dataset average over the datasets they have (marked ``*``)."""
    datasets = all_datasets(runs)
    headers = ["run", "workflow", "model", "avg", *datasets]
    rows = []
    for run in runs:
        j = judge or run.primary
        for wf in run.workflows:
            accs = [run.cell(d, wf["label"]).accuracy(j) if run.cell(d, wf["label"]) else None
                    for d in datasets]
            avg = mean_of(accs)
            mark = "*" if any(a is None for a in accs) and avg is not None else ""
            rows.append([run.name, wf["label"], wf.get("model", "-"), pct(avg) + mark,
                         *(pct(a) for a in accs)])
    return headers, rows


def official_table(runs: Sequence[RunData]) -> tuple[list[str], list[list[Any]]] | None:
    datasets = all_datasets(runs)
    rows, any_score = [], False
    for run in runs:
        for wf in run.workflows:
            vals = []
            for d in datasets:
                c = run.cell(d, wf["label"])
                if c is not None and c.official is not None:
                    any_score = True
                    hmean = "" if c.official_hmean is None else f", hmean of splits {pct(c.official_hmean)}"
                    vals.append(f"{pct(c.official)} ({c.official_metric}{hmean})")
                else:
                    vals.append("-")
            rows.append([run.name, wf["label"], *vals])
    return (["run", "workflow", *datasets], rows) if any_score else None


def judges_table(run: RunData) -> tuple[list[str], list[list[Any]]]:
    """Every judge's accuracy and unparseable count per workflow (all datasets pooled)."""
    headers = ["workflow", "judge", "accuracy", "graded", "unparseable"]
    rows = []
    for wf in run.workflows:
        recs = run.records_of(workflow=wf["label"])
        for j in run.judges:
            s = judge_stats(recs, j)
            rows.append([wf["label"], j, pct(s.accuracy), s.n_graded, s.n_unparseable])
    return headers, rows


def judge_cost_table(runs: Sequence[RunData]) -> tuple[list[str], list[list[Any]]]:
    """Judge backend calls and verdict-cache hits per run (summed over its sessions), and the
    tool cache's hits and misses."""
    headers = ["run", "judge", "judge calls", "judge cache hits", "tool cache hits",
               "tool cache misses", "sessions", "eval seconds"]
    rows = []
    for run in runs:
        sessions = run.sessions
        tool_hits = sum((s.get("tool_cache") or {}).get("hits", 0) for s in sessions)
        tool_miss = sum((s.get("tool_cache") or {}).get("misses", 0) for s in sessions)
        secs = sum(s.get("seconds", 0.0) for s in sessions)
        for j in run.judges:
            calls = sum((s.get("judges") or {}).get(j, {}).get("calls", 0) for s in sessions)
            hits = sum((s.get("judges") or {}).get(j, {}).get("cache_hits", 0) for s in sessions)
            rows.append([run.name, j, calls, hits, tool_hits, tool_miss, len(sessions), f"{secs:.1f}"])
    return headers, rows


def agreement_table(run: RunData) -> tuple[list[str], list[list[Any]]]:
    headers = ["judge A", "judge B", "both graded", "agreement", "Cohen's kappa",
               "A correct / B not", "B correct / A not"]
    rows = [[a.judge_a, a.judge_b, a.n_both, pct(a.agreement),
             "-" if a.kappa is None else f"{a.kappa:.3f}", a.a_only_correct, a.b_only_correct]
            for a in agreement(run.records, run.judges)]
    return headers, rows


def tool_use_table(runs: Sequence[RunData]) -> tuple[list[str], list[list[Any]]]:
    headers = ["run", "workflow", "dataset", "n", "no tool %", "image only %", "text only %",
               "image+text %", "text searches / sample", "crop searches", "whole-image searches",
               "crop requests"]
    rows = []
    for run in runs:
        for (d, wf), c in run.cells.items():
            hist = c.text_search_hist
            mean_text = sum(int(k) * v for k, v in hist.items()) / c.n if c.n else 0.0
            rows.append([run.name, wf, d, c.n, *(pct(c.tool_use.get(p), 1) for p in
                         ("none", "image", "text", "image+text")), f"{mean_text:.2f}",
                         c.crop_searches, c.whole_searches, c.crop_requests])
    return headers, rows


def cost_table(runs: Sequence[RunData]) -> tuple[list[str], list[list[Any]]]:
    headers = ["run", "workflow", "dataset", "n", "tool calls / sample", "tool errors",
               "cache hit %", "tokens / sample", "turns / sample", "wall s / sample", "p90 wall s",
               "no answer", "workflow errors"]
    rows = []
    for run in runs:
        for (d, wf), c in run.cells.items():
            rows.append([run.name, wf, d, c.n, f"{c.mean_tool_calls:.2f}", c.tool_errors,
                         pct(c.cache_hits / c.tool_calls if c.tool_calls else None, 1),
                         f"{c.mean_tokens:.0f}", f"{c.mean_turns:.2f}", f"{c.mean_wall_s:.3f}",
                         f"{c.p90_wall_s:.3f}", c.no_answer, c.workflow_errors])
    return headers, rows


def describe_change(limits: dict[str, Any], base: dict[str, Any]) -> str:
    diff = [f"{k}={limits[k]}" for k in sorted(limits) if limits.get(k) != base.get(k)]
    return ", ".join(diff) or "same limits"


def _is_full(limits: dict[str, Any]) -> bool:
    return bool(limits.get("crop_search", True)) and limits.get("max_text_searches") != 1


def ablation_pairs(run: RunData) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(ablation, baseline) workflow pairs: explicit ``baseline`` labels, else agent workflows
    with crop search off or a single text search, against the run's full agent workflow with
    the same policy."""
    by_label = {w["label"]: w for w in run.workflows}
    pairs = [(w, by_label[w["baseline"]]) for w in run.workflows
             if w.get("baseline") in by_label]
    if pairs:
        return pairs
    agents = [w for w in run.workflows if w.get("kind") == "agent" and w.get("limits")]
    full = [w for w in agents if _is_full(w["limits"])]
    for w in agents:
        if not _is_full(w["limits"]):
            base = next((f for f in full if f.get("policy") == w.get("policy")), None)
            if base is not None:
                pairs.append((w, base))
    return pairs


def ablation_table(run: RunData) -> tuple[list[str], list[list[Any]]] | None:
    pairs = ablation_pairs(run)
    if not pairs:
        return None
    headers = ["workflow", "against", "change", "avg", "Δ avg", *run.datasets]
    rows = []
    j = run.primary
    for w, base in pairs:
        accs = [run.cell(d, w["label"]).accuracy(j) if run.cell(d, w["label"]) else None
                for d in run.datasets]
        base_accs = [run.cell(d, base["label"]).accuracy(j) if run.cell(d, base["label"]) else None
                     for d in run.datasets]
        avg, bavg = mean_of(accs), mean_of(base_accs)
        delta = None if avg is None or bavg is None else avg - bavg
        cells = [f"{pct(a)} ({'+' if (a or 0) >= (b or 0) else ''}{pct(None if a is None or b is None else a - b)})"
                 for a, b in zip(accs, base_accs)]
        rows.append([w["label"], base["label"], describe_change(w.get("limits", {}), base.get("limits", {})),
                     pct(avg), ("+" if (delta or 0) >= 0 else "") + pct(delta), *cells])
    return headers, rows


def varying_tag(runs: Sequence[RunData], tag: str | None = None) -> str | None:
    """The tag whose value differs across runs (e.g. ``search_ratio``), or the one asked for."""
    if len(runs) < 2:
        return None
    if tag is not None:
        return tag
    keys = dict.fromkeys(k for r in runs for k in r.tags)
    return next((k for k in keys if len({repr(r.tags.get(k)) for r in runs}) > 1), None)


def tag_table(runs: Sequence[RunData], tag: str) -> tuple[list[str], list[list[Any]]]:
    """Runs side by side along ``tag`` (e.g. models trained with different SFT search ratios)."""
    datasets = all_datasets(runs)
    headers = [tag, "run", "workflow", "avg", *datasets, "tool use %"]
    rows = []
    for run in sorted(runs, key=lambda r: str(r.tags.get(tag))):
        for wf in run.workflows:
            cells = [run.cell(d, wf["label"]) for d in datasets]
            accs = [c.accuracy(run.primary) if c else None for c in cells]
            used = [1 - c.tool_use.get("none", 0.0) for c in cells if c is not None and c.n]
            rows.append([run.tags.get(tag, "-"), run.name, wf["label"], pct(mean_of(accs)),
                         *(pct(a) for a in accs), pct(mean_of(used), 1)])
    return headers, rows


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
             _section("Official scores (%)", official_table(runs))]
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
