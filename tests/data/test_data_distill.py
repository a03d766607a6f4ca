"""Distillation end to end on the fixture source (scripted teacher, fixture tools, rule judge),
and a real kill -9 / resume of the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from deepmmsearch.config import load_config
from deepmmsearch.data.distill import distill, run_distill
from deepmmsearch.policies.scripted import ScriptedPolicy
from deepmmsearch.registry import ConfigError
from deepmmsearch.reward.judge import FixtureJudge

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "distill" / "fixture.yaml"


def cfg_for(tmp_path: Path, *overrides: str):
    os.chdir(ROOT)  # the fixture config's paths are relative to the repository
    return load_config(CONFIG, [f"out_dir={tmp_path / 'run'}", *overrides], expect="distill")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_fixture_distillation_is_balanced(tmp_path):
    res = run_distill(cfg_for(tmp_path), progress=False)
    s = res.stats
    assert (res.samples, res.ran, res.passed, res.selected) == (24, 24, 16, 12)
    assert {k: v for k, v in s["failed"].items() if v} == {
        "invalid_action": 2, "too_many_turns": 1, "gave_up": 1, "judge_rejected": 4}
    assert s["search_ratio"]["selected"] == 0.5 and s["search_ratio"]["pool"] == 0.5
    per_cat = {c: v["selected"]["search"] + v["selected"]["free"] for c, v in s["categories"].items()}
    assert per_cat == dict.fromkeys(["animals", "art and culture", "food and drink", "landmarks and places"], 3)
    assert s["tool_patterns"] == {"none": 6, "text": 6}
    out = Path(res.sft_dir)
    rows = read_jsonl(out / "sft.jsonl")
    assert len(rows) == 12 and sorted(r["id"] for r in rows) == sorted((out / "selected_ids.txt").read_text().split())
    search_row = next(r for r in rows if r["search_required"])
    roles = [m["role"] for m in search_row["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert search_row["messages"][0]["content"].count("<image>") == 1 == len(search_row["images"])
    assert search_row["messages"][2]["content"].startswith("<information>")
    assert search_row["trajectory"]["verdict"]["correct"] is True
    for name in ("stats.md", "stats.json", "stats.png", "config.yaml", "sft.parquet"):
        assert (out / name).stat().st_size > 0
    assert "| judge_rejected | 16 | 4 |" in (out / "stats.md").read_text()
    assert (out / "stats.png").read_bytes()[:4] == b"\x89PNG"


def test_sft_parquet_loads_with_images(tmp_path):
    datasets = pytest.importorskip("datasets")
    res = run_distill(cfg_for(tmp_path, "images=bytes", "target_size=4"), progress=False)
    ds = datasets.load_dataset("parquet", data_files=res.paths["parquet"], split="train")
    assert len(ds) == 4 and set(ds.column_names) >= {"messages", "images", "category", "trajectory"}
    assert ds[0]["images"][0].size == (120, 90) or ds[0]["images"][0].size[0] > 0
    assert json.loads(ds[0]["trajectory"])["id"] == ds[0]["id"]


async def test_resample_ablation_costs_no_teacher_call(tmp_path):
    cfg = cfg_for(tmp_path)
    await distill(cfg, progress=False)

    class Refuses:
        name = "refuses"

        async def generate(self, request):  # pragma: no cover - must not be called
            raise AssertionError("the teacher ran again")

    more_search = cfg_for(tmp_path, "search_ratio=0.75", "target_size=8", f"sft_dir={tmp_path / 'ab'}")
    res = await distill(more_search, policy=Refuses(), progress=False)  # resumed: nothing to run
    assert res.ran == 0 and res.resumed == 24 and res.selected == 8
    assert res.stats["search_ratio"]["selected"] == 0.75 and Path(res.sft_dir) == tmp_path / "ab"
    rerun = await distill(cfg_for(tmp_path, "target_size=100"), run=False, progress=False)
    assert rerun.selected == 16 and rerun.stats["sampling"]["shortfall"] == {"search": 42, "free": 42}


async def test_policy_errors_and_unparseable_verdicts_are_filtered(tmp_path):
    cfg = cfg_for(tmp_path, "target_size=4")
    script = ScriptedPolicy(path=str(ROOT / "tests/fixtures/distill/teacher.yaml"))

    class Flaky:
        name = "flaky"

        async def generate(self, request):
            if request.episode_id in ("d00", "d10"):
                raise TimeoutError("rate limited")
            return await script.generate(request)

    judge = FixtureJudge(verdicts={"Red fox": None}, default="rule")
    res = await distill(cfg, policy=Flaky(), judge=judge, progress=False)
    assert res.stats["failed"]["policy_error"] == 2 and res.stats["failed"]["judge_unparseable"] == 1
    assert res.passed == 13


def test_config_is_validated_before_running(tmp_path):
    with pytest.raises(ConfigError, match="search_ratio"):
        cfg_for(tmp_path, "search_ratio=1.5")
    with pytest.raises(ConfigError, match="unknown key"):
        cfg_for(tmp_path, "target=5")
    with pytest.raises(ConfigError, match="unknown option"):
        cfg_for(tmp_path, "judge.tolerance=3")
    with pytest.raises(ConfigError, match="taxonomy.policy"):
        cfg_for(tmp_path, "taxonomy.method=llm")


def test_kill_9_and_resume_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "run"
    journal = out / "episodes.jsonl"
    cmd = [sys.executable, "-m", "deepmmsearch", "distill", "-c", str(CONFIG), f"out_dir={out}",
           "concurrency=1", "teacher.text_search.latency_s=0.5", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if journal.exists() and len(journal.read_text().splitlines()) >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = read_jsonl(journal)
    assert 4 <= len(before) < 24 and proc.returncode == -signal.SIGKILL
    with open(journal, "a") as fh:  # as if the kill had landed in the middle of a write
        fh.write('{"id": "d35", "failed": nu')
    res = run_distill(cfg_for(tmp_path), progress=False)
    after = read_jsonl(journal)
    ids = [r["id"] for r in after]
    assert len(ids) == len(set(ids)) == 24
    assert after[: len(before)] == before  # nothing finished before the kill was redone
    assert res.ran == 24 - len(before) and res.resumed == len(before)
    clean = run_distill(cfg_for(tmp_path / "clean"), progress=False)
    assert (out / "selected_ids.txt").read_text() == (Path(clean.sft_dir) / "selected_ids.txt").read_text()
    assert Counter(r["failed"] for r in after) == Counter(
        r["failed"] for r in read_jsonl(tmp_path / "clean" / "run" / "episodes.jsonl"))


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "distill").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_distill_configs_validate(path):
    cfg = load_config(path, expect="distill")
    assert cfg.stage == "distill" and 0 <= cfg.search_ratio <= 1
