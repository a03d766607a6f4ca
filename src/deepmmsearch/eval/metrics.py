"""Evaluation metrics — pure functions over :class:`~deepmmsearch.eval.records.EvalRecord` rows.

- accuracy per judge (an unparseable verdict, ``correct=None``, is counted apart and never graded);
- the official score's mean, when the dataset has one;
- tool use as in the paper's Figures 4 and 5: the share of samples using no tool, image search
  only, text search only, or both; the histogram of text searches per sample; cropped versus
  whole-image searches;
- cost and latency: tool calls, generated tokens, wall time per sample, cache hits, tool errors
  (judge calls are counted per run by the harness, in ``run.json``);
- agreement between judges: pairwise agreement, Cohen's kappa, unparseable counts.

>>> cohen_kappa([True, True, False, False], [True, True, False, True])
0.5
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from deepmmsearch.eval.records import EvalRecord, all_tool_calls
from deepmmsearch.protocol import is_give_up
from deepmmsearch.types import Record, Trajectory

TOOL_PATTERNS = ("none", "image", "text", "image+text")


def tool_pattern(traj: Trajectory) -> str:
    """Which tools an episode used: ``none``, ``image``, ``text`` or ``image+text``."""
    kinds = {c.kind for c in all_tool_calls(traj)}
    img, txt = "image_search" in kinds, "text_search" in kinds
    return "image+text" if img and txt else "image" if img else "text" if txt else "none"


def n_text_searches(traj: Trajectory) -> int:
    return sum(c.kind == "text_search" for c in all_tool_calls(traj))


def n_tokens(traj: Trajectory) -> int:
    """Tokens the policy generated (turns without a count are estimated at 4 characters a token)."""
    return sum(t.n_tokens if t.n_tokens is not None else max(1, len(t.model_text) // 4)
               for t in traj.turns)


@dataclass
class JudgeStats(Record):
    n_graded: int = 0  # parseable verdicts
    n_correct: int = 0
    n_unparseable: int = 0
    n_missing: int = 0  # no verdict at all from this judge
    score_sum: float = 0.0  # sum of graded verdicts' scores (MM-Vet's grader gives 0..1)

    @property
    def accuracy(self) -> float | None:
        return self.n_correct / self.n_graded if self.n_graded else None

    @property
    def mean_score(self) -> float | None:
        """The mean verdict score: MM-Vet's official number when graded with ``mode: mmvet``."""
        return self.score_sum / self.n_graded if self.n_graded else None


@dataclass
class CellMetrics(Record):
    """Everything reported for one dataset x workflow cell."""

    n: int = 0
    judges: dict[str, JudgeStats] = field(default_factory=dict)
    official: float | None = None  # mean official score over the samples that have one
    n_official: int = 0
    official_metric: str | None = None
    official_splits: dict[str, float] = field(default_factory=dict)  # per metadata data_split
    official_hmean: float | None = None  # harmonic mean over splits (InfoSeek's final score)
    tool_use: dict[str, float] = field(default_factory=dict)  # pattern -> share of samples
    text_search_hist: dict[int, int] = field(default_factory=dict)  # searches -> samples
    crop_searches: int = 0  # image searches run on a crop
    whole_searches: int = 0  # image searches run on the whole image
    crop_requests: int = 0  # image searches where the model asked for a crop
    tool_calls: int = 0
    tool_errors: int = 0
    cache_hits: int = 0
    tokens: int = 0
    mean_tokens: float = 0.0
    mean_tool_calls: float = 0.0
    mean_turns: float = 0.0
    mean_wall_s: float = 0.0
    p50_wall_s: float = 0.0
    p90_wall_s: float = 0.0
    total_wall_s: float = 0.0
    give_ups: int = 0
    no_answer: int = 0
    workflow_errors: int = 0
    stop_reasons: dict[str, int] = field(default_factory=dict)

    def accuracy(self, judge: str) -> float | None:
        s = self.judges.get(judge)
        return None if s is None else s.accuracy


def judge_stats(records: Sequence[EvalRecord], judge: str) -> JudgeStats:
    s = JudgeStats()
    for r in records:
        v = r.verdicts.get(judge)
        if v is None:
            s.n_missing += 1
        elif v.correct is None:
            s.n_unparseable += 1
        else:
            s.n_graded += 1
            s.n_correct += int(v.correct)
            s.score_sum += float(v.score if v.score is not None else v.correct)
    return s


def _quantile(xs: Sequence[float], q: float) -> float:
    if not xs:
        return 0.0
    ys = sorted(xs)
    pos = q * (len(ys) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ys) - 1)
    return ys[lo] + (ys[hi] - ys[lo]) * (pos - lo)


def cell_metrics(records: Sequence[EvalRecord], judges: Iterable[str]) -> CellMetrics:
    """The metrics of one dataset x workflow cell."""
    m = CellMetrics(n=len(records))
    m.judges = {j: judge_stats(records, j) for j in judges}
    if not records:
        return m
    official = [r.official for r in records if r.official is not None]
    if official:
        m.official, m.n_official = statistics.fmean(official), len(official)
        m.official_metric = next(r.official_metric for r in records if r.official is not None)
        m.official_splits, m.official_hmean = _split_scores(records)
        groups = _circular_groups(records)
        if groups:  # MMBench: a question passes only when every rotation of its options does
            m.official, m.n_official = statistics.fmean(groups), len(groups)
    patterns = Counter(tool_pattern(r.trajectory) for r in records)
    m.tool_use = {p: patterns[p] / len(records) for p in TOOL_PATTERNS}
    m.text_search_hist = dict(sorted(Counter(n_text_searches(r.trajectory) for r in records).items()))
    walls = [r.trajectory.wall_s for r in records]
    for r in records:
        calls = all_tool_calls(r.trajectory)
        m.tool_calls += len(calls)
        m.tool_errors += sum(c.error is not None for c in calls)
        m.cache_hits += sum(c.cache_hit for c in calls)
        for c in calls:
            if c.kind == "image_search":
                m.whole_searches += int(c.whole_image)
                m.crop_searches += int(not c.whole_image)
        m.crop_requests += sum(t.action.kind == "image_search" and not t.action.whole_image
                               for t in r.trajectory.turns)
        m.tokens += n_tokens(r.trajectory)
        m.give_ups += int(is_give_up(r.trajectory.answer))
        m.no_answer += int(not r.trajectory.answer)
        m.workflow_errors += int(r.error is not None)
    n = len(records)
    m.mean_tokens = m.tokens / n
    m.mean_tool_calls = m.tool_calls / n
    m.mean_turns = sum(len(r.trajectory.turns) for r in records) / n
    m.mean_wall_s = statistics.fmean(walls)
    m.p50_wall_s, m.p90_wall_s = _quantile(walls, 0.5), _quantile(walls, 0.9)
    m.total_wall_s = sum(walls)
    m.stop_reasons = dict(Counter(r.trajectory.stop_reason or "none" for r in records))
    return m


def _circular_groups(records: Sequence[EvalRecord]) -> list[float]:
    """Per ``circular_group`` (sample metadata), the worst official score of its members."""
    groups: dict[str, list[float]] = {}
    for r in records:
        group = r.trajectory.metadata.get("circular_group")
        if group is not None and r.official is not None:
            groups.setdefault(str(group), []).append(r.official)
    return [min(v) for v in groups.values()]


def _split_scores(records: Sequence[EvalRecord]) -> tuple[dict[str, float], float | None]:
    """Official scores per ``data_split`` and, for InfoSeek's two splits, the official final score
    (:func:`deepmmsearch.data.scoring.infoseek_final`: each split in % rounded to two decimals,
    then their harmonic mean, as a fraction here); other splits: their plain harmonic mean."""
    from deepmmsearch.data.scoring import INFOSEEK_SPLITS, infoseek_final

    splits: dict[str, list[float]] = {}
    for r in records:
        split = r.trajectory.metadata.get("data_split")
        if r.official is not None and split:
            splits.setdefault(str(split), []).append(r.official)
    means = {k: statistics.fmean(v) for k, v in sorted(splits.items())}
    if means and all(k.endswith(INFOSEEK_SPLITS) for k in means):
        by = {name: [x for k, v in splits.items() if k.endswith(name) for x in v]
              for name in INFOSEEK_SPLITS}
        return means, infoseek_final(by)["harmonic_mean"] / 100
    return means, (statistics.harmonic_mean(list(means.values())) if len(means) > 1 else None)


def group_cells(records: Iterable[EvalRecord]) -> dict[tuple[str, str], list[EvalRecord]]:
    """Records grouped by (dataset, workflow), in first-seen order."""
    out: dict[tuple[str, str], list[EvalRecord]] = {}
    for r in records:
        out.setdefault((r.dataset, r.workflow), []).append(r)
    return out


def accuracy_by(records: Sequence[EvalRecord], judge: str, attr: str) -> dict[str, JudgeStats]:
    """Judge accuracy broken down by a record attribute (``category``, ``search_required``...)."""
    groups: dict[str, list[EvalRecord]] = {}
    for r in records:
        groups.setdefault(str(getattr(r, attr)), []).append(r)
    return {k: judge_stats(v, judge) for k, v in sorted(groups.items())}


def mean_of(values: Iterable[float | None]) -> float | None:
    """Unweighted mean of the values that exist (the paper's Table 1 average)."""
    xs = [v for v in values if v is not None]
    return statistics.fmean(xs) if xs else None


# -- judge agreement ---------------------------------------------------------------------------


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two binary raters; None when it is undefined (both raters constant and
    equal, so chance agreement is 1)."""
    if len(a) != len(b):
        raise ValueError("raters must grade the same items")
    n = len(a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe >= 1.0:
        return None
    return (po - pe) / (1 - pe)


@dataclass
class PairAgreement(Record):
    judge_a: str
    judge_b: str
    n_both: int  # samples both judges graded (parseable)
    agreement: float | None
    kappa: float | None
    a_only_correct: int = 0  # a says correct, b says incorrect
    b_only_correct: int = 0


def agreement(records: Sequence[EvalRecord], judges: Sequence[str]) -> list[PairAgreement]:
    """Pairwise agreement of judges over the samples both graded."""
    out = []
    for ja, jb in combinations(judges, 2):
        pairs = [(r.correct(ja), r.correct(jb)) for r in records]
        both = [(x, y) for x, y in pairs if x is not None and y is not None]
        xs, ys = [bool(x) for x, _ in both], [bool(y) for _, y in both]
        out.append(PairAgreement(
            judge_a=ja, judge_b=jb, n_both=len(both),
            agreement=(sum(x == y for x, y in both) / len(both)) if both else None,
            kappa=cohen_kappa(xs, ys),
            a_only_correct=sum(x and not y for x, y in zip(xs, ys)),
            b_only_correct=sum(y and not x for x, y in zip(xs, ys)),
        ))
    return out
