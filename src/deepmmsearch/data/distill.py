"""Distillation of DeepMMSearchVQA-style SFT data from a teacher (paper §2, Fig. 2).

``deepmmsearch distill --config configs/distill/simweb_small.yaml`` runs, for every sample of a
source dataset, the teacher agent (any Policy — an OpenAI-compatible model in the role of the
paper's Gemini, or SimWeb's privileged ``simweb-expert`` — with the configured tools and budgets)
through the shared episode loop, then:

1. keeps the conversations that pass the paper's checks (a valid action every turn, fewer than
   ``max_turns`` turns, ending in an answer; see :mod:`deepmmsearch.data.filters`) and whose
   answer the judge accepts;
2. labels each kept question with a knowledge category (:mod:`deepmmsearch.data.taxonomy`);
   search-required = the teacher ran at least one tool;
3. samples ``target_size`` of them, ``search_ratio`` search-required (0.5 in the paper) and
   uniformly over categories;
4. writes the SFT set (``sft.jsonl`` + ``sft.parquet``, :mod:`deepmmsearch.data.export`), the
   chosen ids, and a statistics report (``stats.md``, ``stats.json``, ``stats.png``).

Resumable: every finished episode is one fsync'd line of ``{out_dir}/episodes.jsonl``
(:class:`~deepmmsearch.data.journal.Journal`); an interrupted run (even ``kill -9``) restarted
with the same config redoes only the unfinished samples and duplicates nothing. Steps 3–4 read
only the journal, so a sampling ablation (another ``search_ratio``) costs no teacher call: rerun
with the same ``out_dir`` and another ``sft_dir``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.config import AgentConfig, dump_config
from deepmmsearch.data.filters import (
    balanced_sample,
    check_trajectory,
    judge_failure,
    search_required,
    tool_pattern,
)
from deepmmsearch.data.journal import Journal
from deepmmsearch.data.taxonomy import TaxonomyConfig, build_labeller
from deepmmsearch.registry import ComponentSpec, ConfigError
from deepmmsearch.types import Record, Sample, Trajectory

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """``stage: distill`` — see the module docstring and ``configs/distill/*.yaml``."""

    stage: str = "distill"
    dataset: ComponentSpec  # the source questions, e.g. {name: infoseek, path: ..., limit: 200000}
    teacher: AgentConfig = field(default_factory=AgentConfig)  # teacher policy + tools + budgets
    judge: ComponentSpec = field(default_factory=lambda: ComponentSpec("rule"))
    taxonomy: TaxonomyConfig = field(default_factory=TaxonomyConfig)
    target_size: int = 10000
    search_ratio: float = 0.5  # share of search-required conversations in the SFT set
    per_category: str = "uniform"  # uniform | random (the paper's sampling ablation)
    fill: bool = False  # top a short half up from the other half (breaks the ratio)
    max_turns: int = 10  # check B: keep conversations with fewer turns than this
    out_dir: str = "runs/distill"  # journal of every episode (resume point)
    sft_dir: str | None = None  # sampled SFT set and report (default: out_dir)
    images: str = "path"  # SFT parquet images: path | bytes
    parquet: bool = True
    concurrency: int | None = None  # episodes at once (default: teacher.concurrency)
    chunk_size: int = 256  # episodes started per batch (bounds memory on big sources)
    fsync_interval_s: float = 0.0  # journal: 0 = fsync every episode; >0 = at most this often
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.search_ratio <= 1.0:
            raise ConfigError(f"search_ratio must be in [0, 1], got {self.search_ratio}")
        if self.per_category not in ("uniform", "random"):
            raise ConfigError(f"per_category must be uniform or random, got {self.per_category!r}")
        if self.images not in ("path", "bytes"):
            raise ConfigError(f"images must be path or bytes, got {self.images!r}")
        if self.target_size < 0 or self.max_turns < 1 or self.chunk_size < 1:
            raise ConfigError("target_size must be >= 0, max_turns and chunk_size >= 1")
        if self.fsync_interval_s < 0:
            raise ConfigError("fsync_interval_s must be >= 0")


@dataclass
class DistillResult(Record):
    out_dir: str
    sft_dir: str
    samples: int  # source samples
    ran: int  # episodes run by this invocation
    resumed: int  # episodes found finished in the journal
    passed: int  # episodes passing every filter (the pool)
    selected: int
    paths: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


def _meta(sample: Sample) -> dict[str, Any]:
    return {**sample.metadata, "id": sample.id, "source": sample.source,
            "category": sample.category, "answers": list(sample.answers)}


class _Finisher:
    """Checks, judges and labels one finished episode, then journals it (fsync'd)."""

    def __init__(self, cfg: DistillConfig, journal: Journal, judge: Any, labeller: Any,
                 samples: dict[str, Sample], bar: Any) -> None:
        self.cfg, self.journal, self.judge, self.labeller = cfg, journal, judge, labeller
        self.samples, self.bar = samples, bar
        lim = cfg.teacher.limits
        self.limits = {"max_image_searches": lim.max_image_searches, "max_tool_calls": lim.max_tool_calls}
        self.ran = 0

    async def __call__(self, traj: Trajectory) -> None:
        sample = self.samples[traj.id]
        failed = check_trajectory(traj, max_turns=self.cfg.max_turns, **self.limits)
        verdict = None
        if failed is None:
            verdict = await self.judge.judge(sample.question, traj.answer, sample.answers)
            traj.verdict = verdict
            failed = judge_failure(verdict)
        category, how = (None, None)
        if failed is None:
            category, how = await self.labeller.label(sample)
        self.journal.append(sample.id, {
            "failed": failed, "category": category, "category_how": how,
            "search_required": search_required(traj), "tool_pattern": tool_pattern(traj),
            "n_turns": len(traj.turns), "n_tool_calls": len(traj.tool_calls),
            "verdict": verdict.to_dict() if verdict else None,
            "sample": sample.to_dict(), "trajectory": traj.to_dict(),
        })
        self.ran += 1
        if self.bar is not None:
            self.bar.update(1)


async def run_teacher(cfg: DistillConfig, samples: list[Sample], journal: Journal, *,
                      policy: Any = None, judge: Any = None, label_policy: Any = None,
                      progress: bool = True, **context: Any) -> int:
    """Run the teacher on every sample not yet in ``journal``; returns how many ran."""
    from tqdm import tqdm

    from deepmmsearch.agent.loop import run_episodes
    from deepmmsearch.agent.runtime import build_agent
    from deepmmsearch.registry import JUDGE

    todo = [s for s in samples if s.id not in journal]
    log.info("distill: %d samples, %d already done, %d to run", len(samples),
             len(samples) - len(todo), len(todo))
    if not todo:
        return 0
    agent = build_agent(cfg.teacher, policy=policy, **context)
    judge = judge if judge is not None else JUDGE.build(cfg.judge, prompts=agent.prompts, **context)
    labeller = build_labeller(cfg.taxonomy, prompts=agent.prompts, policy=label_policy)
    bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc="distill",
               unit="ep", disable=not progress)
    finish = _Finisher(cfg, journal, judge, labeller, {s.id: s for s in todo}, bar)
    concurrency = cfg.concurrency or cfg.teacher.concurrency
    try:
        for start in range(0, len(todo), cfg.chunk_size):
            chunk = todo[start:start + cfg.chunk_size]
            episodes = [agent.episode(s.question, s.image, episode_id=s.id, gold=s.answers,
                                      metadata=_meta(s)) for s in chunk]
            await run_episodes(episodes, agent.policy, agent.toolbox, concurrency=concurrency,
                               on_done=finish)
    finally:
        bar.close()
    return finish.ran


def select_and_write(cfg: DistillConfig, samples: list[Sample], journal: Journal) -> DistillResult:
    """Sample the SFT set from the journal and write it with its statistics (no teacher call)."""
    from deepmmsearch.data.export import sft_row, write_sft
    from deepmmsearch.data.stats import distill_stats, write_stats

    records = [journal.records[s.id] for s in samples if s.id in journal]
    pool = [r for r in records if r["failed"] is None]
    chosen, report = balanced_sample(
        pool, cfg.target_size, search_ratio=cfg.search_ratio, per_category=cfg.per_category,
        seed=cfg.seed, fill=cfg.fill, is_search=lambda r: bool(r["search_required"]),
        category=lambda r: r["category"])
    sft_dir = Path(cfg.sft_dir or cfg.out_dir)
    sft_dir.mkdir(parents=True, exist_ok=True)
    rows = [sft_row(Trajectory.from_dict(r["trajectory"]), Sample.from_dict(r["sample"]),
                    r["category"]) for r in chosen]
    paths = write_sft(rows, sft_dir, images=cfg.images, parquet=cfg.parquet)
    (sft_dir / "selected_ids.txt").write_text("".join(f"{r['id']}\n" for r in chosen), encoding="utf-8")
    stats = distill_stats(records, chosen, report, n_samples=len(samples),
                          search_ratio=cfg.search_ratio, target=cfg.target_size)
    paths.update(write_stats(stats, sft_dir))
    paths["selected_ids"] = str(sft_dir / "selected_ids.txt")
    return DistillResult(out_dir=str(cfg.out_dir), sft_dir=str(sft_dir), samples=len(samples),
                         ran=0, resumed=len(records), passed=len(pool), selected=len(chosen),
                         paths=paths, stats=stats)


async def distill(cfg: DistillConfig, *, policy: Any = None, judge: Any = None,
                  label_policy: Any = None, samples: list[Sample] | None = None,
                  run: bool = True, progress: bool = True, **context: Any) -> DistillResult:
    """The whole pipeline (see the module docstring). ``policy`` / ``judge`` / ``label_policy``
    objects override the configured ones; ``run=False`` only re-samples and re-reports."""
    from deepmmsearch.registry import DATASET

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    if samples is None:
        data = DATASET.build(cfg.dataset, **context)
        samples = data.samples
    with Journal(out / "episodes.jsonl", fsync_interval_s=cfg.fsync_interval_s) as journal:
        before = sum(s.id in journal for s in samples)
        ran = 0
        if run:
            ran = await run_teacher(cfg, samples, journal, policy=policy, judge=judge,
                                    label_policy=label_policy, progress=progress, **context)
        result = select_and_write(cfg, samples, journal)
    result.ran, result.resumed = ran, before
    return result


def run_distill(cfg: DistillConfig, **kwargs: Any) -> DistillResult:
    """Synchronous entry point (the CLI's)."""
    return asyncio.run(distill(cfg, **kwargs))
