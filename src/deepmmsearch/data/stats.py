"""Statistics of a distillation run: counts per filter and per category, search ratio, tool use —
as ``stats.json``, a markdown report ``stats.md`` and a bar chart ``stats.png`` (matplotlib, Agg).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from deepmmsearch import jsontext
from deepmmsearch.data.filters import FILTERS, SampleReport


def _ratio(rows: Sequence[dict[str, Any]]) -> float | None:
    return sum(bool(r["search_required"]) for r in rows) / len(rows) if rows else None


def distill_stats(records: Sequence[dict[str, Any]], selected: Sequence[dict[str, Any]],
                  report: SampleReport, *, n_samples: int, search_ratio: float,
                  target: int) -> dict[str, Any]:
    """Everything the report shows, as plain data (``records`` are journal rows)."""
    failed = Counter(r["failed"] for r in records if r["failed"])
    pool = [r for r in records if r["failed"] is None]
    funnel, left = [("episodes", len(records))], len(records)
    for name in FILTERS:
        left -= failed.get(name, 0)
        funnel.append((name, left))
    cats = sorted({str(r["category"]) for r in pool})

    def split(rows: Sequence[dict[str, Any]], cat: str) -> dict[str, int]:
        inside = [r for r in rows if str(r["category"]) == cat]
        n_search = sum(bool(r["search_required"]) for r in inside)
        return {"search": n_search, "free": len(inside) - n_search}

    return {
        "samples": n_samples, "episodes": len(records), "passed": len(pool),
        "selected": len(selected), "target": target, "target_search_ratio": search_ratio,
        "failed": {k: failed.get(k, 0) for k in FILTERS},
        "funnel": funnel,
        "search_ratio": {"pool": _ratio(pool), "selected": _ratio(selected)},
        "categories": {c: {"pool": split(pool, c), "selected": split(selected, c)} for c in cats},
        "tool_patterns": dict(Counter(r.get("tool_pattern", "?") for r in selected)),
        "category_how": dict(Counter(r.get("category_how") or "?" for r in pool)),
        "mean_turns": mean(r["n_turns"] for r in selected) if selected else None,
        "mean_tool_calls": mean(r["n_tool_calls"] for r in selected) if selected else None,
        "sampling": report.to_dict(),
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def stats_markdown(s: dict[str, Any]) -> str:
    mt, mc = s["mean_turns"], s["mean_tool_calls"]
    lines = [
        "# Distillation statistics", "",
        (f"- source samples: {s['samples']}; episodes run: {s['episodes']}; passed every filter: "
         f"{s['passed']}; selected: **{s['selected']}** (target {s['target']})"),
        (f"- search-required share: pool {_pct(s['search_ratio']['pool'])}, selected "
         f"**{_pct(s['search_ratio']['selected'])}** (target {_pct(s['target_search_ratio'])})"),
        (f"- mean turns {'–' if mt is None else round(mt, 2)}, mean tool calls "
         f"{'–' if mc is None else round(mc, 2)} (selected)"),
    ]
    short = {k: v for k, v in s["sampling"]["shortfall"].items() if v > 0}
    if short:
        lines.append(f"- shortfall against the quota: {short} (filled from the other half: "
                     f"{s['sampling']['filled']})")
    lines += ["", "## Filters", "", "| stage | episodes left | dropped here |", "|---|---:|---:|"]
    prev = None
    for name, left in s["funnel"]:
        lines.append(f"| {name} | {left} | {'' if prev is None else prev - left} |")
        prev = left
    lines += ["", "## Categories", "",
              "| category | pool search | pool free | selected search | selected free |",
              "|---|---:|---:|---:|---:|"]
    for c, v in s["categories"].items():
        lines.append(f"| {c} | {v['pool']['search']} | {v['pool']['free']} | "
                     f"{v['selected']['search']} | {v['selected']['free']} |")
    lines += ["", "## Tool use (selected)", "", "| pattern | conversations |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(s["tool_patterns"].items())]
    lines += ["", f"Category labels by: {s['category_how']}", ""]
    return "\n".join(lines)


def plot_stats(s: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    names = [n for n, _ in s["funnel"]]
    ax1.bar(range(len(names)), [v for _, v in s["funnel"]], color="#4c72b0")
    ax1.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
    ax1.set_ylabel("episodes left")
    ax1.set_title("Filters (episodes left after each check)")
    cats = list(s["categories"])
    search = [s["categories"][c]["selected"]["search"] for c in cats]
    free = [s["categories"][c]["selected"]["free"] for c in cats]
    ax2.bar(range(len(cats)), search, label="search-required", color="#dd8452")
    ax2.bar(range(len(cats)), free, bottom=search, label="search-free", color="#55a868")
    ax2.set_xticks(range(len(cats)), cats, rotation=40, ha="right", fontsize=8)
    ax2.set_ylabel("selected conversations")
    ax2.set_title(f"Selected per category (search share {_pct(s['search_ratio']['selected'])})")
    ax2.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax1, ax2):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_stats(s: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    out = Path(out_dir)
    (out / "stats.json").write_text(jsontext.dumps(s, indent=2), encoding="utf-8")
    (out / "stats.md").write_text(stats_markdown(s), encoding="utf-8")
    paths = {"stats_json": str(out / "stats.json"), "stats_md": str(out / "stats.md")}
    try:
        plot_stats(s, out / "stats.png")
        paths["stats_png"] = str(out / "stats.png")
    except ImportError:
        import logging

        logging.getLogger(__name__).warning("matplotlib missing: no stats.png (pip install "
                                            "'deepmmsearch[plot]')")
    return paths
