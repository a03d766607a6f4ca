"""Per-step GRPO metrics: what the rollouts did, where the step's time went, and the log files.

:class:`StepStats` collects one rollout's numbers, :class:`Timeline` the wall-clock intervals of
generation and tool calls (they overlap: the episodes' tool calls run on the event loop while a
generation batch runs in a worker thread), :class:`MetricsLog` (a ``TrainerCallback``) merges
them with TRL's numbers into one JSON row per step in ``metrics.jsonl`` and writes the step's
trajectories to ``rollouts.jsonl``; :func:`plot_rewards` draws ``reward.png``.

Time split of a step (all wall-clock seconds; ``time/step_s`` is the whole optimizer step):

- ``time/generation_s``: inside the policy's generate calls (batches run one after another);
- ``time/tools_s``: at least one tool call in flight; ``time/tools_exposed_s`` is the part of it
  when no generation ran (what the tools add to the step beyond generation);
- ``time/rollout_other_s``: the rest of the rollout (encoding, scheduling);
- ``time/rollout_s`` = generation + tools_exposed + rollout_other;
- ``time/judge_s``: the correctness reward (judge calls, run concurrently);
- ``time/optimisation_s``: the rest of the step — TRL's forward passes for the old and reference
  log-probs, the loss, backward and the optimizer step.

A step that reuses an earlier generation batch (``steps_per_generation`` > 1) reports zero
rollout and judge time; its ``rollout/*`` numbers describe the batch it trains on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepmmsearch import jsontext

log = logging.getLogger(__name__)


class Timeline:
    """Wall-clock intervals per label (thread-safe); unions and overlaps of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.intervals: dict[str, list[tuple[float, float]]] = {}

    def add(self, label: str, start: float, end: float) -> None:
        with self._lock:
            self.intervals.setdefault(label, []).append((start, end))

    @contextlib.contextmanager
    def timed(self, label: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(label, t0, time.perf_counter())

    def busy(self, *labels: str) -> float:
        """Seconds during which at least one interval of any of ``labels`` was open."""
        spans = sorted(iv for lb in labels for iv in self.intervals.get(lb, []))
        total, cur_s, cur_e = 0.0, None, None
        for s, e in spans:
            if cur_e is None or s > cur_e:
                if cur_e is not None:
                    total += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_e is not None:
            total += cur_e - cur_s
        return total

    def only(self, label: str, *others: str) -> float:
        """Seconds with ``label`` busy and none of ``others``."""
        return self.busy(label, *others) - self.busy(*others)


@dataclass
class StepStats:
    """What one rollout call saw (logged with the step)."""

    episodes: int = 0
    rollout_s: float = 0.0
    judge_s: float = 0.0
    tool_calls: int = 0
    image_searches: int = 0
    crop_searches: int = 0
    text_searches: int = 0
    tool_errors: int = 0
    turns: int = 0
    model_tokens: int = 0
    injected_tokens: int = 0
    truncated: int = 0
    answered: int = 0
    format_ok: int = 0
    correct: int = 0
    stop_reasons: Counter = field(default_factory=Counter)
    timeline: Timeline = field(default_factory=Timeline)

    def row(self) -> dict[str, float]:
        n = max(1, self.episodes)
        out = {
            "rollout/episodes": self.episodes,
            "rollout/tool_calls": self.tool_calls / n,
            "rollout/image_searches": self.image_searches / n,
            "rollout/crop_searches": self.crop_searches / n,
            "rollout/text_searches": self.text_searches / n,
            "rollout/tool_error_rate": self.tool_errors / max(1, self.tool_calls),
            "rollout/turns": self.turns / n,
            "rollout/model_tokens": self.model_tokens / n,
            "rollout/injected_tokens": self.injected_tokens / n,
            "rollout/truncated": self.truncated / n,
            "rollout/answer_rate": self.answered / n,
            "rollout/format_rate": self.format_ok / n,
            "rollout/accuracy": self.correct / n,
        }
        for reason, k in self.stop_reasons.items():
            out[f"rollout/stop_{reason}"] = k / n
        return out

    def times(self) -> dict[str, float]:
        tl = self.timeline
        gen = tl.busy("generation")
        exposed = tl.only("tools", "generation")
        return {
            "time/generation_s": gen,
            "time/tools_s": tl.busy("tools"),
            "time/tools_exposed_s": exposed,
            "time/rollout_other_s": max(0.0, self.rollout_s - gen - exposed),
            "time/rollout_s": self.rollout_s,
            "time/judge_s": self.judge_s,
        }


def _callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


class MetricsLog(_callback_base()):  # type: ignore[misc]
    """Writes one JSON row per logged step: TRL's metrics merged with the rollout's.

    ``run`` is the :class:`~deepmmsearch.train.grpo_trainer.GRPORun`: its ``stats`` (the latest
    rollout), ``rollouts_done`` (a counter), ``history`` (rows are appended), ``cfg``.
    """

    def __init__(self, run: Any, path: Path) -> None:
        self.run, self.path = run, path
        self._t_step = time.perf_counter()
        self._rollouts_at_begin = 0
        self._step_times: dict[str, float] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
        self._rollouts = open(path.parent / "rollouts.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def on_step_begin(self, args, state, control, **kwargs):
        self._t_step = time.perf_counter()
        self._rollouts_at_begin = self.run.rollouts_done

    def on_step_end(self, args, state, control, **kwargs):
        step_s = time.perf_counter() - self._t_step
        fresh = self.run.rollouts_done > self._rollouts_at_begin
        st = self.run.stats
        times = st.times() if fresh else {k: 0.0 for k in st.times()}
        times["time/step_s"] = step_s
        times["time/optimisation_s"] = max(0.0, step_s - times["time/rollout_s"] - times["time/judge_s"])
        self._step_times = times
        if fresh:
            self._write_rollouts(state.global_step)

    def _write_rollouts(self, step: int) -> None:
        every = max(1, self.run.cfg.rollout_log_every)
        trajs = getattr(self.run, "_last_trajs", None)
        if not trajs or step % every:
            return
        verdicts = getattr(self.run, "_last_verdicts", None) or []
        for i, t in enumerate(trajs):
            row = t.to_dict()
            row["step"] = step
            if i < len(verdicts):
                row["verdict"] = verdicts[i].to_dict()
            self._rollouts.write(jsontext.dumps(row) + "\n")
        self._rollouts.flush()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs and "reward" not in logs:
            return
        row = {"step": state.global_step, **{k: v for k, v in logs.items() if _scalar(v)}}
        row.update(self.run.stats.row())
        row.update(self._step_times)
        self.run.history.append(row)
        self._fh.write(jsontext.dumps(row) + "\n")
        self._fh.flush()
        log.info("step %d: reward %.3f acc %.2f format %.2f tools %.2f kl %s", row["step"],
                 row.get("reward", float("nan")), row["rollout/accuracy"], row["rollout/format_rate"],
                 row["rollout/tool_calls"], row.get("kl"))

    def on_train_end(self, args, state, control, **kwargs):
        self._fh.close()
        self._rollouts.close()


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def plot_rewards(history: list[dict[str, Any]], path: Path) -> None:
    """``reward.png``: reward and accuracy per step, and tool calls per episode."""
    points = [(r["step"], r.get("reward"), r.get("rollout/accuracy"), r.get("rollout/tool_calls"))
              for r in history if r.get("reward") is not None]
    if len(points) < 2:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    steps = [p[0] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].plot(steps, [p[1] for p in points], label="reward")
    axes[0].plot(steps, [p[2] for p in points], label="accuracy")
    axes[0].set_xlabel("step")
    axes[0].legend()
    axes[1].plot(steps, [p[3] for p in points])
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("tool calls / episode")
    fig.suptitle("GRPO")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
