"""End to end: an evaluation over every workflow, its report, resuming, and cache replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepmmsearch.cli import main as cli_main
from deepmmsearch.config import load_config
from deepmmsearch.eval.harness import Evaluation, run_eval
from deepmmsearch.eval.report import load_run, table1, write_report
from deepmmsearch.eval.store import read_results
from deepmmsearch.registry import ConfigError

from .eval_world import SAMPLES, eval_config, write_config

REPO = Path(__file__).resolve().parents[2]
N = len(SAMPLES)
WORKFLOWS = ["direct", "rag", "agent", "no-crop", "one-text"]


def _cfg(tmp_path: Path, out: str = "run", **kw):
    return load_config(data=eval_config(tmp_path / "world", tmp_path / out, **kw), expect="eval")


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_all_workflows_table_figures_and_report(tmp_path):
    cfg = _cfg(tmp_path, judges=["rule", {"name": "fixture", "verdicts": {"Lake Como": True}}])
    result = run_eval(cfg)
    assert result.new == N * len(WORKFLOWS) and not result.skipped
    run = load_run(result.run_dir)
    acc = {wf: run.cell("Tiny", wf).accuracy("rule") for wf in WORKFLOWS}
    # agent: q1 (crop + text), q2 (no tool), q4 (two text searches) right; q3 wrong; q5 gave up
    assert acc == {"direct": 0.2, "rag": 0.2, "agent": 0.6, "no-crop": 0.6, "one-text": 0.6}
    assert run.cell("Tiny", "agent").accuracy("fixture") == 0.8  # it accepts "Lake Como"
    rag = run.cell("Tiny", "rag")
    assert rag.tool_use["image+text"] == 1.0 and rag.whole_searches == N and rag.crop_searches == 0
    assert run.cell("Tiny", "no-crop").crop_searches == 0
    assert run.cell("Tiny", "agent").crop_searches == 1
    assert run.cell("Tiny", "one-text").text_search_hist == {0: 3, 1: 2}

    headers, rows = table1([run])
    assert headers == ["run", "workflow", "model", "avg", "Tiny"]
    assert [r[1] for r in rows] == WORKFLOWS and rows[2][3] == "60.00"

    out = write_report([result.run_dir])
    for name in ("table1.md", "table1.csv", "report.md", "tool_use.csv", "cost.csv"):
        assert (out / name).stat().st_size > 0
    for name in ("accuracy.png", "tool_use.png", "text_searches.png", "crop_vs_whole.png"):
        assert _is_png(out / name)
    report = (out / "report.md").read_text()
    # judge agreement: they differ on the three "Lake Como" answers (agent and its ablations)
    assert "| rule | fixture | 25 | 88.00 | 0.763 | 0 | 3 |" in report
    assert "| no-crop | agent | crop_search=False |" in report  # the ablations
    assert "| one-text | agent | max_text_searches=1 |" in report
    assert "### Tiny / agent / `q1`" in report  # a rendered trajectory
    assert (out / "table1.csv").read_text().splitlines()[0] == "run,workflow,model,avg,Tiny"

    # the run directory
    d = result.run_dir
    info = json.loads((d / "run.json").read_text())
    assert info["seed"] == 0 and info["packages"]["deepmmsearch"] and len(info["sessions"]) == 1
    assert info["primary_judge"] == "rule" and info["judges"] == ["rule", "fixture"]
    assert (d / "config.yaml").exists() and (d / "samples" / "Tiny.ids").read_text().split() == \
        [s["id"] for s in SAMPLES]
    assert list((d / "artifacts" / "agent" / "Tiny" / "q1").glob("*_crop.png"))
    rec = read_results(d / "results" / "Tiny__agent.jsonl")[0]
    assert rec.trajectory.verdict is not None and set(rec.verdicts) == {"rule", "fixture"}

    # the same command again resumes and finds nothing to do
    again = run_eval(cfg)
    assert again.new == 0 and len(again.records) == N * len(WORKFLOWS)
    assert len(json.loads((d / "run.json").read_text())["sessions"]) == 2


def test_a_different_config_is_refused(tmp_path):
    run_eval(_cfg(tmp_path, limit=2))
    with pytest.raises(ConfigError, match="different config"):
        run_eval(_cfg(tmp_path, limit=3))
    # a different concurrency or progress setting is the same run
    assert run_eval(_cfg(tmp_path, limit=2, concurrency=1)).new == 0


async def test_replay_from_the_caches_makes_no_live_call(tmp_path):
    judge = {"name": "llm", "policy": {"name": "scripted", "turns": ["[CORRECT]"]},
             "cache": str(tmp_path / "judge.sqlite"), "shortcut": False}
    first = Evaluation(_cfg(tmp_path, out="live", judges=["rule", judge]))
    r1 = await first.run()
    assert first.toolbox.text_search.calls and first.toolbox.image_search.calls
    assert first.panel.judges["llm"].calls > 0

    second = Evaluation(_cfg(tmp_path, out="replay", judges=["rule", judge], cache="replay"))
    r2 = await second.run()
    assert second.toolbox.text_search.calls == [] and second.toolbox.image_search.calls == []
    assert second.panel.judges["llm"].calls == 0 and second.panel.judges["llm"].cache_hits > 0
    assert not r2.skipped and r2.new == r1.new
    key = lambda r: r.key
    for a, b in zip(sorted(r1.records, key=key), sorted(r2.records, key=key)):
        assert a.trajectory.answer == b.trajectory.answer
        assert {k: v.correct for k, v in a.verdicts.items()} == {k: v.correct for k, v in b.verdicts.items()}
        assert all(c.cache_hit for c in b.trajectory.tool_calls)
    session = json.loads((r2.run_dir / "run.json").read_text())["sessions"][-1]
    assert session["tool_cache"]["misses"] == 0 and session["judges"]["llm"]["calls"] == 0


def test_garbage_judge_replies_are_counted_not_graded(tmp_path):
    garbage = {"name": "llm", "shortcut": False,
               "policy": {"name": "scripted", "turns": ["Well... [CORRECT] or [INCORRECT]?"]}}
    result = run_eval(_cfg(tmp_path, judges=["rule", garbage], limit=3))
    run = load_run(result.run_dir)
    stats = run.cell("Tiny", "rag").judges["llm"]
    answered = [r for r in run.records_of("Tiny", "rag") if r.trajectory.answer]
    assert stats.n_unparseable == len(answered) > 0 and stats.accuracy is None
    assert all(r.verdicts["llm"].raw.startswith("Well") for r in answered)
    report = (write_report([result.run_dir], figures=False) / "report.md").read_text()
    # only the unanswered / given-up samples are graded by both (incorrect without a call): kappa
    # is undefined when both judges say the same thing about everything
    both = sum(r.verdicts["llm"].correct is not None for r in run.records)
    assert both == sum(not r.trajectory.answer or "Unable" in r.trajectory.answer for r in run.records)
    assert f"| rule | llm | {both} | 100.00 | - | 0 | 0 |" in report


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path):
    cfg = write_config(tmp_path / "eval.yaml",
                       eval_config(tmp_path / "world", tmp_path / "run", text_latency=0.15,
                                   concurrency=1))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "deepmmsearch", "eval", "-c", str(cfg),
                             "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = tmp_path / "run" / "results"

    def lines() -> int:
        return sum(p.read_text().count("\n") for p in results.glob("*.jsonl")) if results.exists() else 0

    deadline = time.time() + 60
    while lines() < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_text() for p in results.glob("*.jsonl")}
    done_before = lines()
    assert 0 < done_before < N * len(WORKFLOWS), "the run should be killed part-way"

    assert cli_main(["eval", "-c", str(cfg), "--no-progress"]) == 0
    total = 0
    for p in results.glob("*.jsonl"):
        ids = [json.loads(line)["sample_id"] for line in p.read_text().splitlines()]
        assert sorted(ids) == sorted(s["id"] for s in SAMPLES), p.name  # none lost, none twice
        good = before.get(p.name, "")
        assert p.read_text().startswith(good[: good.rfind("\n") + 1])  # finished rows untouched
        total += len(ids)
    assert total == N * len(WORKFLOWS)
    assert len(json.loads((tmp_path / "run" / "run.json").read_text())["sessions"]) == 2


def test_report_compares_runs_along_a_tag(tmp_path, capsys):
    runs = []
    for ratio in (0.3, 0.5):
        cfg = _cfg(tmp_path, out=f"r{ratio}", name=f"ratio-{ratio}", tags={"search_ratio": ratio},
                   limit=3)
        runs.append(str(run_eval(cfg).run_dir))
    out = tmp_path / "cmp"
    assert cli_main(["report", *runs, "--out", str(out), "--examples", "1"]) == 0
    report = (out / "report.md").read_text()
    assert "## Runs along `search_ratio`" in report
    assert "| ratio-0.3 | agent |" in (out / "table1.md").read_text()
    assert _is_png(out / "by_search_ratio.png")
    assert "ratio-0.5" in capsys.readouterr().out


def test_report_mean_and_std_over_seeds(tmp_path):
    runs = [run_eval(_cfg(tmp_path, out=f"s{seed}", seed=seed, limit=3)).run_dir for seed in (0, 1)]
    report = (write_report(runs, tmp_path / "seeds", figures=False, examples=0) / "report.md").read_text()
    assert "## tiny: accuracy over seeds (mean ± std, %)" in report
    accs = [load_run(d).cell("Tiny", "agent").accuracy("rule") for d in runs]
    mean = 100 * sum(accs) / 2
    sd = 100 * abs(accs[0] - accs[1]) / 2 ** 0.5
    assert f"| tiny | agent | 0, 1 | {mean:.2f} ± {sd:.2f} |" in report
    assert "| agent | search_required | False |" in report  # accuracy by kind of question


@pytest.mark.parametrize("change, error", [
    ({"workflows": [{"kind": "agent"}, {"kind": "agent"}]}, "labels must be unique"),
    ({"workflows": [{"kind": "agent", "label": "a b"}, {"kind": "agent", "label": "a/b"}]},
     "as file names"),
    ({"workflows": [{"kind": "agnet"}]}, "did you mean 'agent'"),
    ({"workflows": [{"kind": "agent", "limits": {"crop_serch": False}}]}, "crop_search"),
    ({"workflows": [{"kind": "agent", "baseline": "nope"}]}, "not a workflow label"),
    ({"judges": ["rul"]}, "did you mean 'rule'"),
    ({"datasets": [{"loader": {"name": "jsonl", "paht": "x"}}]}, "unknown option 'paht'"),
    ({"datasets": []}, "at least one dataset"),
])
def test_bad_configs_are_refused_before_running(tmp_path, change, error):
    data = eval_config(tmp_path / "world", tmp_path / "run")
    data.update(change)
    with pytest.raises(ConfigError, match=error):
        load_config(data=data, expect="eval")
    assert not (tmp_path / "run").exists()
