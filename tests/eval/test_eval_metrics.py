"""Pure metrics: tool patterns, accuracy with unparseable verdicts, Cohen's kappa, agreement."""

from __future__ import annotations

import pytest

from deepmmsearch.eval.metrics import agreement, cell_metrics, cohen_kappa, tool_pattern
from deepmmsearch.eval.records import EvalRecord, all_tool_calls
from deepmmsearch.types import Action, ToolCall, Trajectory, Turn, Verdict


def _traj(calls: list[ToolCall], answer: str | None = "x", fixed: list[ToolCall] = ()) -> Trajectory:
    turns = [Turn(i, "t", Action(kind=c.kind, whole_image=c.whole_image), tool_call=c, n_tokens=10)
             for i, c in enumerate(calls)]
    turns.append(Turn(len(turns), "a", Action(kind="answer", argument=answer or ""), n_tokens=5))
    return Trajectory(id="s", question="q", image=None, turns=turns, answer=answer,
                      stop_reason="answer", wall_s=1.0,
                      metadata={"fixed_calls": [c.to_dict() for c in fixed]})


def _rec(sid: str, traj: Trajectory, **verdicts: bool | None) -> EvalRecord:
    return EvalRecord(sid, "D", "W", traj, {k: Verdict(v, k) for k, v in verdicts.items()})


IMG_CROP = ToolCall("image_search", "f", query="the bird")
IMG_WHOLE = ToolCall("image_search", "f", whole_image=True, cache_hit=True)
TXT = ToolCall("text_search", "f", query="q")
TXT_ERR = ToolCall("text_search", "f", query="q", error="HTTP 500")


def test_tool_patterns_and_fixed_calls():
    assert tool_pattern(_traj([])) == "none"
    assert tool_pattern(_traj([IMG_CROP])) == "image"
    assert tool_pattern(_traj([TXT, TXT])) == "text"
    assert tool_pattern(_traj([IMG_WHOLE, TXT])) == "image+text"
    # the RAG workflow's fixed image search counts as tool use
    rag = _traj([TXT], fixed=[IMG_WHOLE])
    assert [c.kind for c in all_tool_calls(rag)] == ["image_search", "text_search"]
    assert tool_pattern(rag) == "image+text"


def test_cell_metrics_counts_unparseable_apart():
    recs = [
        _rec("1", _traj([IMG_CROP, TXT]), a=True, b=True),
        _rec("2", _traj([IMG_WHOLE]), a=False, b=None),  # b could not parse its reply
        _rec("3", _traj([TXT, TXT_ERR]), a=True, b=False),
        _rec("4", _traj([], answer=None), a=False, b=False),
    ]
    m = cell_metrics(recs, ["a", "b"])
    assert m.n == 4
    assert m.accuracy("a") == pytest.approx(2 / 4)
    assert m.judges["b"].n_unparseable == 1 and m.judges["b"].n_graded == 3
    assert m.accuracy("b") == pytest.approx(1 / 3)  # the unparseable one is not a grade
    assert m.tool_use == {"none": 0.25, "image": 0.25, "text": 0.25, "image+text": 0.25}
    assert m.text_search_hist == {0: 2, 1: 1, 2: 1}
    assert (m.crop_searches, m.whole_searches, m.crop_requests) == (1, 1, 1)
    assert m.tool_calls == 5 and m.tool_errors == 1 and m.cache_hits == 1
    assert m.tokens == 5 * 10 + 4 * 5 and m.no_answer == 1
    assert m.mean_wall_s == pytest.approx(1.0)


def test_official_split_harmonic_mean():
    recs = []
    for i, (split, score) in enumerate([("unseen_question", 1.0), ("unseen_question", 0.0),
                                        ("unseen_entity", 0.25), ("unseen_entity", 0.25)]):
        t = _traj([])
        t.metadata["data_split"] = split
        r = _rec(str(i), t, a=True)
        r.official, r.official_metric = score, "infoseek"
        recs.append(r)
    m = cell_metrics(recs, ["a"])
    assert m.official == pytest.approx(0.375)
    assert m.official_splits == {"unseen_entity": 0.25, "unseen_question": 0.5}
    # InfoSeek's official final score: splits in % (50.0, 25.0), harmonic mean rounded: 33.33
    assert m.official_hmean == pytest.approx(0.3333)


def test_cohen_kappa_known_values():
    assert cohen_kappa([True, False, True, False], [True, False, True, False]) == 1.0
    assert cohen_kappa([True, True, False, False], [False, False, True, True]) == -1.0
    # 20 items: a 15 yes, b 10 yes, 10 agree-yes, 5 agree-no -> po .75, pe .5, kappa .5
    a = [True] * 15 + [False] * 5
    b = [True] * 10 + [False] * 5 + [False] * 5
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    assert cohen_kappa([True, True], [True, True]) is None  # chance agreement 1: undefined
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa([True], [])


def test_agreement_skips_unparseable_pairs():
    recs = [_rec("1", _traj([]), a=True, b=True), _rec("2", _traj([]), a=False, b=True),
            _rec("3", _traj([]), a=True, b=None), _rec("4", _traj([]), a=False, b=False)]
    (pair,) = agreement(recs, ["a", "b"])
    assert pair.n_both == 3
    assert pair.agreement == pytest.approx(2 / 3)
    assert (pair.a_only_correct, pair.b_only_correct) == (0, 1)
    assert pair.kappa == pytest.approx(cohen_kappa([True, False, False], [True, True, False]))
