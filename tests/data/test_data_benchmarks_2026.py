"""The 2026 search suite and the Table 2 sets: loaders on fixture files in each released layout
(tests/data/make_benchmark_fixtures_2026.py), and official-metric cases derived from each
official evaluation script (named per table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepmmsearch.data.benchmarks.search2026 import decrypt, encrypt
from deepmmsearch.data.scoring import official_score, official_summary
from deepmmsearch.data.scoring_general import (
    anls,
    choose_option,
    mathvista_normalize,
    mathvista_score,
    mmsearch_f1,
    ocrbench_score,
    token_f1,
)
from deepmmsearch.registry import DATASET
from deepmmsearch.reward.bench_prompts import parse_browsecomp_reply, parse_mmvet_reply

BENCH = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def specs(tmp: Path) -> dict[str, dict]:
    b = BENCH
    return {
        "mmsearch": {"path": str(b / "mmsearch/end2end.parquet"), "cache_dir": str(tmp)},
        "livevqa": {"path": str(b / "livevqa/News/benchmark.json"),
                    "image_root": str(b / "livevqa/News/News_imgs")},
        "browsecomp_vl": {"path": str(b / "browsecomp_vl/bc_vl_level1.jsonl"),
                          "image_root": str(b / "browsecomp_vl/images")},
        "mmsearch_plus": {"path": str(b / "mmsearch_plus/test.parquet"), "cache_dir": str(tmp)},
        "mmbench": {"path": str(b / "mmbench/MMBench_DEV_EN.tsv"), "cache_dir": str(tmp)},
        "ai2d": {"path": str(b / "ai2d/test.parquet"), "cache_dir": str(tmp)},
        "docvqa": {"path": str(b / "docvqa/val_v1.0.json")},
        "ocrbench": {"path": str(b / "ocrbench/OCRBench.json")},
        "mathvista": {"path": str(b / "mathvista/testmini.json")},
        "mmvet": {"path": str(b / "mmvet/mm-vet.json")},
    }


# name -> (samples, rows, skipped by reason)
EXPECTED = {
    "mmsearch": (2, 4, {"bad row: no query": 1, "missing image: unreadable": 1}),
    "livevqa": (2, 3, {"bad row: no id or no levelN_qa": 1, "missing image: not found": 1}),
    "browsecomp_vl": (2, 5, {"bad row: no question": 1, "bad row: not JSON": 1,
                             "missing image: not found": 1}),
    "mmsearch_plus": (2, 4, {"bad row: answer does not decrypt": 1, "missing image: none given": 1}),
    # per sample: the 4 rotations of the image-less question are each counted
    "mmbench": (6, 5, {"bad row: options or answer letter unusable": 1, "missing image: none given": 4}),
    "ai2d": (2, 3, {"bad row: answer is not an option index": 1}),
    "docvqa": (2, 4, {"bad row: no question": 1, "missing image: not found": 1}),
    "ocrbench": (2, 4, {"bad row: no question": 1, "missing image: not found": 1}),
    "mathvista": (2, 4, {"bad row: not a JSON object": 1, "missing image: not found": 1}),
    "mmvet": (1, 3, {"bad row: no question": 1, "missing image: not found": 1}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_reads_released_layout(name, tmp_path):
    pytest.importorskip("pyarrow")
    data = DATASET.build({"name": name, **specs(tmp_path)[name]})
    n, rows, skipped = EXPECTED[name]
    assert (len(data), data.report.rows, data.report.skipped) == (n, rows, skipped)
    for s in data:
        assert s.source == name and s.question and s.answers
        assert s.image is None or Path(s.image).is_file()
    json.dumps(data.report.to_dict())


def test_search_suite_fields(tmp_path):
    sp = specs(tmp_path)
    mm = DATASET.build({"name": "mmsearch", **sp["mmsearch"]})
    assert mm[0].answers == ["Noah Lyles", "Lyles"] and Path(mm[0].metadata["image_search_result"]).is_file()
    assert mm[1].image is None and mm.report.missing_images == 1  # a text-only query is no miss
    live = DATASET.build({"name": "livevqa", **sp["livevqa"]})
    assert live.ids() == ["0_1_l1", "0_1_l2"] and live[1].choices[1] == "B. University of Bristol"
    assert DATASET.build({"name": "livevqa", **sp["livevqa"], "levels": [2]}).ids() == ["0_1_l2"]
    bc = DATASET.build({"name": "browsecomp_vl", **sp["browsecomp_vl"]})
    assert bc.ids() == ["level1_1", "level1_2"] and bc[1].answers == ["2014"] and bc[0].split == "level1"
    plus = DATASET.build({"name": "mmsearch_plus", **sp["mmsearch_plus"]})
    assert plus[0].question.startswith("Which paper") and plus[0].answers[0] == "Attention Is All You Need"
    assert len(plus[0].metadata["images"]) == 2 and plus[1].answers == ["Lisbon"]  # plain row
    assert decrypt(encrypt("Ünïcode ✓", "k"), "k") == "Ünïcode ✓"


def test_mmbench_circular_groups_and_shared_images(tmp_path):
    data = DATASET.build({"name": "mmbench", **specs(tmp_path)["mmbench"]})
    by = {s.id: s for s in data}
    assert [by[i].metadata["answer_letter"] for i in ("0", "1000000", "2000000", "3000000")] == list("BADC")
    assert by["1"].image == by["0"].image  # "image" held the index of the row it shares
    assert by["1000001"].choices == ["square", "circle"]  # the file's own rotation, not a copy
    flat = DATASET.build({"name": "mmbench", **specs(tmp_path)["mmbench"], "circular": False})
    assert sorted(flat.ids()) == ["0", "1", "1000001"]
    preds = {"0": "B", "1000000": "A", "2000000": "D", "3000000": "B. red",  # last rotation wrong
             "1": "(B) square", "1000001": "A"}
    out = official_summary(data.samples, preds)["mmbench"]
    assert out["accuracy"] == pytest.approx(100 * 5 / 6)
    assert out["circular_accuracy"] == 50.0 and out["n_groups"] == 2


# --- MMSearch: lmms-eval tasks/mmsearch/score/f1_score.py get_f1_score, and
#     lmms_eval_utils.mmsearch_aggregate_results_f1_score (max over gt and alternatives)

@pytest.mark.parametrize("pred,gold,expected", [
    ("Noah Lyles", "Noah Lyles", 1.0),
    ("the winner was Noah Lyles", "Noah Lyles", 2 * (2 / 4) * 1 / (2 / 4 + 1)),  # P 2/4, R 1
    ("New York New York", "New York", 2 * 0.5 * 1 / 1.5),  # counts: P 2/4, R 2/2
    ("", "", 1.0),  # both empty: agree
    ("an", "x", 0.0),  # the prediction is empty after removing articles
    ("Paris!", "paris", 1.0),
])
def test_mmsearch_token_f1(pred, gold, expected):
    assert token_f1(pred, gold) == pytest.approx(expected)


def test_mmsearch_f1_max_over_alternatives():
    assert mmsearch_f1("Lyles", ["Noah Lyles", "Lyles"]) == 1.0


# --- DocVQA ANLS: lmms-eval api/metrics.py anls

@pytest.mark.parametrize("pred,answers,expected", [
    ("March 5, 1998", ["March 5, 1998"], 1.0),
    ("  march   5, 1998 ", ["March 5, 1998"], 1 - 0 / 18),  # normalised strings equal
    ("Marc 5, 1998", ["March 5, 1998"], 1 - 1 / 13),
    ("J Smith", ["J. Smith"], 1 - 1 / 8),
    ("abcd", ["wxyz"], 0.0),  # similarity 0 < 0.5
    ("ab", ["abcd"], 0.5),  # distance 2 / 4: similarity 0.5 is kept
    ("x", ["abc", "x"], 1.0),  # best answer
])
def test_anls(pred, answers, expected):
    assert anls(pred, answers) == pytest.approx(expected)


# --- OCRBench: its evaluation script (containment; HME100k without spaces, case kept)

@pytest.mark.parametrize("pred,answers,dataset,expected", [
    ("The word is China.", ["CHINA"], "IIIT5K", 1.0),
    ("CHIN", ["CHINA"], "IIIT5K", 0.0),
    ("x^{2}+1", ["x ^ { 2 } + 1"], "HME100k", 1.0),
    ("X^{2}+1", ["x ^ { 2 } + 1"], "HME100k", 0.0),  # case kept for formulas
    ("total $12\nthanks", ["$12"], "docVQA", 1.0),
])
def test_ocrbench_containment(pred, answers, dataset, expected):
    assert ocrbench_score(pred, answers, dataset) == expected


# --- MMBench / AI2D: VLMEvalKit's rule-based can_infer (option letter, else option text)

@pytest.mark.parametrize("pred,expected", [
    ("B", "B"), ("(B) yellow", "B"), ("The answer is C.", "C"), ("yellow", "B"),
    ("A or B", None),  # two letters: cannot tell
    ("I think it is yellow or blue", None),  # two option texts
    ("purple", None),
])
def test_choose_option(pred, expected):
    assert choose_option(pred, ["red", "yellow", "blue", "green"]) == expected


# --- MathVista: evaluation/calculate_score.py normalize_extracted_answer and safe_equal

@pytest.mark.parametrize("extraction,choices,qtype,atype,precision,expected", [
    ("B", ["circle", "square"], "multi_choice", "text", None, "square"),
    ("(A) circle", ["circle", "square"], "multi_choice", "text", None, "circle"),
    ("squar", ["circle", "square"], "multi_choice", "text", None, "square"),  # most similar
    ("3.0", None, "free_form", "integer", None, "3"),
    ("1.24", None, "free_form", "float", 1, "1.2"),
    ("abc", None, "free_form", "float", 1, None),
])
def test_mathvista_normalize(extraction, choices, qtype, atype, precision, expected):
    assert mathvista_normalize(extraction, choices, qtype, atype, precision) == expected


def test_mathvista_rule_score_and_dispatch(tmp_path):
    assert mathvista_score("The bar is 1.24 cm long", "1.2", choices=None, question_type="free_form",
                           answer_type="float", precision=1) == 1.0
    data = DATASET.build({"name": "mathvista", **specs(tmp_path)["mathvista"]})
    by = {s.id: s for s in data}
    assert official_score(by["2"], "B") == 1.0 and official_score(by["2"], "A") == 0.0


def test_official_dispatch_for_the_new_sets(tmp_path):
    sp = specs(tmp_path)
    doc = DATASET.build({"name": "docvqa", **sp["docvqa"]})
    assert official_score(doc[1], "J Smith") == pytest.approx(1 - 1 / 8)
    ocr = DATASET.build({"name": "ocrbench", **sp["ocrbench"]})
    assert official_score(ocr[1], "x^{2}+1") == 1.0
    ai2d = DATASET.build({"name": "ai2d", **sp["ai2d"]})
    assert official_score(ai2d[0], "A. larva") == 1.0 and official_score(ai2d[1], "fox") == 0.0
    mm = DATASET.build({"name": "mmsearch", **sp["mmsearch"]})
    assert official_score(mm[0], "Lyles") == 1.0
    bc = DATASET.build({"name": "browsecomp_vl", **sp["browsecomp_vl"]})
    assert official_score(bc[0], "United States") is None  # graded by its LLM grader


def test_grader_replies():
    reply = ("extracted_final_answer: United States\nreasoning: same country\n"
             "correct: yes\nconfidence: 90%")
    assert parse_browsecomp_reply(reply) == (True, "same country")
    assert parse_browsecomp_reply("correct: no")[0] is False
    assert parse_browsecomp_reply("correct: yes\ncorrect: no")[0] is None
    assert parse_mmvet_reply("0.5") == 0.5 and parse_mmvet_reply("Score: 1.0") == 1.0
    assert parse_mmvet_reply("7") is None and parse_mmvet_reply("no idea") is None


def test_llm_judge_grader_modes():
    import asyncio

    from deepmmsearch.registry import JUDGE

    reply = "extracted_final_answer: USA\nreasoning: ok\ncorrect: yes"
    bc = JUDGE.build({"name": "llm", "mode": "browsecomp", "shortcut": False,
                      "policy": {"name": "scripted", "turns": [reply]}})
    assert "[correct_answer]: United States" in bc.render("Q?", "USA", ["United States"])
    v = asyncio.run(bc.judge("Q?", "USA", ["United States"]))
    assert v.correct is True
    mv = JUDGE.build({"name": "llm", "mode": "mmvet", "shortcut": False,
                      "policy": {"name": "scripted", "turns": ["0.4"]}})
    v = asyncio.run(mv.judge("How many?", "about four", ["4"]))
    assert (v.correct, v.score) == (False, 0.4)
