"""Table 1 over the six benchmarks' fixture files (official layouts), with official scores beside
the judge accuracy; the shipped eval configs validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepmmsearch.cli import main as cli_main
from deepmmsearch.config import load_config
from deepmmsearch.eval.harness import run_eval
from deepmmsearch.eval.report import load_run, official_table, table1

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "tests" / "fixtures" / "benchmarks"


def _datasets(tmp: Path) -> list[dict]:
    b = BENCH
    return [
        {"label": "InfoSeek", "loader": {"name": "infoseek", "path": str(b / "infoseek/infoseek_val.jsonl"),
                                         "qtype": str(b / "infoseek/infoseek_val_qtype.jsonl"),
                                         "image_root": str(b / "infoseek/images"),
                                         "image_map": str(b / "infoseek/ovenid2impath.csv")}},
        {"label": "E-VQA", "loader": {"name": "evqa", "path": str(b / "evqa/test.csv"),
                                      "image_root": str(b / "evqa/landmarks"),
                                      "image_map": str(b / "evqa/inat_val.json")}},
        {"label": "SimpleVQA", "loader": {"name": "simplevqa", "path": str(b / "simplevqa/test.parquet"),
                                          "cache_dir": str(tmp / "img")}},
        {"label": "DynVQA", "loader": {"name": "dynvqa", "path": str(b / "dynvqa/dataset"),
                                       "image_root": str(b / "dynvqa/images"), "version": "202502",
                                       "drop_foreign_answers": True}},
        {"label": "OK-VQA", "loader": {"name": "okvqa",
                                       "path": str(b / "okvqa/OpenEnded_mscoco_val2014_questions.json"),
                                       "image_root": str(b / "okvqa/images")}},
        {"label": "A-OKVQA", "loader": {"name": "aokvqa", "path": str(b / "aokvqa/aokvqa_v1p0_val.json"),
                                        "image_root": str(b / "aokvqa")}},
    ]


R = "<reason>I know it.</reason>"
ANSWERS = {"infoseek_val_00001": "Seine", "evqa_test_0": "1889", "0": "Acme", "en1": "Bob",
           "1010": "tennis", "q201": "umbrella"}


def test_six_benchmarks_table_with_official_scores(tmp_path, fixtures_dir):
    pytest.importorskip("pyarrow")  # SimpleVQA ships as parquet
    scripts = {k: [f"{R}<answer>{v}</answer>"] for k, v in ANSWERS.items()}
    scripts["*"] = [f"{R}<answer>no idea</answer>"]
    cfg = load_config(data={
        "stage": "eval", "name": "six", "out": str(tmp_path / "run"), "progress": False,
        "agent": {"policy": {"name": "scripted", "scripts": scripts},
                  "text_search": {"name": "fixture", "path": str(fixtures_dir / "text_hits.yaml")},
                  "image_search": {"name": "fixture", "path": str(fixtures_dir / "image_hits.yaml")}},
        "datasets": _datasets(tmp_path),
        "workflows": [{"kind": "direct"}, {"kind": "agent"}],
        "judges": ["rule"],
    }, expect="eval")
    run = load_run(run_eval(cfg).run_dir)
    headers, rows = table1([run])
    assert headers[4:] == ["InfoSeek", "E-VQA", "SimpleVQA", "DynVQA", "OK-VQA", "A-OKVQA"]
    # one right answer per benchmark: 1/5, 1/3, 1/2, 1/1, 1/3, 1/2; the average is unweighted
    expected = [100 / 5, 100 / 3, 50.0, 100.0, 100 / 3, 50.0]
    assert [float(x) for x in rows[0][4:]] == pytest.approx(expected, abs=0.01)
    assert float(rows[0][3]) == pytest.approx(sum(expected) / 6, abs=0.01)

    ok = run.cell("OK-VQA", "direct")
    assert ok.official_metric == "vqa_accuracy" and 0 < ok.official <= 1 / 3
    assert run.cell("SimpleVQA", "direct").official is None  # its official grader is an LLM
    _, orows = official_table([run])
    assert orows[0][2 + 2] == "-" and "vqa_accuracy" in orows[0][2 + 4]


@pytest.mark.parametrize("name", ["paper_table1.yaml", "simweb_small.yaml", "peers_2026.yaml",
                                  "table2_no_search.yaml"])
def test_shipped_configs_validate(name, capsys):
    assert cli_main(["validate", str(REPO / "configs" / "eval" / name), "--no-files"]) == 0  # data come later
    assert "OK (eval)" in capsys.readouterr().out


def test_shipped_suite_configs_cover_the_sets():
    peers = load_config(path=str(REPO / "configs/eval/peers_2026.yaml"))
    names = {d.loader.name for d in peers.datasets}
    assert {"fvqa", "infoseek", "simplevqa", "mmsearch", "livevqa", "browsecomp_vl",
            "mmsearch_plus"} <= names
    assert {j.options.get("mode") for j in peers.judges if j.name == "llm"} == {"eval", "browsecomp"}
    t2 = load_config(path=str(REPO / "configs/eval/table2_no_search.yaml"))
    assert [d.loader.name for d in t2.datasets] == ["ocrbench", "mmvet", "ai2d", "mathvista",
                                                    "mmbench", "docvqa", "infovqa"]
    assert [(w.kind, w.name) for w in t2.workflows] == [("direct", "base"), ("direct", "trained")]


def test_report_renders_table2_base_against_trained(tmp_path):
    pytest.importorskip("pyarrow")
    from deepmmsearch.eval.report import write_report
    from deepmmsearch.eval.tables import table2

    b = BENCH
    base = {"*": [f"{R}<answer>no idea</answer>"], "0": [f"{R}<answer>A</answer>"],
            "2": [f"{R}<answer>J Smith</answer>"]}  # scripts are keyed by sample id
    trained = {**base, "2": [f"{R}<answer>J. Smith</answer>"], "0": [f"{R}<answer>B</answer>"]}
    cfg = load_config(data={
        "stage": "eval", "name": "t2", "out": str(tmp_path / "run"), "progress": False,
        "agent": {"policy": {"name": "scripted", "scripts": base}},
        "datasets": [
            {"label": "AI2D", "loader": {"name": "ai2d", "path": str(b / "ai2d/test.parquet"),
                                         "cache_dir": str(tmp_path / "img")}},
            {"label": "DocVQA", "loader": {"name": "docvqa", "path": str(b / "docvqa/val_v1.0.json")}},
            {"label": "MMBench", "loader": {"name": "mmbench", "path": str(b / "mmbench/MMBench_DEV_EN.tsv"),
                                            "cache_dir": str(tmp_path / "img")}}],
        "workflows": [{"kind": "direct", "label": "base"},
                      {"kind": "direct", "label": "trained",
                       "policy": {"name": "scripted", "scripts": trained}}],
        "judges": ["rule"],
    }, expect="eval")
    run_dir = run_eval(cfg).run_dir
    headers, rows = table2([load_run(run_dir)])
    assert headers == ["dataset", "metric", "base", "trained", "difference"]
    by = {r[0]: r for r in rows}
    # AI2D: 1 of 2 right for both (id "0": the base says A = larva, right; trained says B, wrong;
    # id "1": neither); DocVQA: ANLS of "J Smith" (0.875) against "J. Smith" (1) on question 2
    assert by["AI2D"][1:] == ["choice_accuracy", "50.00", "0.00", "-50.00"]
    assert by["DocVQA"][1:] == ["anls", "43.75", "50.00", "+6.25"]
    # MMBench: circular groups; the scripts answer "B" only to index 0 (1 of 4 rotations): 0 groups
    assert by["MMBench"][1] == "circular_choice" and by["MMBench"][2] == "0.00"
    out = write_report([run_dir], tmp_path / "report", figures=False, examples=0)
    assert "Table 2" in (out / "report.md").read_text() and (out / "table2.csv").is_file()
