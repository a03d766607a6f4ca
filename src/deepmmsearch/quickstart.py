"""The CPU quickstart: train a tiny DeepMMSearch-R1 on SimWeb, end to end (``make demo``).

::

    deepmmsearch quickstart --out runs/quickstart                # the full run, ≈ 10 min on 2 cores
    deepmmsearch quickstart --out /tmp/qs --reduced              # a couple of minutes (make test)
    deepmmsearch quickstart -c configs/quickstart/default.yaml sft.max_steps=400 grpo.trl.max_steps=10

It reads top to bottom like the recipe it runs; every stage is the real stage, run by the same
function as its own command, from a section of the config that has exactly the shape of that
command's config (``configs/distill``, ``configs/sft``, ``configs/grpo``, ``configs/eval``) —
the 7B recipe differs in sizes only. ``{out}`` and ``{world}`` in those sections are filled in.

1. **world** — build SimWeb (``deepmmsearch simweb build``): thousands of entities, scenes,
   questions with held-out test entities, the BM25 text index and the local image index.
2. **distill** — the expert teacher answers the training questions through the real tools; the
   trajectories that pass the filters become the SFT set (``deepmmsearch distill``).
3. **sft** — a byte-level BPE trained on those trajectories and a tiny Qwen2.5-VL from scratch,
   fully fine-tuned with TRL's ``SFTTrainer`` (``deepmmsearch sft``).
4. **grpo** — GRPO from the SFT checkpoint with multi-turn tool rollouts (``deepmmsearch grpo``).
5. **eval** — held-out test questions: direct answering, the RAG workflow, the prompted teacher
   agent, the SFT and GRPO agents, and the two ablations (crop search off, one text search)
   (``deepmmsearch eval``).
6. **report** — Table 1, tool-use figures, rendered trajectories (``deepmmsearch report``) and
   ``quickstart.md``: the stage timings and the goals, measured.

A stage whose outputs exist from an earlier run with the same settings (``stages/NAME.json``
records a hash of its config and of the stages before it) is skipped; ``--fresh`` redoes all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch.config import load_config, to_plain
from deepmmsearch.registry import ConfigError

log = logging.getLogger(__name__)

STAGE_ORDER = ("world", "distill", "sft", "grpo", "eval", "report")
_SECTIONS = ("distill", "sft", "grpo", "eval")  # sections that are whole stage configs


@dataclass(frozen=True, kw_only=True)
class WorldSpec:
    """How to build the SimWeb world (``deepmmsearch simweb build`` options)."""

    seed: int = 0
    size: str = "small"
    entities: int | None = None  # override the size's number of entities
    rounds: int | None = None  # questions per entity
    jobs: int | None = None  # drawing processes (default: up to 2)


@dataclass(frozen=True, kw_only=True)
class QuickstartConfig:
    """``stage: quickstart`` — see the module docstring and ``configs/quickstart/*.yaml``."""

    stage: str = "quickstart"
    out: str = "runs/quickstart"
    world: WorldSpec = field(default_factory=WorldSpec)
    distill: dict[str, Any] = field(default_factory=dict)  # a `stage: distill` config
    sft: dict[str, Any] = field(default_factory=dict)  # a `stage: sft` config
    grpo: dict[str, Any] = field(default_factory=dict)  # a `stage: grpo` config
    eval: dict[str, Any] = field(default_factory=dict)  # a `stage: eval` config
    # torch threads for every stage: "auto" takes 2 when two CPUs are idle (1.76x faster SFT steps
    # on an idle 2-core machine), else 1 (2 threads collapse 10-40x when anything else runs)
    torch_threads: int | str = "auto"
    examples: int = 4  # trajectories rendered per workflow group in the report

    def __post_init__(self) -> None:
        if self.stage != "quickstart":
            raise ConfigError(f"a quickstart config needs stage: quickstart, got {self.stage!r}")
        if self.torch_threads != "auto" and not (isinstance(self.torch_threads, int)
                                                 and self.torch_threads >= 1):
            raise ConfigError(f"torch_threads must be 'auto' or >= 1, got {self.torch_threads!r}")
        for name in _SECTIONS:
            if not getattr(self, name):
                raise ConfigError(f"quickstart: the {name!r} section is missing")
            self.stage_config(name)  # validated now, before anything runs

    @property
    def world_dir(self) -> Path:
        return Path(self.out) / "world"

    def stage_config(self, name: str) -> Any:
        """The section ``name`` as its stage's validated config, paths filled in."""
        data = _fill(getattr(self, name), {"{out}": str(Path(self.out)), "{world}": str(self.world_dir)})
        try:
            return load_config(data={"stage": name, **data}, expect=name)
        except ConfigError as exc:
            raise ConfigError(f"quickstart.{name}: {exc}") from None


def _fill(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, rep in subs.items():
            value = value.replace(key, rep)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, subs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fill(v, subs) for v in value]
    return value


# -- bookkeeping: stage timings and skipping ------------------------------------------------


@dataclass
class StageRecord:
    name: str
    key: str  # hash of this stage's settings and of the stages before it
    wall_s: float = 0.0
    cpu_s: float = 0.0
    skipped: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the world's drawing workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Pipeline:
    """Runs the stages in order, timing each and skipping those already done."""

    def __init__(self, cfg: QuickstartConfig, *, fresh: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.fresh = fresh
        self.records: list[StageRecord] = []
        self.started = time.perf_counter()
        self.threads: int | None = None  # torch threads chosen for the stages after the world
        self._chain = hashlib.sha256(b"quickstart-1")

    def _key(self, name: str, settings: Any) -> str:
        self._chain.update(json.dumps([name, to_plain(settings)], sort_keys=True, default=str).encode())
        return self._chain.hexdigest()[:16]

    def run_stage(self, name: str, settings: Any, done: Callable[[], bool],
                  body: Callable[[], dict[str, Any]]) -> StageRecord:
        key = self._key(name, settings)
        marker = self.out / "stages" / f"{name}.json"
        i = STAGE_ORDER.index(name) + 1
        if not self.fresh and marker.exists() and done():
            old = json.loads(marker.read_text(encoding="utf-8"))
            if old.get("key") == key:
                rec = StageRecord(name, key, skipped=True, info=old.get("info", {}))
                log.info("[%d/%d] %s: already done (%s), skipped", i, len(STAGE_ORDER), name, marker)
                self.records.append(rec)
                return rec
        log.info("[%d/%d] %s ...", i, len(STAGE_ORDER), name)
        w0, c0 = time.perf_counter(), _cpu_s()
        info = body()
        rec = StageRecord(name, key, time.perf_counter() - w0, _cpu_s() - c0, info=info)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"key": key, "wall_s": rec.wall_s, "cpu_s": rec.cpu_s,
                                      "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                      "info": info}, indent=2, default=str), encoding="utf-8")
        log.info("[%d/%d] %s done in %.1f s (CPU %.1f s, load average %.1f)", i, len(STAGE_ORDER),
                 name, rec.wall_s, rec.cpu_s, os.getloadavg()[0])
        self.records.append(rec)
        return rec


# -- the stages -----------------------------------------------------------------------------


def build_world_stage(cfg: QuickstartConfig) -> dict[str, Any]:
    """1. SimWeb (before torch is imported: the drawing workers fork)."""
    import sys

    from deepmmsearch.simweb.build import build_world

    w = cfg.world
    manifest = build_world(cfg.world_dir, seed=w.seed, size=w.size, entities=w.entities,
                           rounds=w.rounds, overwrite=cfg.world_dir.exists(), jobs=w.jobs,
                           progress=sys.stderr.isatty())
    return {"counts": manifest["counts"]}


def distill_stage(cfg: QuickstartConfig) -> dict[str, Any]:
    """2. Expert trajectories on the training questions → the SFT set."""
    import sys

    from deepmmsearch.data.distill import run_distill

    dcfg = cfg.stage_config("distill")
    shutil.rmtree(dcfg.out_dir, ignore_errors=True)  # a fresh journal: the world was rebuilt
    res = run_distill(dcfg, progress=sys.stderr.isatty())
    log.info("distill: %d episodes, %d passed the filters, %d selected (%s)", res.ran, res.passed,
             res.selected, res.paths.get("jsonl"))
    return {"episodes": res.ran, "passed": res.passed, "selected": res.selected,
            "sft_jsonl": res.paths.get("jsonl")}


def sft_stage(cfg: QuickstartConfig) -> dict[str, Any]:
    """3. Tokenizer + tiny Qwen2.5-VL from scratch, full fine-tuning."""
    from deepmmsearch.train.sft import run_sft

    scfg = cfg.stage_config("sft")
    shutil.rmtree(scfg.out, ignore_errors=True)
    res = run_sft(scfg)
    return {k: res.summary.get(k) for k in ("steps", "train_loss", "examples", "wall_s",
                                            "trainable_parameters", "model_dir")}


def grpo_stage(cfg: QuickstartConfig) -> dict[str, Any]:
    """4. GRPO from the SFT checkpoint, with multi-turn tool rollouts."""
    from deepmmsearch.train.grpo import run_grpo

    gcfg = cfg.stage_config("grpo")
    shutil.rmtree(gcfg.out, ignore_errors=True)
    return dict(run_grpo(gcfg))


def eval_stage(cfg: QuickstartConfig) -> dict[str, Any]:
    """5. Every workflow on the held-out test questions."""
    from deepmmsearch.eval.harness import run_eval

    ecfg = cfg.stage_config("eval")
    shutil.rmtree(ecfg.out, ignore_errors=True)
    res = run_eval(ecfg)
    return {"run_dir": str(res.run_dir), "samples": len(res.records), "skipped": len(res.skipped)}


def report_stage(cfg: QuickstartConfig, pipe: Pipeline) -> dict[str, Any]:
    """6. Table 1, figures, trajectories, and the quickstart summary with its goals."""
    from deepmmsearch.eval.report import write_report
    from deepmmsearch.quickstart_summary import write_summary

    ecfg = cfg.stage_config("eval")
    report = write_report([ecfg.out], Path(cfg.out) / "report", examples=cfg.examples)
    summary = write_summary(cfg, pipe.records, report, time.perf_counter() - pipe.started,
                            threads=pipe.threads)
    return {"report": str(report / "report.md"), "summary": str(summary)}


def run_quickstart(cfg: QuickstartConfig, *, fresh: bool = False) -> Pipeline:
    """Run every stage (see the module docstring); returns the pipeline with its stage records."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    from deepmmsearch.config import dump_config

    dump_config(cfg, out / "config.yaml")
    pipe = Pipeline(cfg, fresh=fresh)
    pipe.run_stage("world", cfg.world, lambda: (cfg.world_dir / "world.json").exists(),
                   lambda: build_world_stage(cfg))
    pipe.threads = _set_threads(cfg.torch_threads)  # after the world: its drawing workers fork
    dcfg, scfg, gcfg, ecfg = (cfg.stage_config(n) for n in _SECTIONS)
    pipe.run_stage("distill", dcfg, lambda: Path(dcfg.sft_dir or dcfg.out_dir, "sft.jsonl").exists(),
                   lambda: distill_stage(cfg))
    pipe.run_stage("sft", scfg, lambda: (Path(scfg.out) / "model" / "config.json").exists(),
                   lambda: sft_stage(cfg))
    pipe.run_stage("grpo", gcfg, lambda: (Path(gcfg.out) / "model" / "config.json").exists(),
                   lambda: grpo_stage(cfg))
    pipe.run_stage("eval", ecfg, lambda: (Path(ecfg.out) / "summary.json").exists(),
                   lambda: eval_stage(cfg))
    pipe.run_stage("report", {"examples": cfg.examples}, lambda: False,
                   lambda: report_stage(cfg, pipe))
    log.info("quickstart finished in %.1f s", time.perf_counter() - pipe.started)
    return pipe


def idle_cpus(window_s: float = 0.5) -> float:
    """How many CPUs sat idle over a short window (``/proc/stat``; else from the load average)."""
    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as fh:
                vals = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        return vals[3] + (vals[4] if len(vals) > 4 else 0), sum(vals)  # idle + iowait, total

    n = os.cpu_count() or 1
    a = sample()
    time.sleep(window_s)
    b = sample()
    if a is None or b is None or b[1] == a[1]:
        return max(0.0, n - os.getloadavg()[0])
    return n * (b[0] - a[0]) / (b[1] - a[1])


def choose_threads(setting: int | str) -> int:
    """``auto``: 2 threads when at least 1.6 CPUs are idle, else 1 (see QuickstartConfig)."""
    if setting != "auto":
        return int(setting)
    idle = idle_cpus()
    n = 2 if idle >= 1.6 and (os.cpu_count() or 1) >= 2 else 1
    log.info("torch threads: %d (%.1f of %d CPUs idle)", n, idle, os.cpu_count() or 1)
    return n


def _set_threads(setting: int | str) -> int:
    import torch

    n = choose_threads(setting)
    torch.set_num_threads(n)
    return n
