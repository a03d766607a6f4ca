"""The report's tables, each ``(headers, rows)`` rendered by :func:`md_table` or
:func:`csv_text`: Table 1, official scores, judges and their agreement, tool use, cost, the
ablations, and runs side by side along a tag (e.g. the SFT search ratio)."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Sequence
from typing import Any

from deepmmsearch.eval.metrics import accuracy_by, agreement, judge_stats, mean_of
from deepmmsearch.eval.runs import RunData


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


MAX_GROUPS = 20  # a breakdown with more distinct values than this is left out


def by_kind_table(run: RunData) -> tuple[list[str], list[list[Any]]] | None:
    """Primary-judge accuracy by search need, category and question type (search-free questions
    are where forced retrieval hurts: the paper's OK-VQA / A-OKVQA finding)."""
    headers = ["workflow", "by", "value", "n", "accuracy"]
    rows = []
    for wf in run.workflows:
        recs = run.records_of(workflow=wf["label"])
        for attr in ("search_required", "category", "question_type"):
            values = {getattr(r, attr) for r in recs}
            if values <= {None} or len(values) > MAX_GROUPS:
                continue
            for value, s in accuracy_by(recs, run.primary, attr).items():
                rows.append([wf["label"], attr, value, s.n_graded + s.n_unparseable + s.n_missing,
                             pct(s.accuracy)])
    return (headers, rows) if rows else None


def seed_groups(runs: Sequence[RunData]) -> list[list[RunData]]:
    """Runs that differ only in their seed (same name and tags): repeated evaluations."""
    groups: dict[tuple[str, str], list[RunData]] = {}
    for r in runs:
        groups.setdefault((r.name, json.dumps(r.tags, sort_keys=True, default=str)), []).append(r)
    return [g for g in groups.values() if len({r.seed for r in g}) > 1]


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.2f} ± {100 * sd:.2f}"


def seeds_table(group: Sequence[RunData]) -> tuple[list[str], list[list[Any]]]:
    """Accuracy mean ± standard deviation over the seeds of one group of runs."""
    datasets = all_datasets(group)
    headers = ["run", "workflow", "seeds", "avg", *datasets]
    rows = []
    for wf in dict.fromkeys(w["label"] for r in group for w in r.workflows):
        per_ds: list[list[float]] = [[] for _ in datasets]
        avgs = []
        for r in group:
            accs = [r.cell(d, wf).accuracy(r.primary) if r.cell(d, wf) else None for d in datasets]
            for i, a in enumerate(accs):
                if a is not None:
                    per_ds[i].append(a)
            if mean_of(accs) is not None:
                avgs.append(mean_of(accs))
        rows.append([group[0].name, wf, ", ".join(str(r.seed) for r in group), _mean_std(avgs),
                     *(_mean_std(v) for v in per_ds)])
    return headers, rows


def _cell_score(run: RunData, dataset: str, wf: str, judge: str | None) -> tuple[float | None, str]:
    """A cell's Table 2 score: the official metric when the dataset has one, else the judge's
    mean verdict score (accuracy for a yes/no judge, MM-Vet's 0..1 grade for ``mode: mmvet``)."""
    c = run.cell(dataset, wf)
    if c is None:
        return None, "-"
    if c.official is not None:
        return c.official, str(c.official_metric)
    j = judge or run.primary
    stats = c.judges.get(j)
    return (stats.mean_score if stats else None), f"judge {j}"


def table2(runs: Sequence[RunData], base: str = "base", trained: str = "trained",
           judge: str | None = None) -> tuple[list[str], list[list[Any]]] | None:
    """The paper's Table 2: per dataset, the base model's score, the trained model's and the
    difference (points). ``base`` / ``trained`` are workflow labels, looked up in every run (the
    two may sit in one run or in two); None when either is missing."""
    where = {label: next(((r, label) for r in runs for w in r.workflows if w["label"] == label), None)
             for label in (base, trained)}
    if where[base] is None or where[trained] is None:
        return None
    (rb, _), (rt, _) = where[base], where[trained]
    rows = []
    for d in all_datasets([rb, rt]):
        b, metric = _cell_score(rb, d, base, judge)
        t, metric_t = _cell_score(rt, d, trained, judge)
        diff = None if b is None or t is None else t - b
        rows.append([d, metric if metric != "-" else metric_t, pct(b), pct(t),
                     "-" if diff is None else f"{100 * diff:+.2f}"])
    return ["dataset", "metric", base, trained, "difference"], rows
