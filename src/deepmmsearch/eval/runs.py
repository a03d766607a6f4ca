"""A finished (or partial) evaluation run directory, loaded for reports: its records, the
run's metadata (``run.json``) and the metrics of every dataset x workflow cell."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.eval import store
from deepmmsearch.eval.metrics import CellMetrics, cell_metrics
from deepmmsearch.eval.records import EvalRecord


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
    seed: int | None = None
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
                  dict(info.get("tags") or {}), list(info.get("sessions") or []),
                  info.get("seed"))
    groups: dict[tuple[str, str], list[EvalRecord]] = {}
    for r in records:
        groups.setdefault((r.dataset, r.workflow), []).append(r)
    order = {w["label"]: i for i, w in enumerate(workflows)}
    keys = sorted(groups, key=lambda k: (datasets.index(k[0]) if k[0] in datasets else 99,
                                         order.get(k[1], 99)))
    run.cells = {k: cell_metrics(groups[k], judges) for k in keys}
    return run
