"""``deepmmsearch eval --config CFG``: datasets x workflows, graded by one or more judges.

A config (``stage: eval``)::

    stage: eval
    name: simweb-small
    out: runs/eval/simweb_small          # the run directory
    agent: {policy: ..., text_search: ..., image_search: ..., cache: {mode: live, path: ...}}
    datasets:
      - loader: {name: simweb, path: runs/simweb, split: test}
        label: SimWeb
    workflows:
      - {kind: direct}
      - {kind: rag}
      - {kind: agent}
      - {kind: agent, label: no-crop, limits: {crop_search: false}, baseline: agent}
      - {kind: agent, label: one-text-search, limits: {max_text_searches: 1}, baseline: agent}
    judges: [rule, {name: llm, model: gpt-4o}]    # the first is the primary judge

Every sample's trajectory and verdicts are appended to ``results/<dataset>__<workflow>.jsonl`` as
soon as it finishes (flushed and fsync'd). Running the same command again on the same run
directory resumes: finished samples are skipped, a torn last line is cut and redone. The run
directory layout is described in :mod:`deepmmsearch.eval.store`.

From Python::

    from deepmmsearch.config import load_config
    from deepmmsearch.eval.harness import run_eval
    result = run_eval(load_config("configs/eval/simweb_small.yaml", expect="eval"))
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deepmmsearch.config import dump_config, load_yaml, to_plain
from deepmmsearch.eval import store
from deepmmsearch.eval.judging import JudgePanel
from deepmmsearch.eval.metrics import agreement, cell_metrics, group_cells
from deepmmsearch.eval.records import EvalRecord
from deepmmsearch.eval.spec import DatasetSpec, EvalConfig, WorkflowSpec, model_label
from deepmmsearch.eval.workflows import WORKFLOWS, WorkflowRuntime, failed_trajectory
from deepmmsearch.registry import DATASET, POLICY, ComponentSpec, ConfigError
from deepmmsearch.tools.cache import ReplayMiss
from deepmmsearch.types import Sample

log = logging.getLogger(__name__)

_RESUME_IGNORED = ("out", "progress", "name", "tags")


def _comparable(plain: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in plain.items() if k not in _RESUME_IGNORED}
    agent = dict(out.get("agent") or {})
    agent.pop("concurrency", None)
    agent.pop("cache", None)  # live / replay of the same cache gives the same results
    out["agent"] = agent
    return out


@dataclass
class RunResult:
    run_dir: Path
    records: list[EvalRecord]
    new: int  # samples evaluated in this session
    skipped: list[str]  # samples left undone (replay-cache misses), as "dataset/workflow/id"
    summary: dict[str, Any]


class Evaluation:
    """One evaluation run. ``await Evaluation(cfg).run()``; :func:`run_eval` wraps it."""

    def __init__(self, cfg: EvalConfig, *, out: str | Path | None = None, force: bool = False,
                 context: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(out or cfg.out)
        self.force = force
        self.context = dict(context or {})  # passed to the factories that take it (world=...)
        self.samples: dict[str, list[Sample]] = {}
        self.runtimes: dict[tuple[str, str], WorkflowRuntime] = {}
        self.panel: JudgePanel | None = None
        self.toolbox = None
        self.skipped: list[str] = []

    # -- preparation -------------------------------------------------------------------------

    def _prepare_dir(self) -> dict[str, Any]:
        d = self.run_dir
        cfg_path = d / "config.yaml"
        new = to_plain(self.cfg)
        if cfg_path.exists():
            old = load_yaml(cfg_path)
            if _comparable(old) != _comparable(new) and not self.force:
                raise ConfigError(
                    f"{d} holds a run with a different config; use another 'out' (or --force to "
                    "resume it with this config anyway)")
            info = store.read_json(d / "run.json") if (d / "run.json").exists() else {}
            log.info("resuming the run in %s", d)
        else:
            info = {}
        d.mkdir(parents=True, exist_ok=True)
        dump_config(self.cfg, cfg_path)
        session = store.run_info(self.cfg.seed)
        info.setdefault("seed", self.cfg.seed)
        info.setdefault("created", session["started"])
        info.update(name=self.cfg.name, tags=self.cfg.tags, git_commit=session["git_commit"],
                    packages=session.pop("packages"), python=session["python"])
        info.setdefault("sessions", []).append(session)
        return info

    def _load_datasets(self, info: dict[str, Any]) -> None:
        info["datasets"] = []
        for spec in self.cfg.datasets:
            data = DATASET.build(spec.loader, **self.context)
            samples = list(getattr(data, "samples", data))
            report = getattr(data, "report", None)
            if self.cfg.limit is not None and len(samples) > self.cfg.limit:
                from deepmmsearch.data.benchmarks.base import select

                samples = select(samples, limit=self.cfg.limit, seed=self.cfg.seed)
            unique: dict[str, Sample] = {}
            for s in samples:
                if s.id in unique:
                    log.warning("%s: duplicate sample id %r skipped", spec.name, s.id)
                unique.setdefault(s.id, s)
            samples = list(unique.values())
            if not samples:
                raise ConfigError(f"dataset {spec.name!r} has no samples: check its loader's "
                                  "files (an eval over nothing would report 0/0)")
            self._check_ids(spec.name, [s.id for s in samples])
            if report is not None and hasattr(report, "to_dict"):
                store.write_json(self.run_dir / "samples" / f"{store.safe_name(spec.name)}.load.json",
                                 report.to_dict())
            self.samples[spec.name] = samples
            info["datasets"].append({"label": spec.name, "loader": spec.loader.to_dict(),
                                     "n": len(samples)})
            log.info("%s: %d samples", spec.name, len(samples))

    def _check_ids(self, label: str, ids: list[str]) -> None:
        path = self.run_dir / "samples" / f"{store.safe_name(label)}.ids"
        if path.exists():
            old = [x for x in path.read_text(encoding="utf-8").splitlines() if x]
            if old != ids and not self.force:
                raise ConfigError(
                    f"{label}: the loader now returns other samples than when {self.run_dir} "
                    f"started ({len(ids)} vs {len(old)}; first difference near "
                    f"{next((a for a, b in zip(ids, old) if a != b), '?')!r}); the data files "
                    "changed — use another 'out' (or --force)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")

    def _build(self, info: dict[str, Any]) -> None:
        from deepmmsearch.agent.toolbox import Toolbox
        from deepmmsearch.prompts import get_prompts

        cfg, ctx = self.cfg, self.context
        policies: dict[str, Any] = {}

        def policy_for(spec: ComponentSpec, prompts: str) -> Any:
            key = json.dumps([spec.to_dict(), prompts], sort_keys=True, default=str)
            if key not in policies:
                policies[key] = POLICY.build(spec, prompts=get_prompts(prompts), **ctx)
            return policies[key]

        base_policy = policy_for(cfg.agent.policy, cfg.agent.prompts)
        self.toolbox = Toolbox.from_config(cfg.agent, policy=base_policy, **ctx)
        self.panel = JudgePanel.build(cfg.judges, official=cfg.official_scores,
                                      prompts=get_prompts(cfg.agent.prompts), **ctx)
        info["workflows"] = []
        for wf in cfg.workflows:
            prompts = wf.prompts or cfg.agent.prompts
            policy = policy_for(wf.policy or cfg.agent.policy, prompts)
            limits = cfg.limits_for(wf)
            for ds in cfg.datasets:
                tb = copy.copy(self.toolbox)
                if cfg.save_crops and cfg.agent.artifacts_dir is None:
                    tb.artifacts_dir = (self.run_dir / "artifacts" / store.safe_name(wf.name)
                                        / store.safe_name(ds.name))
                self.runtimes[(ds.name, wf.name)] = WorkflowRuntime(
                    wf.kind, wf.name, policy, tb, get_prompts(prompts), limits)
            info["workflows"].append({
                "label": wf.name, "kind": wf.kind, "model": model_label(wf, cfg.agent),
                "policy": (wf.policy or cfg.agent.policy).to_dict(), "prompts": prompts,
                "limits": asdict(limits), "baseline": wf.baseline})
        info["judges"] = self.panel.labels
        info["primary_judge"] = self.panel.primary

    # -- running -----------------------------------------------------------------------------

    async def _evaluate(self, ds: str, wf: str, sample: Sample) -> EvalRecord | None:
        rt = self.runtimes[(ds, wf)]
        meta = {**sample.metadata, "id": sample.id, "dataset": ds, "source": sample.source}
        error = None
        try:
            traj = await WORKFLOWS[rt.kind](rt, sample, meta)
        except ReplayMiss as exc:
            log.error("%s/%s/%s skipped: %s", ds, wf, sample.id, exc)
            self.skipped.append(f"{ds}/{wf}/{sample.id}")
            return None
        except Exception as exc:  # a bug in a workflow or backend: record it, keep going
            log.exception("%s/%s/%s: the workflow crashed", ds, wf, sample.id)
            error = f"{type(exc).__name__}: {exc}"
            traj = failed_trajectory(sample, rt.kind, error, meta)
        assert self.panel is not None
        try:
            grade = await self.panel.grade(sample, traj)
        except ReplayMiss as exc:
            log.error("%s/%s/%s skipped (judge): %s", ds, wf, sample.id, exc)
            self.skipped.append(f"{ds}/{wf}/{sample.id}")
            return None
        traj.verdict = grade.verdicts[self.panel.primary]
        return EvalRecord(
            sample_id=sample.id, dataset=ds, workflow=wf, trajectory=traj, verdicts=grade.verdicts,
            official=grade.official, official_metric=grade.official_metric,
            question_type=sample.question_type,
            category=sample.category, search_required=sample.search_required, error=error)

    async def run(self) -> RunResult:
        with store.locked_run_dir(self.run_dir):
            return await self._run()

    async def _run(self) -> RunResult:
        cfg = self.cfg
        info = self._prepare_dir()
        self._load_datasets(info)
        self._build(info)
        _seed_everything(cfg.seed)  # after the backends are built: seeds torch when one uses it
        store.write_json(self.run_dir / "run.json", info)
        files = {(d.name, w.name): store.ResultsFile.open(store.results_path(self.run_dir, d.name, w.name))
                 for d in cfg.datasets for w in cfg.workflows}
        jobs = [(d.name, w.name, s) for d in cfg.datasets for w in cfg.workflows
                for s in self.samples[d.name] if s.id not in files[(d.name, w.name)].done]
        total = sum(len(self.samples[d.name]) for d in cfg.datasets) * len(cfg.workflows)
        t0 = time.perf_counter()
        bar = _progress(total, total - len(jobs), cfg.progress, cfg.name)
        queue = iter(jobs)
        committer = store.Committer(files, on_commit=bar.update)
        writer = asyncio.create_task(committer.run())

        async def worker() -> None:
            for ds, wf, sample in queue:
                rec = await self._evaluate(ds, wf, sample)
                if rec is None:
                    bar.update(1)
                else:
                    committer.put((ds, wf), rec)

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, cfg.agent.concurrency))))
        finally:
            await committer.close()
            await writer
            new = committer.committed
            bar.close()
            for f in files.values():
                f.close()
            info["sessions"][-1].update(self._session_stats(new, time.perf_counter() - t0))
            store.write_json(self.run_dir / "run.json", info)
        records = [r for f in files.values() for r in f.records.values()]
        summary = summarise(records, info)
        store.write_json(self.run_dir / "summary.json", summary)
        if self.skipped:
            log.error("%d samples were skipped (replay-cache misses); run again in live mode to "
                      "fill them in", len(self.skipped))
        return RunResult(self.run_dir, records, new, list(self.skipped), summary)

    def _session_stats(self, new: int, seconds: float) -> dict[str, Any]:
        cache = getattr(self.toolbox, "cache", None)
        return {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "new_samples": new,
                "seconds": round(seconds, 3), "skipped": len(self.skipped),
                "tool_cache": None if cache is None else {"mode": cache.mode, "hits": cache.hits,
                                                          "misses": cache.misses},
                "judges": self.panel.counts() if self.panel else {}}


def summarise(records: list[EvalRecord], info: dict[str, Any]) -> dict[str, Any]:
    """summary.json: metrics per dataset x workflow and the judges' agreement."""
    judges = info.get("judges") or sorted({j for r in records for j in r.verdicts})
    cells = [{"dataset": ds, "workflow": wf, **cell_metrics(recs, judges).to_dict()}
             for (ds, wf), recs in group_cells(records).items()]
    return {"name": info.get("name"), "primary_judge": info.get("primary_judge"),
            "judges": judges, "cells": cells,
            "agreement": [a.to_dict() for a in agreement(records, judges)]}


def _progress(total: int, initial: int, enabled: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="sample",
                file=sys.stderr, dynamic_ncols=True)


def _seed_everything(seed: int) -> None:
    """Seed Python's ``random`` and, when a backend has loaded them, numpy and torch."""
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def run_eval(cfg: EvalConfig, *, out: str | Path | None = None, force: bool = False,
             context: dict[str, Any] | None = None) -> RunResult:
    """Run (or resume) an evaluation; see the module docstring."""
    return asyncio.run(Evaluation(cfg, out=out, force=force, context=context).run())


__all__ = ["DatasetSpec", "EvalConfig", "Evaluation", "RunResult", "WorkflowSpec", "run_eval"]
