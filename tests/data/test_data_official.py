"""Each official metric against cases worked out by hand from its official script's logic.

Every table names the script and the function whose behaviour it pins; the expected values are
what that function returns on the input (derived by reading it, step by step, in the comments).
"""

from __future__ import annotations

import pytest

from deepmmsearch.data.official_text import (
    CONTRACTIONS,
    _regex_word_tokens,
    evqa_normalize,
    squad_normalize,
    vqa_clean,
    vqa_punctuation,
)
from deepmmsearch.data.scoring import (
    aokvqa_direct_accuracy,
    evqa_score,
    infoseek_final,
    infoseek_numeric,
    infoseek_score,
    official_score,
    read_numeric_prediction,
    token_recall,
    vqa_accuracy,
)
from deepmmsearch.types import Sample

# --- VQA accuracy: GT-Vision-Lab VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py,
#     VQAEval.processPunctuation / processDigitArticle / evaluate

@pytest.mark.parametrize("text,expected", [
    ("dog's", "dog's"),  # "'" is not in the punct list
    ("yes-no", "yes no"),  # "-" not next to a space: replaced by a space
    ("yes - no", "yes  no"),  # "-" next to a space: deleted
    ("1,000 (approx)", "1000 approx"),  # a digit-comma-digit: every mark is deleted
    ("3:00", "3:00"),  # ":" is not in the list
    ("p.m.", "pm"),  # periods not followed by a digit are deleted
    ("1.5", "1.5"),
])
def test_vqa_process_punctuation(text, expected):
    assert vqa_punctuation(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("The Dog's bone!", "dog's bone"),
    ("Two  dogs", "2 dogs"),
    ("dont", "don't"),  # contractions get their apostrophe back
    ("couldnt've", "couldn't've"),
    ("somebody'd", "somebodyd"),  # the official table maps this one backwards
    ("An apple.", "apple"),
])
def test_vqa_clean_is_punctuation_then_digit_article(text, expected):
    assert vqa_clean(text) == expected


def test_contraction_table_size_and_entries():
    # the official table's 120 keys, less the 4 capitalised ones (never hit after lower-casing) and
    # the 2 that map to themselves ("let's", "she's")
    assert len(CONTRACTIONS) == 114
    assert CONTRACTIONS["yall'd've"] == CONTRACTIONS["y'alld've"] == "y'all'd've"
    assert "yalldve" not in CONTRACTIONS  # only one apostrophe may be missing


@pytest.mark.parametrize("pred,answers,expected", [
    # 7 of 10 say tennis: every leave-one-out subset keeps >= 6 matches -> 1
    ("Tennis.", ["tennis"] * 6 + ["tenis", "badminton", "tennis", "sport"], 1.0),
    # one annotator: 9 subsets keep it (1/3), the one dropping it has 0 -> 0.3
    ("badminton", ["tennis"] * 6 + ["tenis", "badminton", "tennis", "sport"], 0.3),
    # answers differ, so gts get processPunctuation: "dog's" stays "dog's" and matches
    # 3 of 10 say "dog's": subsets dropping one keep 2 (2/3), the other 7 keep 3 (1) -> 0.9
    ("dog's", ["dog's"] * 3 + ["dogs"] * 7, 0.9),
    ("dogs", ["dog's"] * 3 + ["dogs"] * 7, 1.0),
    ("dog's", ["dog's"] * 2 + ["dogs"] * 8, (2 * (1 / 3) + 8 * (2 / 3)) / 10),
    # all ten the same: gts are not processed at all, the prediction is
    ("Nothing", ["nothing"] * 10, 1.0),
    ("none", ["0"] * 10, 1.0),  # "none" -> "0" in processDigitArticle
    ("none", ["none"] * 10, 0.0),  # ...but the unprocessed gold stays "none"
    ("a", ["a"], 0.0),  # one gold answer: every leave-one-out subset is empty
])
def test_vqa_accuracy_cases(pred, answers, expected):
    assert vqa_accuracy(pred, answers) == pytest.approx(expected)


# --- A-OKVQA: allenai/aokvqa evaluation/eval_predictions.py, eval_aokvqa (direct answer)

def test_aokvqa_direct_answer_raw_and_difficult_left_out():
    da = ["rain"] * 2 + ["Rain"] + ["storm"] * 7
    assert aokvqa_direct_accuracy("rain", da) == pytest.approx(2 / 3)  # raw strings: 2 match
    assert aokvqa_direct_accuracy("storm", da) == 1.0  # min(1, 7/3)
    hard = Sample("q", "?", ["rain"], source="aokvqa",
                  metadata={"all_answers": da, "difficult_direct_answer": True})
    assert official_score(hard, "rain") is None  # eval_aokvqa drops it from the DA score


# --- InfoSeek: edchengg/infoseek_eval infoseek_eval.py

@pytest.mark.parametrize("text,expected", [
    # process_numerical_answer
    ("12,15", [12.0, 15.0]),  # ",15" is not a thousands group: two numbers, ascending: a range
    ("1,200", 1200.0),
    ("9-10 m", [9.0, 10.0]),  # clean_str_range spaces the hyphen after a digit
    ("10 or 9", 10.0),  # two numbers, descending: the first
    ("no idea", [0.0, 0.0]),  # no number: [0, 0]
    ("about 3.5.", 3.5),  # trailing period stripped
    ("1.2.3", [1.2, 3.0]),  # the pattern stops at the second period: "1.2", then ".3" -> 3
    ("-5 to 5", [-5.0, 5.0]),
])
def test_infoseek_process_numerical_answer(text, expected):
    assert read_numeric_prediction(text) == expected


@pytest.mark.parametrize("pred,rng,expected", [
    # metric_numerical_range with the answer range from answer_eval[0]["range"]
    ("330", [297, 363], 1.0),
    ("no idea", [0, 10], 1.0),  # [0, 0] lies inside [0, 10]
    ("no idea", [1, 10], 0.0),
    ("12,15", [10, 20], 1.0),  # the range 12-15 lies inside
    ("250-350", [297, 363], 0.0),  # IoU 53 / 113 < 0.5
    ("300-400", [297, 363], 1.0),  # IoU 63 / 103 >= 0.5
    ("5 to 5", [6, 9], 0.0),  # a zero-width range outside: IoU 0
])
def test_infoseek_metric_numerical_range(pred, rng, expected):
    assert infoseek_numeric(pred, rng) == expected


def test_infoseek_first_numeric_range_and_exact_match():
    from deepmmsearch.data.benchmarks.infoseek import _sample

    row = {"data_id": "infoseek_val_1", "image_id": "oven_1", "question": "How long?",
           "answer": ["40"], "data_split": "val_unseen_entity",
           "answer_eval": [{"wikidata": 40, "range": [36, 44]}, {"wikidata": 400, "range": [360, 440]}]}
    s = _sample(row, {"infoseek_val_1": "numerical"})
    assert s.metadata["numeric_range"] == [36.0, 44.0]  # prepare_qid2example: answer_eval[0]
    assert infoseek_score("40", s) == 1.0 and infoseek_score("400", s) == 0.0
    inferred = _sample(row, {})  # no qtype file: the range makes it numerical
    assert inferred.question_type == "numerical" and inferred.metadata["question_type_inferred"]
    dup = _sample({**row, "answer_eval": ["Seine", "Seine", "seine river"], "answer": ["Seine"]},
                  {"infoseek_val_1": "string"})
    assert dup.answers == ["Seine", "seine river"]
    # normalize_answer: ASCII punctuation only; curly quotes stay
    assert squad_normalize("The  Eiffel-Tower!") == "eiffeltower"
    assert squad_normalize("‘Seine’") == "‘seine’"
    assert infoseek_score("the seine.", dup) == 1.0


def test_infoseek_final_score_rounding_and_empty_split():
    # evaluate_infoseek_full: round(100 * mean, 2) per split, then round(harmonic mean, 2)
    out = infoseek_final({"unseen_question": [1, 0, 0], "unseen_entity": [1, 1, 0]})
    assert out["splits"] == {"unseen_question": 33.33, "unseen_entity": 66.67}
    assert out["harmonic_mean"] == round(2 / (1 / 33.33 + 1 / 66.67), 2) == 44.44
    assert infoseek_final({"unseen_question": [1.0]})["harmonic_mean"] == 0.0  # empty split: 0


# --- E-VQA: google-research encyclopedic_vqa/evaluation_utils.py, preprocess_answer,
#     singleanswer_exact_match, multianswer_exact_match

@pytest.mark.parametrize("text,expected", [
    ("The answer is 1889.", "1889"),
    ("<extra_id_0> Two", "2"),
    ("True", "yes"),
    ("Don't", "don't"),  # apostrophe removed, then the contraction table restores it
    ("“quoted”", "“quoted”"),  # curly double quotes are not in its punctuation set
    ("‘x’ _y_", "x y"),
])
def test_evqa_preprocess_answer(text, expected):
    assert evqa_normalize(text) == expected


def test_evqa_multi_answer_list_iou():
    m = Sample("m", "q", ["insects and seeds"], question_type="multi_answer", source="evqa",
               metadata={"answer_parts": [["insects", "seeds"]]})
    assert evqa_score("seeds & insects", m) == 1.0
    assert evqa_score("insects", m) == 1.0  # IoU 1/2
    assert evqa_score("insects, worms, snails", m) == 0.0  # IoU 1/4
    assert evqa_score("Insects AND seeds", m) == 0.0  # " and " is split case-sensitively: IoU 0


# --- DynVQA: Alibaba-NLP/OmniSearch src/Omnisearch_gpt/evaluate.py, compute_acc /
#     compute_acc_single / process_string_en, with processPunctuation + processDigitArticle on
#     the prediction only

@pytest.mark.parametrize("pred,answers,expected", [
    ("Lena Marsh (莉娜·马什)", ["Lena Marsh"], 1.0),  # English tokens; the CJK word is one more token
    ("two", ["2"], 1.0),  # the prediction's "two" becomes "2"
    ("2", ["two"], 0.0),  # the gold answer is not converted
    ("new york", ["New York New York"], 0.5),  # counts: 2 of 4 gold tokens
    ("The CEO is Bob Smith.", ["Bob Smith"], 1.0),
    ("Bob", ["Bob Smith", "Robert"], 0.5),
    ("", ["x"], 0.0),  # an empty prediction scores 0
    ("...", ["x"], 0.0),  # empty after processing
    ("It's Don's", ["Don's"], 1.0),  # gold tokens "don", "'s"
])
def test_dynvqa_token_recall(pred, answers, expected):
    assert token_recall(pred, answers) == pytest.approx(expected)


def test_dynvqa_chinese_uses_jieba():
    pytest.importorskip("jieba")
    assert token_recall("是北京", ["北京"], language="zh") == 1.0
    s = Sample("zh1", "?", ["北京"], source="dynvqa", metadata={"language": "zh"})
    assert official_score(s, "在北京") == 1.0


@pytest.mark.parametrize("text", [
    "lena marsh (莉娜·马什)", '"hi" don\'t 3.5 st. louis, u.s.a.', "it's 1,200 people: yes",
    "cannot gonna", "o'neill's dog", "what?! no...", "$5 & 10%", "a--b [c] {d} <e>",
])
def test_regex_tokenizer_agrees_with_nltk(text):
    nltk = pytest.importorskip("nltk.tokenize")
    assert _regex_word_tokens(text) == nltk.NLTKWordTokenizer().tokenize(text)
