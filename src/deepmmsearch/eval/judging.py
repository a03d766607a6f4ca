"""Grading one evaluated sample: every configured judge, plus the dataset's official score.

Judges come from the ``judge`` registry (:mod:`deepmmsearch.reward.judge`: ``rule``, ``llm``,
``fixture``); each has ``async judge(question, prediction, answers) -> Verdict``. The first judge
of a run is its *primary* judge (the Table 1 accuracy); the others are reported beside it with an
agreement report. A missing answer and the give-up answer are graded incorrect without asking a
judge. A judge that raises gives ``correct=None`` with the error in ``reason``: like an
unparseable reply, it is counted apart and never graded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deepmmsearch.protocol import is_give_up
from deepmmsearch.registry import JUDGE, ComponentSpec
from deepmmsearch.tools.cache import ReplayMiss
from deepmmsearch.types import Sample, Trajectory, Verdict

log = logging.getLogger(__name__)


def judge_label(spec: ComponentSpec, taken: Sequence[str] = ()) -> str:
    """A readable, unique label: the backend name, plus its model when it has one
    (``llm:gpt-4o``); a repeated label gets ``#2``, ``#3``..."""
    opts = dict(spec.options)
    policy = opts.get("policy")
    model = opts.get("model") or (policy.get("model") if isinstance(policy, dict) else None)
    base = f"{spec.name}:{model}" if model else spec.name
    label, i = base, 2
    while label in taken:
        label, i = f"{base}#{i}", i + 1
    return label


def judge_counts(judge: Any) -> dict[str, int]:
    """Requests a judge sent to its backend (``calls``) and verdicts its cache served
    (``cache_hits``), from the counters the judge keeps (``calls`` may be a count or a list of
    the requests). A rule judge has neither: it costs nothing."""
    calls = getattr(judge, "calls", 0)
    n = len(calls) if isinstance(calls, list) else int(calls) if isinstance(calls, int) else 0
    hits = getattr(judge, "cache_hits", 0)
    return {"calls": n, "cache_hits": int(hits) if isinstance(hits, int) else 0}


@dataclass
class Grade:
    verdicts: dict[str, Verdict]
    official: float | None = None
    official_metric: str | None = None


class JudgePanel:
    """The judges of a run, built once, graded concurrently for each sample."""

    def __init__(self, judges: dict[str, Any], *, official: bool = True) -> None:
        if not judges:
            raise ValueError("an evaluation needs at least one judge")
        self.judges = judges
        self.official = official

    @classmethod
    def build(cls, specs: Sequence[ComponentSpec], *, official: bool = True,
              **context: Any) -> JudgePanel:
        judges: dict[str, Any] = {}
        for spec in specs:
            judges[judge_label(spec, list(judges))] = JUDGE.build(spec, **context)
        return cls(judges, official=official)

    @property
    def labels(self) -> list[str]:
        return list(self.judges)

    @property
    def primary(self) -> str:
        return next(iter(self.judges))

    def counts(self) -> dict[str, dict[str, int]]:
        """Backend calls and cache hits of every judge so far (this process)."""
        return {label: judge_counts(j) for label, j in self.judges.items()}

    async def _one(self, label: str, judge: Any, question: str, prediction: str,
                   answers: list[str]) -> Verdict:
        try:
            verdict = await judge.judge(question, prediction, answers)
        except ReplayMiss:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing judge is an ungraded sample
            log.warning("judge %s failed: %s", label, exc)
            return Verdict(correct=None, judge=label, reason=f"judge error: {type(exc).__name__}: {exc}")
        verdict.judge = label
        return verdict

    async def grade(self, sample: Sample, traj: Trajectory) -> Grade:
        answer = traj.answer
        if not answer or is_give_up(answer):
            why = "no answer" if not answer else "gave up"
            verdicts = {lb: Verdict(correct=False, judge=lb, reason=why) for lb in self.judges}
        else:
            results = await asyncio.gather(*(
                self._one(lb, j, sample.question, answer, list(sample.answers))
                for lb, j in self.judges.items()))
            verdicts = dict(zip(self.judges, results))
        grade = Grade(verdicts)
        if self.official:
            grade.official, grade.official_metric = official_score(sample, answer)
        return grade


OFFICIAL_METRICS = {"okvqa": "vqa_accuracy", "aokvqa": "aokvqa_direct", "infoseek": "infoseek",
                    "evqa": "evqa_exact_match", "dynvqa": "token_recall", "fvqa": "exact_match",
                    "mmsearch": "end2end_f1", "docvqa": "anls", "infovqa": "anls", "ocrbench": "ocrbench_contains",
                    "mmbench": "circular_choice", "ai2d": "choice_accuracy",
                    "mathvista": "mathvista_rule"}


def official_score(sample: Sample, prediction: str | None) -> tuple[float | None, str | None]:
    """The dataset's own metric (VQA accuracy, InfoSeek's relaxed match...) in [0, 1], from
    :func:`deepmmsearch.data.scoring.official_score`; ``(None, None)`` when it has none."""
    from deepmmsearch.data.scoring import official_score as score_of

    score = score_of(sample, prediction)
    if score is None:
        return None, None
    return float(score), OFFICIAL_METRICS.get(sample.source, f"{sample.source}_official")
