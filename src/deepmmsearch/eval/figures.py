"""PNG figures of evaluation runs (matplotlib, Agg backend), in the spirit of the paper's figures:

- ``accuracy.png``: accuracy per dataset and the average, one bar per run x workflow (Table 1);
- ``tool_use.png``: share of samples using no tool, image search only, text search only, or both
  (Figure 4's tool-use bars), one panel per dataset;
- ``text_searches.png``: how many text searches each sample made (Figure 4's multi-search count);
- ``crop_vs_whole.png``: cropped versus whole-image searches per 100 samples (Figure 4/5's
  cropping analysis);
- ``by_<tag>.png``: average accuracy and tool use of several runs along a tag such as the SFT
  search ratio (Figure 3 right).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepmmsearch.eval.metrics import TOOL_PATTERNS, mean_of
from deepmmsearch.eval.runs import RunData
from deepmmsearch.eval.tables import all_datasets, row_label

PATTERN_LABELS = {"none": "no tool", "image": "image only", "text": "text only",
                  "image+text": "image + text"}
PATTERN_COLORS = {"none": "#bbbbbb", "image": "#4c72b0", "text": "#dd8452", "image+text": "#55a868"}


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        from deepmmsearch.registry import missing_dependency

        raise missing_dependency("matplotlib", "plot", "the report's figures") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _rows(runs: Sequence[RunData]) -> list[tuple[RunData, str, str]]:
    many = len(runs) > 1
    return [(run, wf["label"], row_label(run, wf["label"], many)) for run in runs for wf in run.workflows]


def _rows_with(rows: list[tuple[RunData, str, str]], dataset: str) -> list[tuple[RunData, str, str]]:
    """The rows that evaluated ``dataset`` (several runs may cover different datasets)."""
    return [r for r in rows if r[0].cell(dataset, r[1]) is not None]


def _grid(plt: Any, n: int, width: float = 4.2, height: float = 3.4) -> tuple[Any, list[Any]]:
    cols = min(3, max(1, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _save(fig: Any, path: Path, bottom: float = 0.0) -> Path:
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def accuracy_figure(runs: Sequence[RunData], path: Path) -> Path:
    plt = _plt()
    datasets = all_datasets(runs)
    rows = _rows(runs)
    groups = [*datasets, "avg"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) * max(1, len(rows)) / 2), 4))
    width = 0.8 / max(1, len(rows))
    for i, (run, wf, label) in enumerate(rows):
        accs = [run.cell(d, wf).accuracy(run.primary) if run.cell(d, wf) else None for d in datasets]
        vals = [100 * (a or 0.0) for a in accs] + [100 * (mean_of(accs) or 0.0)]
        xs = [g + (i - (len(rows) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, vals, width, label=label)
    ax.set_xticks(range(len(groups)), groups, rotation=20)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Accuracy ({runs[0].primary} judge)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def tool_use_figure(runs: Sequence[RunData], path: Path) -> Path:
    plt = _plt()
    datasets = all_datasets(runs)
    all_rows = _rows(runs)
    fig, axes = _grid(plt, len(datasets), width=max(4.2, 0.8 * len(all_rows) + 1.5))
    for ax, d in zip(axes, datasets):
        rows = _rows_with(all_rows, d)
        bottom = [0.0] * len(rows)
        for p in TOOL_PATTERNS:
            vals = [100 * (run.cell(d, wf).tool_use.get(p, 0.0) if run.cell(d, wf) else 0.0)
                    for run, wf, _ in rows]
            ax.bar(range(len(rows)), vals, 0.7, bottom=bottom, color=PATTERN_COLORS[p],
                   label=PATTERN_LABELS[p])
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(range(len(rows)), [lb for *_, lb in rows], rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_ylabel("% of samples")
        ax.set_title(d)
    handles, labels = axes[0].get_legend_handles_labels() if axes else ([], [])
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=4)
    fig.suptitle("Tool use per sample")
    return _save(fig, path, bottom=0.1)


def text_search_figure(runs: Sequence[RunData], path: Path) -> Path:
    plt = _plt()
    datasets = all_datasets(runs)
    all_rows = _rows(runs)
    fig, axes = _grid(plt, len(datasets))
    for ax, d in zip(axes, datasets):
        rows = _rows_with(all_rows, d)
        cells = [run.cell(d, wf) for run, wf, _ in rows]
        top = max([int(k) for c in cells if c for k in c.text_search_hist] or [0])
        width = 0.8 / max(1, len(rows))
        for i, ((*_, label), c) in enumerate(zip(rows, cells)):
            hist = {int(k): v for k, v in (c.text_search_hist if c else {}).items()}
            vals = [100 * hist.get(k, 0) / c.n if c and c.n else 0.0 for k in range(top + 1)]
            xs = [k + (i - (len(rows) - 1) / 2) * width for k in range(top + 1)]
            ax.bar(xs, vals, width, label=label)
        ax.set_xticks(range(top + 1))
        ax.set_xlabel("text searches in the episode")
        ax.set_ylabel("% of samples")
        ax.set_title(d)
    if axes:
        axes[0].legend(fontsize=7)
    fig.suptitle("Number of text searches per sample")
    return _save(fig, path)


def crop_figure(runs: Sequence[RunData], path: Path) -> Path:
    plt = _plt()
    datasets = all_datasets(runs)
    all_rows = _rows(runs)
    fig, axes = _grid(plt, len(datasets), width=max(4.2, 0.8 * len(all_rows) + 1.5))
    for ax, d in zip(axes, datasets):
        rows = _rows_with(all_rows, d)
        cells = [run.cell(d, wf) for run, wf, _ in rows]
        crop = [100 * c.crop_searches / c.n if c and c.n else 0.0 for c in cells]
        whole = [100 * c.whole_searches / c.n if c and c.n else 0.0 for c in cells]
        xs = list(range(len(rows)))
        ax.bar([x - 0.2 for x in xs], crop, 0.4, label="cropped", color="#c44e52")
        ax.bar([x + 0.2 for x in xs], whole, 0.4, label="whole image", color="#4c72b0")
        ax.set_xticks(xs, [lb for *_, lb in rows], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("image searches per 100 samples")
        ax.set_title(d)
    if axes:
        axes[0].legend(fontsize=7)
    fig.suptitle("Cropped vs whole-image searches")
    return _save(fig, path)


def tag_figure(runs: Sequence[RunData], tag: str, path: Path) -> Path:
    """Average accuracy (solid) and tool use (dashed) of each workflow along ``tag``."""
    plt = _plt()
    datasets = all_datasets(runs)
    ordered = sorted(runs, key=lambda r: _sort_key(r.tags.get(tag)))
    xs = [str(r.tags.get(tag)) for r in ordered]
    labels = list(dict.fromkeys(w["label"] for r in ordered for w in r.workflows))
    fig, ax = plt.subplots(figsize=(6, 4))
    for wf in labels:
        acc, used = [], []
        for r in ordered:
            cells = [r.cell(d, wf) for d in datasets]
            acc.append(100 * (mean_of([c.accuracy(r.primary) if c else None for c in cells]) or 0.0))
            used.append(100 * (mean_of([1 - c.tool_use.get("none", 0.0) for c in cells if c]) or 0.0))
        line = ax.plot(xs, acc, marker="o", label=f"{wf} accuracy")[0]
        ax.plot(xs, used, marker="x", linestyle="--", color=line.get_color(), label=f"{wf} tool use")
    ax.set_xlabel(tag)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.set_title(f"Runs along {tag}")
    return _save(fig, path)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, float(value)) if isinstance(value, (int, float)) else (1, str(value))


def write_figures(runs: Sequence[RunData], out: Path, tag: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [accuracy_figure(runs, out / "accuracy.png"),
             tool_use_figure(runs, out / "tool_use.png"),
             text_search_figure(runs, out / "text_searches.png"),
             crop_figure(runs, out / "crop_vs_whole.png")]
    if tag:
        paths.append(tag_figure(runs, tag, out / f"by_{tag}.png"))
    return paths
