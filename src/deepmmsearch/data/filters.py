"""Distillation filters and balanced sampling — pure functions over trajectories.

The paper's checks (§2, Fig. 2) on a teacher conversation, in order; the first that fails names
the reason a trajectory is dropped (:data:`FILTERS` lists them all, judge included):

- ``policy_error``: the teacher itself failed (network, rate limit ...);
- ``invalid_action``: some turn was not a valid ``<reason>`` + one action (check A);
- ``too_many_turns``: the conversation has ``max_turns`` turns or more (check B: fewer than 10);
- ``no_answer``: it did not end in ``<answer>`` (check C);
- ``gave_up``: the answer is the give-up sentence;
- ``bad_format``: the turn texts fail :func:`deepmmsearch.protocol.format_score` (for instance a
  second image search that the budget refused);
- ``judge_unparseable`` / ``judge_rejected``: the judge could not be read / did not accept.

A kept trajectory is *search-required* when the teacher ran at least one tool.
:func:`balanced_sample` draws the SFT set: ``search_ratio`` of it search-required, and within each
half uniformly over knowledge categories (water-filling: a category with too few items gives all
it has and the rest is shared by the others).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from deepmmsearch.protocol import format_score, is_give_up
from deepmmsearch.types import Record, Trajectory, Verdict

T = TypeVar("T")

FILTERS = ("policy_error", "invalid_action", "too_many_turns", "no_answer", "gave_up",
           "bad_format", "judge_unparseable", "judge_rejected")


def check_trajectory(traj: Trajectory, *, max_turns: int = 10, max_image_searches: int = 1,
                     max_tool_calls: int = 10) -> str | None:
    """The first failing check before the judge, or None when the trajectory passes them."""
    if traj.stop_reason == "policy_error":
        return "policy_error"
    if any(t.action.kind == "invalid" for t in traj.turns):
        return "invalid_action"
    if len(traj.turns) >= max_turns:
        return "too_many_turns"
    if traj.stop_reason != "answer" or not (traj.answer or "").strip():
        return "no_answer"
    if is_give_up(traj.answer):
        return "gave_up"
    if format_score(traj, max_image_searches=max_image_searches, max_tool_calls=max_tool_calls) < 1:
        return "bad_format"
    return None


def judge_failure(verdict: Verdict) -> str | None:
    if verdict.correct is None:
        return "judge_unparseable"
    return None if verdict.correct else "judge_rejected"


def search_required(traj: Trajectory) -> bool:
    """The teacher used at least one tool (a request the budget refused does not count)."""
    return len(traj.tool_calls) >= 1


def tool_pattern(traj: Trajectory) -> str:
    """``none``, ``text``, ``image`` or ``image+text``: which tools an episode used."""
    kinds = {c.kind for c in traj.tool_calls}
    if not kinds:
        return "none"
    if kinds == {"text_search"}:
        return "text"
    if kinds == {"image_search"}:
        return "image"
    return "image+text"


# ---------------------------------------------------------------------------------------------
# sampling


@dataclass
class SampleReport(Record):
    target: int
    search_ratio: float
    quota: dict[str, int] = field(default_factory=dict)  # {"search": n, "free": n}
    available: dict[str, int] = field(default_factory=dict)
    selected: dict[str, int] = field(default_factory=dict)
    shortfall: dict[str, int] = field(default_factory=dict)
    filled: int = 0  # items taken from the other half to reach the target (``fill``)


def uniform_over(items: Sequence[T], quota: int, category: Callable[[T], Any],
                 rng: random.Random, prefer: dict[str, int] | None = None) -> list[T]:
    """``quota`` items spread as evenly as possible over categories (water-filling). The last
    few items that cannot be spread evenly go to the categories with the fewest ``prefer``
    counts (how many the other half already took), so both halves together stay even."""
    by_cat: dict[str, list[T]] = defaultdict(list)
    for it in items:
        by_cat[str(category(it))].append(it)
    alloc = dict.fromkeys(sorted(by_cat), 0)
    remaining = min(quota, len(items))
    open_ = [c for c in alloc if by_cat[c]]
    while remaining > 0 and open_:
        share = remaining // len(open_)
        if share == 0:
            ranked = sorted(open_, key=lambda c: ((prefer or {}).get(c, 0) + alloc[c], rng.random()))
            for c in ranked[:remaining]:
                alloc[c] += 1
            break
        for c in open_:
            take = min(share, len(by_cat[c]) - alloc[c])
            alloc[c] += take
            remaining -= take
        open_ = [c for c in open_ if alloc[c] < len(by_cat[c])]
    out: list[T] = []
    for c, n in alloc.items():
        out += rng.sample(by_cat[c], n)
    return out


def balanced_sample(
    items: Sequence[T],
    target: int,
    *,
    search_ratio: float = 0.5,
    per_category: str = "uniform",
    seed: int = 0,
    fill: bool = False,
    is_search: Callable[[T], bool] = lambda x: bool(x.search_required),
    category: Callable[[T], Any] = lambda x: x.category,
) -> tuple[list[T], SampleReport]:
    """Draw ``target`` items: ``round(target · search_ratio)`` search-required, the rest
    search-free, each half ``uniform`` over categories (or ``random``). A half with too few items
    gives all it has; with ``fill`` the other half tops the set up to ``target``.
    Deterministic for a given ``seed`` and input order."""
    if not 0.0 <= search_ratio <= 1.0:
        raise ValueError(f"search_ratio must be in [0, 1], got {search_ratio}")
    if per_category not in ("uniform", "random"):
        raise ValueError(f"per_category must be 'uniform' or 'random', got {per_category!r}")
    rng = random.Random(seed)
    groups = {"search": [x for x in items if is_search(x)],
              "free": [x for x in items if not is_search(x)]}
    n_search = round(target * search_ratio)
    quota = {"search": n_search, "free": target - n_search}
    report = SampleReport(target, search_ratio, quota=quota,
                          available={k: len(v) for k, v in groups.items()})
    chosen: dict[str, list[T]] = {}
    taken: dict[str, int] = defaultdict(int)
    for name, group in groups.items():
        chosen[name] = _pick(group, quota[name], per_category, category, rng, taken)
        for x in chosen[name]:
            taken[str(category(x))] += 1
        report.shortfall[name] = quota[name] - len(chosen[name])
    if fill:
        for name, other in (("search", "free"), ("free", "search")):
            missing = report.shortfall[other]
            if missing > 0:
                used = set(map(id, chosen[name]))
                rest = [x for x in groups[name] if id(x) not in used]
                extra = _pick(rest, missing, per_category, category, rng, taken)
                chosen[name] += extra
                report.filled += len(extra)
    report.selected = {k: len(v) for k, v in chosen.items()}
    order = {id(x): i for i, x in enumerate(items)}
    out = sorted(chosen["search"] + chosen["free"], key=lambda x: order[id(x)])
    return out, report


def _pick(group: Sequence[T], n: int, per_category: str, category: Callable[[T], Any],
          rng: random.Random, taken: dict[str, int]) -> list[T]:
    if n <= 0:
        return []
    if per_category == "uniform":
        return uniform_over(group, n, category, rng, prefer=taken)
    return rng.sample(list(group), min(n, len(group)))
