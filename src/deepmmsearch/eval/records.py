"""The record of one evaluated sample, as written (one JSON line) to a run's results files.

A row holds the whole trajectory, every judge's verdict, the official score when the dataset has
one, and the bookkeeping the cost report needs. ``EvalRecord.from_dict(json.loads(line))`` reads
it back; unknown keys written by newer versions are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepmmsearch.types import SCHEMA_VERSION, Record, ToolCall, Trajectory, Verdict


@dataclass
class EvalRecord(Record):
    sample_id: str
    dataset: str  # the dataset's label in the run (a table column)
    workflow: str  # the workflow's label in the run (a table row)
    trajectory: Trajectory
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # judge label -> verdict
    official: float | None = None  # the dataset's own metric in [0, 1], when it has one
    official_metric: str | None = None  # e.g. "vqa_accuracy"
    question_type: str | None = None
    category: str | None = None
    search_required: bool | None = None
    error: str | None = None  # the workflow itself crashed on this sample (not a tool failure)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalRecord:
        data = dict(data)
        data["trajectory"] = Trajectory.from_dict(data["trajectory"])
        data["verdicts"] = {k: Verdict.from_dict(v) for k, v in (data.get("verdicts") or {}).items()}
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dataset, self.workflow, self.sample_id)

    def correct(self, judge: str) -> bool | None:
        """The verdict of ``judge`` (None: missing or unparseable)."""
        v = self.verdicts.get(judge)
        return None if v is None else v.correct


def all_tool_calls(traj: Trajectory) -> list[ToolCall]:
    """Every tool call of an episode, in order: calls a workflow made before the model's turns
    (the RAG workflow's fixed image search, stored in ``metadata["fixed_calls"]``) and then the
    calls the model asked for."""
    fixed = [c if isinstance(c, ToolCall) else ToolCall.from_dict(c)
             for c in traj.metadata.get("fixed_calls", [])]
    return fixed + traj.tool_calls
