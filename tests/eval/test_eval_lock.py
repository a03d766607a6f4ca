"""Two evaluations on the same run directory: the second stops at once, nothing interleaves."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from deepmmsearch.cli import main as cli_main
from deepmmsearch.config import load_config
from deepmmsearch.eval import store
from deepmmsearch.eval.harness import run_eval
from deepmmsearch.eval.store import RunDirBusy, load_run_records

from .eval_world import SAMPLES, eval_config, write_config


def _cfg(tmp_path: Path, **kw):
    return load_config(data=eval_config(tmp_path / "world", tmp_path / "run", **kw), expect="eval")


def test_a_second_eval_on_a_busy_directory_fails_at_once(tmp_path, capsys):
    cfg = _cfg(tmp_path)
    with store.locked_run_dir(cfg.out), pytest.raises(RunDirBusy, match=r"in use by pid \d+"):
        run_eval(cfg)
    assert not (Path(cfg.out) / "results").exists()  # it wrote nothing
    path = write_config(tmp_path / "eval.yaml", eval_config(tmp_path / "world", tmp_path / "run"))
    with store.locked_run_dir(cfg.out):
        assert cli_main(["eval", "-c", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "in use by pid" in err[-1]
    assert "Traceback" not in "\n".join(err)
    result = run_eval(cfg)  # the lock went with its holder
    assert result.new == len(SAMPLES) * 5


def test_two_evals_at_the_same_time_never_duplicate_rows(tmp_path):
    cfg = _cfg(tmp_path, text_latency=0.1, concurrency=2)  # a run of about a second
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def one() -> None:
        start.wait()
        try:
            outcomes.append(run_eval(cfg).new)
        except RunDirBusy as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    rows = [line for p in (Path(cfg.out) / "results").glob("*.jsonl")
            for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = load_run_records(cfg.out)
    assert len(rows) == len(records) == len(SAMPLES) * 5
    assert sum(isinstance(o, RunDirBusy) for o in outcomes) == 1, outcomes
