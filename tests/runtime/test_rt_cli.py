"""CLI: ``ask``, ``validate`` and ``ls`` run in-process.

Run: .venv/bin/pytest tests/runtime/test_rt_cli.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepmmsearch.cli import main
from deepmmsearch.types import Trajectory, read_jsonl

ROOT = Path(__file__).parents[2]
ASK = ["ask", "-c", "configs/ask_fixture.yaml", "--image", "tests/fixtures/scene.png",
       "What is the wingspan of this bird?"]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_ask_prints_the_trace(capsys):
    assert main(ASK) == 0
    out = capsys.readouterr().out
    assert "[turn 0] model:" in out and "<img_search>the white bird</img_search>" in out
    assert "[tool] image_search via fixture [box" in out
    assert "[tool] text_search via fixture [great egret wingspan]: 2 hits" in out
    assert "answer: 131 to 170 cm  (stop: answer)" in out
    assert "source: https://example.org/great-egret" in out


def test_ask_json_and_out(capsys, tmp_path):
    out_file = tmp_path / "t.jsonl"
    assert main(ASK + ["--json", "--out", str(out_file)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["answer"] == "131 to 170 cm" and data["schema_version"] == 1
    assert main(ASK + ["--json", "--out", str(out_file)]) == 0
    rows = read_jsonl(str(out_file), Trajectory)
    assert len(rows) == 2 and rows[1].answer == "131 to 170 cm"


def test_ask_with_overrides(capsys):
    # crop search off: the crop becomes a whole-image search, with a note
    assert main(ASK + ["--json", "agent.limits.crop_search=false"]) == 0
    call = json.loads(capsys.readouterr().out)["turns"][0]["tool_call"]
    assert call["whole_image"] and "crop search is disabled" in call["note"]


def test_ask_bad_config_is_a_clean_error(capsys):
    assert main(ASK + ["agent.limits.max_tool_callz=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error:") and "did you mean 'max_tool_calls'" in err


def test_ask_with_the_openai_policy(capsys, tmp_path):
    from .openai_server import FakeChatServer
    from .rt_tools import ANSWER, TEXT

    with FakeChatServer(turns=[TEXT, ANSWER]) as srv:
        rc = main(["ask", "-c", "configs/ask_fixture.yaml", "--json", "Wingspan?",
                   "agent.policy={name: openai, model: m, base_url: '" + srv.base_url + "'}"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["answer"] == "131 to 170 cm" and len(srv.requests) == 2


def test_validate(capsys):
    assert main(["validate", "configs/ask_fixture.yaml"]) == 0
    assert "configs/ask_fixture.yaml: OK (agent)" in capsys.readouterr().out
    assert main(["validate", "configs/ask_fixture.yaml", "--print", "agent.top_k=3"]) == 0
    out = capsys.readouterr().out
    assert "top_k: 3" in out and "max_tool_calls: 10" in out


def test_validate_errors(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: agent\nagent:\n  text_search: {name: bm52}\n")
    assert main(["validate", str(bad)]) == 2
    assert "unknown text_search backend 'bm52' (did you mean 'bm25'?)" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_ls(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for needle in ("policy:", "openai", "deepmmsearch.policies.openai_compat:OpenAIPolicy",
                   "text_search:", "bm25", "stages (config 'stage:' values):"):
        assert needle in out
    assert main(["ls", "summarizer"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("summarizer:") and "policy:" not in out
