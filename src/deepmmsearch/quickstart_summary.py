"""The quickstart's own summary: stage timings and its goals, measured on the evaluation run.

``quickstart.md`` / ``quickstart.json`` in the quickstart's folder, written by the last stage of
:mod:`deepmmsearch.quickstart`. The goals (issue 15), on held-out test questions:

- the whole run in at most 10 minutes on 2 cores;
- the trained agents (SFT, and SFT + GRPO) at least 90% accurate on search-required questions and
  at least 90% on search-free ones: they see and they copy;
- GRPO beats its SFT start: at least +5 points with a paired one-sided sign test p < 0.05, or at
  least 30% fewer unneeded tool calls at an accuracy not significantly lower;
- both signature ablations bite: crop search off, and a single text search (no refined query),
  each cost the trained agent at least 10 points;
- direct answering (no tools) at most 10%; direct < RAG < SFT ≤ GRPO.

An *unneeded* tool call is one beyond what the question needs: none for a search-free question,
one text search for a question that names its entity, an image search and a text search for one
that shows it (the ``search`` field SimWeb stores with every question), one more text search for a
two-hop question.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deepmmsearch.eval.records import EvalRecord, all_tool_calls
from deepmmsearch.eval.runs import RunData, load_run
from deepmmsearch.types import read_jsonl

IDEAL_CALLS = {"none": 0, "text": 1, "crop": 2, "whole": 2}
TIME_BUDGET_S = 600.0

# workflow labels in configs/quickstart/*.yaml, by role
ROLES = {"direct": "direct", "rag": "rag", "teacher": "agent-teacher", "sft": "agent-sft",
         "grpo": "agent-grpo", "no_crop": "no-crop", "one_text": "one-text-search"}


@dataclass
class Cell:
    """One workflow on one kind of question (search-required or search-free)."""

    n: int = 0
    correct: int = 0
    tool_calls: float = 0.0  # per question
    unneeded: float = 0.0  # tool calls beyond the question's need, per question
    with_unneeded: float = 0.0  # share of questions with at least one unneeded call

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


def unneeded_calls(rec: EvalRecord) -> int:
    need = IDEAL_CALLS.get(str(rec.trajectory.metadata.get("search")), 0)
    need += rec.question_type == "two-hop"  # the second, refined text search
    return max(0, len(all_tool_calls(rec.trajectory)) - need)


def cell(records: Sequence[EvalRecord], judge: str) -> Cell:
    c = Cell(n=len(records))
    if not records:
        return c
    c.correct = sum(bool(r.correct(judge)) for r in records)
    c.tool_calls = sum(len(all_tool_calls(r.trajectory)) for r in records) / len(records)
    extra = [unneeded_calls(r) for r in records]
    c.unneeded = sum(extra) / len(records)
    c.with_unneeded = sum(x > 0 for x in extra) / len(records)
    return c


def cells(run: RunData) -> dict[str, dict[str, Cell]]:
    """workflow label -> {"search": Cell, "free": Cell}."""
    out = {}
    for wf in run.workflows:
        recs = run.records_of(workflow=wf["label"])
        out[wf["label"]] = {
            "search": cell([r for r in recs if r.search_required is not False], run.primary),
            "free": cell([r for r in recs if r.search_required is False], run.primary)}
    return out


def _paired(run: RunData, a: str, b: str) -> list[tuple[EvalRecord, EvalRecord]]:
    """Search-required questions both workflows answered, as (record under a, record under b)."""
    by = {w: {r.key[::2]: r for r in run.records_of(workflow=w) if r.search_required is not False}
          for w in (a, b)}
    return [(by[a][k], by[b][k]) for k in sorted(by[a].keys() & by[b].keys())]


def flips(run: RunData, a: str, b: str) -> tuple[int, int]:
    """(wrong under ``a`` and right under ``b``, right under ``a`` and wrong under ``b``)."""
    pairs = [(bool(x.correct(run.primary)), bool(y.correct(run.primary))) for x, y in _paired(run, a, b)]
    return sum(not x and y for x, y in pairs), sum(x and not y for x, y in pairs)


def fewer_calls(run: RunData, a: str, b: str) -> tuple[int, int]:
    """(questions with fewer unneeded tool calls under ``b``, with more)."""
    pairs = [(unneeded_calls(x), unneeded_calls(y)) for x, y in _paired(run, a, b)]
    return sum(y < x for x, y in pairs), sum(y > x for x, y in pairs)


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test: P(at least ``wins`` of ``wins + losses`` fair coin flips)."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n if n else 1.0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def goals(run: RunData, total_s: float) -> list[dict[str, Any]]:
    """Each goal (module docstring): what was measured, the target, and whether it was met."""
    cs = cells(run)
    acc = {role: cs[label]["search"].accuracy for role, label in ROLES.items() if label in cs}
    out = [{"goal": "whole run ≤ 10 min", "measured": f"{total_s:.0f} s",
            "met": total_s <= TIME_BUDGET_S}]
    for role in ("sft", "grpo"):
        if acc.get(role) is None:
            continue
        free = cs[ROLES[role]]["free"].accuracy
        out.append({"goal": f"{role.upper()} agent ≥ 90% search-required and ≥ 90% search-free",
                    "measured": f"{_pct(acc[role])} search-required, {_pct(free)} search-free",
                    "met": acc[role] >= 0.9 and (free is None or free >= 0.9)})
    if acc.get("sft") is not None and acc.get("grpo") is not None:
        out.append(grpo_goal(run, cs[ROLES["sft"]]["search"], cs[ROLES["grpo"]]["search"]))
    if acc.get("direct") is not None:
        out.append({"goal": "direct answering ≤ 10%", "measured": _pct(acc["direct"]),
                    "met": acc["direct"] <= 0.1})
    for role, what in (("no_crop", "crop search off"), ("one_text", "one text search only")):
        if acc.get(role) is not None and acc.get("grpo") is not None:
            drop = acc["grpo"] - acc[role]
            out.append({"goal": f"{what} costs ≥ 10 points",
                        "measured": f"{_pct(acc['grpo'])} → {_pct(acc[role])} "
                                    f"({-100 * drop:+.1f} points)", "met": drop >= 0.1})
    if all(acc.get(k) is not None for k in ("direct", "rag", "sft", "grpo")):
        out.append({"goal": "direct < RAG < SFT ≤ GRPO",
                    "measured": f"{_pct(acc['direct'])} < {_pct(acc['rag'])} < {_pct(acc['sft'])} "
                                f"≤ {_pct(acc['grpo'])}",
                    "met": acc["direct"] < acc["rag"] < acc["sft"] <= acc["grpo"]})
    return out


GRPO_GAIN = 0.05  # accuracy points GRPO must add over its SFT start (p < 0.05) ...
GRPO_LEANER = 0.3  # ... or this share fewer unneeded tool calls at equal accuracy


def grpo_goal(run: RunData, sft: Cell, grpo: Cell) -> dict[str, Any]:
    """GRPO against its SFT start on the same questions: at least +5 points with a one-sided
    paired sign test p < 0.05, or accuracy not significantly lower (p ≥ 0.05 the other way) with
    at least 30 % fewer unneeded tool calls per question."""
    fixed, broke = flips(run, ROLES["sft"], ROLES["grpo"])
    leaner, fatter = fewer_calls(run, ROLES["sft"], ROLES["grpo"])
    p_up, p_down = sign_test(fixed, broke), sign_test(broke, fixed)
    gain = (grpo.accuracy or 0.0) - (sft.accuracy or 0.0)
    cut = 1.0 - grpo.unneeded / sft.unneeded if sft.unneeded > 0 else 0.0
    better = p_up < 0.05 and gain >= GRPO_GAIN - 1e-9
    same_but_leaner = p_down >= 0.05 and cut >= GRPO_LEANER
    return {"goal": "GRPO beats SFT: ≥ +5 points (sign test p < 0.05), or ≥ 30% fewer unneeded "
                    "tool calls at equal accuracy",
            "measured": (f"accuracy {_pct(sft.accuracy)} → {_pct(grpo.accuracy)} ({100 * gain:+.1f} "
                         f"points; questions fixed {fixed}, broken {broke}; one-sided p={p_up:.2g}); "
                         f"unneeded tool calls per question {sft.unneeded:.3f} → {grpo.unneeded:.3f} "
                         f"({-100 * cut:+.0f}%; questions with fewer {leaner}, with more {fatter})"),
            "met": better or same_but_leaner,
            "how": "higher accuracy" if better else "same accuracy, fewer unneeded tool calls"
                   if same_but_leaner else None}


# -- writing --------------------------------------------------------------------------------


def _md(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def workflow_table(run: RunData) -> str:
    cs = cells(run)
    rows = []
    for wf in run.workflows:
        s, f = cs[wf["label"]]["search"], cs[wf["label"]]["free"]
        rows.append([wf["label"], wf.get("model", "-"), f"{_pct(s.accuracy)} (n={s.n})",
                     f"{s.tool_calls:.2f}", f"{s.unneeded:.3f}", f"{_pct(f.accuracy)} (n={f.n})",
                     f"{f.tool_calls:.2f}"])
    return _md(["workflow", "model", "search-required acc", "tool calls / q", "unneeded / q",
                "search-free acc", "tool calls / q (search-free)"], rows)


def trajectory_text(rec: EvalRecord) -> str:
    """One evaluated episode as plain text (for the README and the summary)."""
    t = rec.trajectory
    out = [f"question: {t.question}", f"image:    {Path(t.image or '-').name}",
           f"gold:     {' | '.join(t.gold)}"]
    for turn in t.turns:
        out.append(f"model  >  {turn.model_text.strip()}")
        call = turn.tool_call
        if call is not None:
            where = ("text search" if call.kind == "text_search" else
                     "image search, whole image" if call.whole_image else
                     f"image search on the crop {[round(v) for v in call.box.as_list()] if call.box else '?'}")
            out.append(f"tools  >  {where} ({call.backend}, {len(call.hits)} hits)")
        if turn.observation:
            out.append(f"inject >  {turn.observation.strip()}")
    verdict = "correct" if rec.correct(rec_judge(rec)) else "incorrect"
    out.append(f"answer:   {t.answer}  ({verdict})")
    return "\n".join(out)


def rec_judge(rec: EvalRecord) -> str:
    return next(iter(rec.verdicts), "rule")


def example(run: RunData, label: str) -> EvalRecord | None:
    """A correct episode of ``label`` with a crop search and a text search, else any correct one."""
    recs = [r for r in run.records_of(workflow=label) if r.correct(run.primary)]
    def crop_and_text(r: EvalRecord) -> bool:
        kinds = [(c.kind, c.whole_image) for c in r.trajectory.tool_calls]
        return ("image_search", False) in kinds and any(k == "text_search" for k, _ in kinds)
    return next((r for r in recs if crop_and_text(r)), recs[0] if recs else None)


def _log_rows(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(str(path)) if path.exists() else []


def _accuracy_points(ax: Any, xs: list[int], roles: list[str], cs: dict, suffix: str = "") -> None:
    """Held-out accuracy of the workflows ``roles`` at steps ``xs`` on a twin axis of ``ax``."""
    acc = ax.twinx()
    for kind, colour in (("search", "tab:green"), ("free", "tab:orange")):
        ys = [cs.get(ROLES[r], {}).get(kind) for r in roles]
        if all(c is not None and c.accuracy is not None for c in ys):
            name = "search-required" if kind == "search" else "search-free"
            acc.plot(xs, [100 * c.accuracy for c in ys], "o--" if len(xs) > 1 else "o",
                     color=colour, markersize=8, label=f"held-out {name}{suffix}")
    acc.set_ylim(0, 100)
    acc.set_ylabel("held-out accuracy (%)")
    acc.legend(loc="center right", fontsize=8)


def plot_training(cfg: Any, run: RunData, path: Path) -> Path | None:
    """``training.png``: SFT loss against SFT steps and GRPO reward against GRPO steps, each
    with the held-out accuracy the evaluation measured (search-required and search-free): the SFT
    model at the end of SFT, which is also step 0 of GRPO, and the GRPO model at its end. The
    evaluation runs once per model, so accuracy has these points only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sft_log = [r for r in _log_rows(Path(cfg.stage_config("sft").out) / "train_log.jsonl")
               if "loss" in r and "step" in r]
    grpo_log = [r for r in _log_rows(Path(cfg.stage_config("grpo").out) / "metrics.jsonl")
                if "reward" in r]
    if not sft_log and not grpo_log:
        return None
    cs = cells(run)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    if sft_log:
        steps = [r["step"] for r in sft_log]
        a.plot(steps, [r["loss"] for r in sft_log], color="tab:blue", label="train loss")
        a.set_xlabel("SFT step")
        a.set_ylabel("train loss (model tokens)")
        _accuracy_points(a, [steps[-1]], ["sft"], cs, " (end of SFT)")
        a.set_title("SFT")
    if grpo_log:
        steps = [r.get("step", i + 1) for i, r in enumerate(grpo_log)]
        b.plot(steps, [r["reward"] for r in grpo_log], color="tab:blue", alpha=0.6, label="reward")
        b.set_xlabel("GRPO step")
        b.set_ylabel("mean rollout reward")
        _accuracy_points(b, [0, steps[-1]], ["sft", "grpo"], cs)
        b.set_title("GRPO (step 0: the SFT model)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_summary(cfg: Any, stages: Sequence[Any], report_dir: Path, total: float,
                  threads: int | None = None) -> Path:
    """Write ``quickstart.md`` and ``quickstart.json`` into ``cfg.out``; returns the .md path."""
    out = Path(cfg.out)
    run = load_run(cfg.stage_config("eval").out)
    ran = [s for s in stages if not s.skipped]
    gs = goals(run, total)
    ex = example(run, ROLES["grpo"]) or example(run, ROLES["sft"])
    load = os.getloadavg()
    stage_rows = [[s.name, "skipped (done earlier)" if s.skipped else f"{s.wall_s:.1f}",
                   "-" if s.skipped else f"{s.cpu_s:.1f}"] for s in stages]
    parts = [
        "# Quickstart: a tiny DeepMMSearch-R1 trained on SimWeb\n",
        (f"Finished {time.strftime('%Y-%m-%d %H:%M')}; stages run now: {len(ran)} of {len(stages)}; "
         f"wall time {total:.0f} s; torch threads {threads or cfg.torch_threads}; load average at the "
         f"end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs.\n"),
        "## Goals (held-out test questions)\n",
        _md(["goal", "measured", "met"], [[g["goal"], g["measured"], "yes" if g["met"] else "**no**"]
                                           for g in gs]),
        "## Workflows\n",
        ("Accuracy by the rule judge; tool calls per question; *unneeded* = calls beyond what the "
         "question needs (0 search-free, 1 named entity, 2 entity shown in the image, +1 two-hop).\n"),
        workflow_table(run),
        "## Stages\n",
        _md(["stage", "wall s", "CPU s"], stage_rows),
        "(then the report stage, which writes this file)\n",
        ("Full report (Table 1, ablations, tool-use figures, trajectories): "
         f"[{report_dir / 'report.md'}]({(report_dir / 'report.md').resolve()})\n"),
    ]
    figure = plot_training(cfg, run, out / "training.png")
    if figure is not None:
        parts += ["## Training curves\n", f"![SFT loss and GRPO reward, held-out accuracy]({figure.name})\n"]
    if ex is not None:
        parts += [f"## One trajectory ({ex.workflow})\n", "```text\n" + trajectory_text(ex) + "\n```\n"]
    md = out / "quickstart.md"
    md.write_text("\n".join(parts), encoding="utf-8")
    data = {"goals": gs, "total_wall_s": total, "load_average": load,
            "stages": [asdict(s) if hasattr(s, "__dataclass_fields__") else s for s in stages],
            "workflows": {k: {kk: asdict(vv) | {"accuracy": vv.accuracy} for kk, vv in v.items()}
                          for k, v in cells(run).items()},
            "report": str(report_dir / "report.md")}
    (out / "quickstart.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return md
