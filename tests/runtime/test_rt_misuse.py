"""Reliability, CLI misuse: every careless command line ends with one ``error:`` line on stderr
and a non-zero exit — never a traceback, never a silent exit 0. In-process (``cli.main``), so the
whole table runs in a few seconds."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from deepmmsearch.cli import main

ROOT = Path(__file__).parents[2]
FIX = ROOT / "tests" / "fixtures"
ASK = str(ROOT / "configs" / "ask_fixture.yaml")


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    (tmp_path / "adir").mkdir()
    (tmp_path / "binary.yaml").write_bytes(b"\x00\x01\x02\xff\xfe\x89PNG")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yaml").write_text("# nothing but a comment\n")
    (tmp_path / "not_an_image.png").write_text("hello")
    (tmp_path / "truncated.png").write_bytes((FIX / "scene.png").read_bytes()[:200])
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "dups.jsonl").write_text('{"id": "7", "title": "a", "text": "b"}\n'
                                         '{"id": "7", "title": "c", "text": "d"}\n')
    (tmp_path / "bad_fixture.jsonl").write_text('{"query": "a", "hits": []}\n{oops\n')
    (tmp_path / "no_hits.jsonl").write_text('{"query": "a"}\n')
    (tmp_path / "list.yaml").write_text("- just\n- a list\n")
    (tmp_path / "missing_files.yaml").write_text(
        "stage: agent\nagent:\n  policy: {name: scripted, path: /nonexistent/script.yaml}\n"
        f"  text_search: {{name: bm25, index: {tmp_path}/no_index}}\n")
    def eval_yaml(out: Path, data: Path) -> str:
        return json.dumps({"stage": "eval", "out": str(out), "progress": False,
                           "agent": {"policy": {"name": "scripted",
                                                "path": str(FIX / "ask_script.yaml")}},
                           "datasets": [{"label": "x", "loader": {"name": "jsonl",
                                                                  "path": str(data)}}],
                           "workflows": [{"kind": "direct"}], "judges": ["rule"]})

    (tmp_path / "eval_missing.yaml").write_text(eval_yaml(tmp_path / "e1",
                                                          tmp_path / "nothere.jsonl"))
    (tmp_path / "eval_empty.yaml").write_text(eval_yaml(tmp_path / "e2", tmp_path / "empty.jsonl"))
    (tmp_path / "run_like").mkdir()
    (tmp_path / "run_like" / "config.yaml").write_text("stage: eval\n")
    return {p.name: p for p in tmp_path.iterdir()}


def _cases(f: dict[str, Path], tmp: Path) -> list[list[str]]:
    fixture = str(f["bad_fixture.jsonl"])
    return [
        ["validate", str(f["adir"])],
        ["validate", str(f["binary.yaml"])],
        ["validate", str(f["empty.yaml"])],
        ["validate", str(f["comments.yaml"])],
        ["validate", str(f["list.yaml"])],
        ["validate", str(tmp / "nothere.yaml")],
        ["validate", str(f["missing_files.yaml"])],
        ["ask", "-c", ASK, "Q?", f"agent.text_search.path={tmp / 'nothere.yaml'}"],
        ["ask", "-c", ASK, "Q?", f"agent.text_search.path={fixture}"],
        ["ask", "-c", ASK, "Q?", f"agent.text_search.path={f['no_hits.jsonl']}"],
        ["ask", "-c", ASK, "Q?", f"agent.text_search.path={f['binary.yaml']}"],
        ["ask", "-c", ASK, ""],
        ["ask", "-c", ASK, "   "],
        ["ask", "-c", ASK, "-i", str(f["not_an_image.png"]), "Q?"],
        ["ask", "-c", ASK, "-i", str(f["truncated.png"]), "Q?"],
        ["ask", "-c", ASK, "-i", str(tmp / "nothere.png"), "Q?"],
        ["ask", "-c", ASK, "-i", str(f["adir"]), "Q?"],
        ["ask", "-c", str(f["adir"]), "Q?"],
        ["index", "text", str(f["empty.jsonl"]), "--out", str(tmp / "i1"), "--no-progress"],
        ["index", "text", str(f["dups.jsonl"]), "--out", str(tmp / "i2"), "--no-progress"],
        ["index", "text", str(tmp / "nothere.jsonl"), "--out", str(tmp / "i3"), "--no-progress"],
        ["index", "text", str(f["adir"]), "--out", str(tmp / "i4"), "--no-progress"],
        ["search", "text", "egret", "--index", str(tmp / "nothere"), "-k", "3"],
        ["search", "text", "egret", "--index", str(tmp / "idx"), "-k", "-1"],
        ["search", "text", "egret", "--index", str(tmp / "idx"), "-k", "0"],
        ["search", "text", "egret", "--index", str(tmp / "idx"), "--snippet-chars", "-5"],
        ["search", "image", str(FIX / "scene.png"), "--index", str(tmp / "idx"), "-k", "-2"],
        ["report", str(tmp / "nothere")],
        ["report", str(f["adir"])],
        ["report", str(f["run_like"])],
        ["eval", "-c", str(f["eval_missing.yaml"])],
        ["eval", "-c", str(f["eval_empty.yaml"])],
        ["eval", "-c", ASK],
    ]


def test_every_misuse_is_one_error_line_and_a_nonzero_exit(files, tmp_path, capsys, caplog):
    from deepmmsearch.tools.text.bm25 import build_index

    build_index(FIX / "text_corpus.jsonl", tmp_path / "idx", show_progress=False)
    outcomes = []
    for argv in _cases(files, tmp_path):
        caplog.clear()
        with caplog.at_level(logging.CRITICAL):
            rc = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        outcomes.append((argv, rc, err))
    bad = [(a, rc, e) for a, rc, e in outcomes
           if rc == 0 or len(e) != 1 or not e[0].startswith(("error: ", "config error: "))]
    assert not bad, "\n".join(f"{a} -> {rc}: {e}" for a, rc, e in bad)
    assert len(outcomes) >= 30


def test_good_uses_still_work(files, tmp_path, capsys) -> None:
    assert main(["validate", ASK]) == 0
    assert main(["validate", str(files["missing_files.yaml"]), "--no-files"]) == 0
    assert main(["index", "text", str(FIX / "text_corpus.jsonl"), "--out", str(tmp_path / "ok"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["search", "text", "great egret", "--index", str(tmp_path / "ok"), "-k", "1",
                 "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 1
    assert main(["ask", "-c", ASK, "-i", str(FIX / "scene.png"), "Wingspan?"]) == 0
