"""The reduced quickstart (configs/quickstart/reduced.yaml) end to end, through the CLI: every
stage really runs (world, distillation, SFT, GRPO, evaluation, report) and leaves its artefacts.
Structure only — the reduced sizes learn nothing, so no accuracy is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepmmsearch.cli import main
from deepmmsearch.config import load_config
from deepmmsearch.registry import ConfigError

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ["direct", "rag", "agent-teacher", "agent-sft", "agent-grpo", "no-crop", "one-text-search"]
STAGES = ["world", "distill", "sft", "grpo", "eval", "report"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart") / "run"
    cfg = str(ROOT / "configs/quickstart/reduced.yaml")
    code = main(["quickstart", "--config", cfg, "--out", str(out)])
    assert code == 0
    return out


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_stage_ran_and_was_timed(run):
    for name in STAGES:
        marker = json.loads((run / "stages" / f"{name}.json").read_text())
        assert marker["wall_s"] > 0 and marker["key"]
    summary = json.loads((run / "quickstart.json").read_text())
    assert [s["name"] for s in summary["stages"]] == STAGES[:-1]
    assert not any(s["skipped"] for s in summary["stages"])


def test_world_and_distillation(run):
    world = json.loads((run / "world" / "world.json").read_text())
    assert world["counts"]["entities"]["test"] > 0
    assert (run / "world" / "index" / "text").is_dir() and (run / "world" / "index" / "image").is_dir()
    rows = _jsonl(run / "distill" / "sft.jsonl")
    assert len(rows) >= 20
    # the teacher's real tool calls, in the compact prompt set
    assert any("<img_search>" in m["content"] for r in rows for m in r["messages"])
    assert any(m["role"] == "tool" and "<information>" in m["content"] for r in rows for m in r["messages"])


def test_sft_trained_a_tiny_model_from_scratch(run):
    summary = json.loads((run / "sft" / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["trainable_parameters"] > 0
    # sft.augment: {copies: 1} — every distilled trajectory and a renamed copy of it
    assert summary["examples"] == 2 * len(_jsonl(run / "distill" / "sft.jsonl"))
    assert (run / "sft" / "model" / "config.json").exists()
    assert (run / "sft" / "init" / "tokenizer.json").exists()  # trained on the distilled data
    assert any("loss" in r for r in _jsonl(run / "sft" / "train_log.jsonl"))


def test_grpo_ran_multi_turn_rollouts_from_the_sft_model(run):
    cfg = load_config(run / "config.yaml", expect="quickstart").stage_config("grpo")
    assert cfg.model == str(run / "sft" / "model")
    metrics = _jsonl(run / "grpo" / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:
        assert m["rollout/episodes"] == 8 and "reward" in m and "rollout/accuracy" in m
        assert m["time/rollout_s"] > 0
    assert _jsonl(run / "grpo" / "rollouts.jsonl")
    assert (run / "grpo" / "model" / "config.json").exists()


def test_eval_ran_every_workflow_on_held_out_questions(run):
    info = json.loads((run / "eval" / "run.json").read_text())
    assert [w["label"] for w in info["workflows"]] == WORKFLOWS
    test_entities = {json.loads(line)["id"] for line in
                     (run / "world" / "entities.jsonl").read_text().splitlines()
                     if json.loads(line)["split"] == "test"}
    for label in WORKFLOWS:
        rows = _jsonl(run / "eval" / "results" / f"search-required__{label}.jsonl")
        assert rows and all(r["search_required"] for r in rows)
        assert all(r["trajectory"]["metadata"]["entity"] in test_entities for r in rows)
    grpo = _jsonl(run / "eval" / "results" / "search-required__agent-grpo.jsonl")
    assert all(r["trajectory"]["turns"] for r in grpo)  # the tiny model generated every episode
    no_crop = _jsonl(run / "eval" / "results" / "search-required__no-crop.jsonl")
    assert all(r["trajectory"]["metadata"]["limits"]["crop_search"] is False for r in no_crop)


def test_report_and_summary(run):
    report = run / "report"
    table = (report / "table1.md").read_text()
    for label in WORKFLOWS:
        assert f"| {label} |" in table
    for fig in ("accuracy.png", "tool_use.png", "crop_vs_whole.png"):
        assert (report / fig).read_bytes()[:4] == b"\x89PNG"
    text = (report / "report.md").read_text()
    assert "ablations" in text and "Example trajectories" in text
    summary = json.loads((run / "quickstart.json").read_text())
    assert [g["goal"].split(" ")[0] for g in summary["goals"]] == [
        "whole", "SFT", "GRPO", "GRPO", "direct", "crop", "one", "direct"]
    md = (run / "quickstart.md").read_text()
    assert "## Goals" in md and "report.md" in md
    assert "training.png" in md and (run / "training.png").read_bytes()[:4] == b"\x89PNG"


def test_second_run_reuses_finished_stages(run, capsys):
    code = main(["quickstart", "--config", str(ROOT / "configs/quickstart/reduced.yaml"),
                 "--out", str(run)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Report:" in printed and "What it shows" in printed
    summary = json.loads((run / "quickstart.json").read_text())
    assert all(s["skipped"] for s in summary["stages"])


def test_sections_are_validated_as_their_stage_configs():
    with pytest.raises(ConfigError, match="quickstart.sft"):
        load_config(ROOT / "configs/quickstart/reduced.yaml", ["sft.epochz=3"], expect="quickstart")
    with pytest.raises(ConfigError, match="quickstart.eval"):
        load_config(ROOT / "configs/quickstart/reduced.yaml", ["eval.workflows=[]"], expect="quickstart")
    cfg = load_config(ROOT / "configs/quickstart/default.yaml", ["out=/x"], expect="quickstart")
    assert cfg.stage_config("distill").dataset.options["path"] == "/x/world"
