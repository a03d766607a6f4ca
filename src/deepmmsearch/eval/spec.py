"""The schema of an evaluation config (``stage: eval``): datasets, workflows, judges.

See :mod:`deepmmsearch.eval.harness` for a full example and ``configs/eval/*.yaml``. Everything is
checked when the config loads: loader and judge names and options against their registries,
workflow kinds, unique labels, limit overrides (built into :class:`~deepmmsearch.config.Limits`)
and ablation baselines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.config import AgentConfig, Limits, build_dataclass
from deepmmsearch.eval.judging import judge_label
from deepmmsearch.eval.store import safe_name
from deepmmsearch.eval.workflows import WORKFLOWS
from deepmmsearch.registry import DATASET, ComponentSpec, ConfigError, did_you_mean


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """One benchmark: a loader of the ``dataset`` registry (with its options) and its label."""

    loader: ComponentSpec
    label: str | None = None  # the column name in tables; default: the loader's name

    @property
    def name(self) -> str:
        return self.label or self.loader.name


@dataclass(frozen=True, kw_only=True)
class WorkflowSpec:
    """One row of the results table: a workflow kind, optionally another policy or limits."""

    kind: str  # direct | rag | agent
    label: str | None = None  # the row name; default: the kind
    model: str | None = None  # the model's name in tables; default: from the policy spec
    policy: ComponentSpec | None = None  # default: agent.policy (e.g. {name: hf, path: CKPT})
    prompts: str | None = None  # default: agent.prompts
    limits: dict[str, Any] = field(default_factory=dict)  # overrides of agent.limits
    baseline: str | None = None  # for ablations: the label of the workflow compared against

    @property
    def name(self) -> str:
        return self.label or self.kind


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    stage: str = "eval"
    name: str = "eval"  # the run's name in reports
    out: str = "runs/eval"  # the run directory (resumed when it holds the same config)
    seed: int = 0
    limit: int | None = None  # at most this many samples per dataset (seeded random subset)
    agent: AgentConfig = field(default_factory=AgentConfig)  # policy, tools, cache, limits
    datasets: list[DatasetSpec] = field(default_factory=list)
    workflows: list[WorkflowSpec] = field(default_factory=lambda: [WorkflowSpec(kind="agent")])
    judges: list[ComponentSpec] = field(default_factory=lambda: [ComponentSpec("rule")])
    official_scores: bool = True  # the dataset's own metric beside the judge, when it has one
    save_crops: bool = True  # keep crops and boxed images under RUN_DIR/artifacts
    progress: bool = True  # a tqdm progress bar on stderr
    tags: dict[str, Any] = field(default_factory=dict)  # free labels, e.g. {search_ratio: 0.5}

    def __post_init__(self) -> None:
        if self.stage != "eval":
            raise ConfigError(f"an eval config needs stage: eval, got {self.stage!r}")
        if not self.datasets:
            raise ConfigError("datasets: list at least one dataset")
        if not self.workflows:
            raise ConfigError("workflows: list at least one workflow")
        if not self.judges:
            raise ConfigError("judges: list at least one judge")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit must be >= 1")
        for what, items in (("datasets", [d.name for d in self.datasets]),
                            ("workflows", [w.name for w in self.workflows])):
            _unique(what, items)
            _unique(f"{what} (as file names)", [safe_name(x) for x in items])
        for i, d in enumerate(self.datasets):
            DATASET.validate(d.loader)
            if "/" in d.name or not d.name.strip():
                raise ConfigError(f"datasets[{i}].label {d.name!r}: use a short name without '/'")
        labels = [w.name for w in self.workflows]
        for i, w in enumerate(self.workflows):
            if w.kind not in WORKFLOWS:
                raise ConfigError(f"workflows[{i}].kind {w.kind!r}{did_you_mean(w.kind, WORKFLOWS)};"
                                  f" one of {sorted(WORKFLOWS)}")
            self.limits_for(w)  # validates the overrides
            if w.baseline is not None and w.baseline not in labels:
                raise ConfigError(f"workflows[{i}].baseline {w.baseline!r} is not a workflow label"
                                  f"{did_you_mean(w.baseline, labels)}")
        taken: list[str] = []
        for spec in self.judges:
            taken.append(judge_label(spec, taken))

    def limits_for(self, wf: WorkflowSpec) -> Limits:
        """The agent limits with the workflow's overrides applied (validated)."""
        if not wf.limits:
            return self.agent.limits
        return build_dataclass(Limits, {**asdict(self.agent.limits), **wf.limits},
                               f"workflows[{wf.name}].limits")


def _unique(what: str, names: list[str]) -> None:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{what}: labels must be unique; repeated: {dup} (set 'label')")


def model_label(wf: WorkflowSpec, agent: AgentConfig) -> str:
    """The model's name in tables: ``wf.model``; else the policy's ``model`` option (for ``hf``,
    the checkpoint directory's name); else the policy backend's name."""
    if wf.model:
        return wf.model
    spec = wf.policy or agent.policy
    model = dict(spec.options).get("model")
    if isinstance(model, str) and model:
        return Path(model.rstrip("/")).name if spec.name == "hf" else model
    return spec.name
