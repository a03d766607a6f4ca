"""The paper's reward (§3.2): ``R = (1 − λ)·s + λ·s_fmt`` with λ = 0.1 — pure functions.

``s`` is correctness from a judge (1 when the judge accepts the final answer, else 0; an
unparseable verdict scores 0 and is counted separately), ``s_fmt`` is
:func:`deepmmsearch.protocol.format_score`. There is no tool-use term and no search penalty, as in
the paper; every component is returned so that training logs can show it.

>>> combine(1.0, 1.0)
1.0
>>> round(combine(1.0, 0.0), 3), round(combine(0.0, 1.0), 3)
(0.9, 0.1)
"""

from __future__ import annotations

from dataclasses import dataclass

from deepmmsearch.protocol import format_score, is_give_up
from deepmmsearch.types import Record, Trajectory, Verdict

FORMAT_WEIGHT = 0.1


def combine(correctness: float, fmt: float, format_weight: float = FORMAT_WEIGHT) -> float:
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"format_weight must be in [0, 1], got {format_weight}")
    return (1.0 - format_weight) * correctness + format_weight * fmt


@dataclass
class RewardBreakdown(Record):
    total: float
    correctness: float
    format: float
    judge: str
    unparseable: bool = False
    give_up: bool = False
    n_tool_calls: int = 0
    n_image_searches: int = 0
    n_text_searches: int = 0
    n_turns: int = 0
    stop_reason: str | None = None


def breakdown(
    trajectory: Trajectory,
    verdict: Verdict | None,
    *,
    format_weight: float = FORMAT_WEIGHT,
    max_image_searches: int = 1,
    max_tool_calls: int = 10,
) -> RewardBreakdown:
    """Score one finished trajectory given the judge's verdict on its answer (None: no answer)."""
    fmt = format_score(trajectory, max_image_searches=max_image_searches, max_tool_calls=max_tool_calls)
    correct = 1.0 if (verdict is not None and verdict.correct) else 0.0
    calls = trajectory.tool_calls
    return RewardBreakdown(
        total=combine(correct, fmt, format_weight),
        correctness=correct,
        format=fmt,
        judge=verdict.judge if verdict else "none",
        unparseable=verdict is not None and verdict.correct is None,
        give_up=is_give_up(trajectory.answer),
        n_tool_calls=len(calls),
        n_image_searches=sum(c.kind == "image_search" for c in calls),
        n_text_searches=sum(c.kind == "text_search" for c in calls),
        n_turns=len(trajectory.turns),
        stop_reason=trajectory.stop_reason,
    )
