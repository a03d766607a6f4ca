"""Results files: append-only, fsync'd rows; a torn last line is cut off on resume."""

from __future__ import annotations

import pytest

from deepmmsearch.eval.records import EvalRecord
from deepmmsearch.eval.store import ResultsFile, read_results, safe_name
from deepmmsearch.types import Trajectory, Verdict


def _rec(sid: str) -> EvalRecord:
    traj = Trajectory(id=sid, question="q?", image=None, answer="a", stop_reason="answer")
    return EvalRecord(sid, "D", "W", traj, {"rule": Verdict(True, "rule")})


def test_append_and_reopen(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResultsFile.open(path) as f:
        f.append(_rec("a"))
        f.append(_rec("b"))
        with pytest.raises(ValueError, match="already recorded"):
            f.append(_rec("a"))
    with ResultsFile.open(path) as f:
        assert f.done == {"a", "b"}
        assert f.records["a"].verdicts["rule"].correct is True
        f.append(_rec("c"))
    assert [r.sample_id for r in read_results(path)] == ["a", "b", "c"]


def test_torn_last_line_is_cut_and_redone(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResultsFile.open(path) as f:
        f.append(_rec("a"))
    line = _rec("b").to_json()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line[: len(line) // 2])  # killed mid-write
    assert [r.sample_id for r in read_results(path)] == ["a"]
    with ResultsFile.open(path) as f:
        assert f.done == {"a"}
        f.append(_rec("b"))
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") == 2 and [r.sample_id for r in read_results(path)] == ["a", "b"]


def test_complete_row_without_newline_is_kept(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(_rec("a").to_json(), encoding="utf-8")
    with ResultsFile.open(path) as f:
        assert f.done == {"a"}
        f.append(_rec("b"))
    assert [r.sample_id for r in read_results(path)] == ["a", "b"]


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(_rec("a").to_json() + "\n{oops\n" + _rec("b").to_json() + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2: not a results row"):
        read_results(path)


def test_safe_name():
    assert safe_name("E-VQA / test") == "E-VQA-test"
    assert safe_name("///") == "x"
