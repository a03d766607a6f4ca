"""Official scoring rules."""

from __future__ import annotations

import pytest

from deepmmsearch.data.scoring import (
    aokvqa_direct_accuracy,
    evqa_score,
    infoseek_numeric,
    infoseek_score,
    official_score,
    official_summary,
    parse_numbers,
    token_recall,
    vqa_accuracy,
    vqa_normalize,
)
from deepmmsearch.registry import DATASET
from deepmmsearch.types import Sample


def test_vqa_normalisation():
    assert vqa_normalize("The Dog's  bone!") == "dog's bone"  # vqaEval keeps the apostrophe
    assert vqa_normalize("Two") == "2" and vqa_normalize("1,000.5") == "1000.5"
    assert vqa_normalize("don't") == vqa_normalize("dont")


@pytest.mark.parametrize("pred,expected", [
    ("tennis", 1.0),  # 7 of 10 say tennis
    ("badminton", 0.3),  # one annotator: 9 subsets with 1 match (1/3), one with 0
    ("golf", 0.0),
])
def test_vqa_accuracy_leave_one_out(pred, expected):
    answers = ["tennis"] * 6 + ["tenis", "badminton", "tennis", "sport"]
    assert vqa_accuracy(pred, answers) == pytest.approx(expected)


def test_vqa_accuracy_two_of_ten():
    answers = ["night", "evening"] * 5
    assert vqa_accuracy("evening", answers) == 1.0
    two = ["a"] * 8 + ["b", "b"]
    # subsets dropping a "b" keep one match (1/3); the other 8 keep two (2/3)
    assert vqa_accuracy("b", two) == pytest.approx((2 * (1 / 3) + 8 * (2 / 3)) / 10)


def test_aokvqa_direct_answer():
    da = ["rain"] * 6 + ["it rained", "raining", "storm", "rain"]
    assert aokvqa_direct_accuracy("rain", da) == 1.0
    assert aokvqa_direct_accuracy("Rain.", da) == 0.0  # the official rule compares raw strings
    assert aokvqa_direct_accuracy("Rain.", da, strict=False) == 1.0
    assert aokvqa_direct_accuracy("storm", da) == pytest.approx(1 / 3)


@pytest.mark.parametrize("pred,rng,expected", [
    ("330", [297, 363], 1.0), ("about 400 m", [297, 363], 0.0),
    ("between 300 and 350", [297, 363], 1.0),  # inside the range
    ("250-350", [297, 363], 0.0),  # overlap 53 over union 113: IoU 0.47
    ("300-400", [297, 363], 1.0),  # overlap 63 over union 103: IoU 0.61
    ("100 to 300", [297, 363], 0.0),
    ("1,000", 950.0, 1.0), ("1,200", 950.0, 0.0), ("no number", [1, 2], 0.0),
    ("no number", [0, 2], 1.0),  # read as the range [0, 0], inside [0, 2]
])
def test_infoseek_numeric(pred, rng, expected):
    assert infoseek_numeric(pred, rng) == expected


def test_parse_numbers_ranges_and_commas():
    assert parse_numbers("9-10 metres") == [9.0, 10.0]
    assert parse_numbers("1,200,000 people in 2020") == [1200000.0, 2020.0]
    assert parse_numbers("-3.5e2 and .5") == [-350.0, 5.0]  # the script strips the leading "."
    assert parse_numbers("12,15") == [12.0, 15.0]


def test_infoseek_and_evqa_samples():
    s = Sample("i", "q", ["Seine", "Seine River"], question_type="string", source="infoseek",
               metadata={"answer_eval": ["Seine", "Seine River"]})
    assert infoseek_score("the Seine", s) == 1.0 and infoseek_score("Seine, Paris", s) == 0.0
    t = Sample("t", "q", ["1937"], question_type="time", source="infoseek")
    assert infoseek_score("1937", t) == 1.0 and infoseek_score("1938", t) == 0.0
    m = Sample("m", "q", ["insects and seeds"], question_type="multi_answer", source="evqa",
               metadata={"answer_parts": [["insects", "seeds"]]})
    assert evqa_score("seeds and insects", m) == 1.0
    assert evqa_score("insects", m) == 1.0  # IoU 1/2 >= 0.5
    assert evqa_score("insects, worms, snails", m) == 0.0
    single = Sample("e", "q", ["1889", "in 1889"], question_type="templated", source="evqa")
    assert evqa_score("The answer is 1889", single) == 1.0


def test_token_recall_dynvqa_and_chinese():
    assert token_recall("The CEO is Bob Smith.", ["Bob Smith"]) == 1.0
    assert token_recall("Bob", ["Bob Smith", "Robert"]) == 0.5
    pytest.importorskip("jieba")
    assert token_recall("是北京", ["北京"], language="zh") == 1.0


def test_official_summary_harmonic_mean(bench_specs):
    data = DATASET.build(bench_specs["infoseek"])
    preds = {"infoseek_val_00001": "Seine", "infoseek_val_00002": "500", "infoseek_val_00003": "1937"}
    out = official_summary(data.samples, preds)
    assert out["infoseek"]["n"] == 3
    assert out["infoseek"]["splits"] == {"unseen_question": 100.0, "unseen_entity": 50.0}
    assert out["infoseek"]["harmonic_mean"] == round(2 / (1 / 100 + 1 / 50), 2) == 66.67
    simple = Sample("s", "q", ["a"], source="simplevqa")
    assert official_score(simple, "a") is None
    assert official_summary([simple], {"s": "a"}) == {"simplevqa": {"no_official_rule": 1}}
