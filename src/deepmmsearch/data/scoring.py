"""Official scoring rules of the benchmarks — pure functions, reported beside the judge accuracy.

The paper scores every benchmark with one LLM judge; these rules are the secondary cross-check,
re-implemented from each benchmark's own evaluation script (no code taken from them) so that they
give the same number on the same input — ``tests/data/test_data_official.py`` checks each one on a
table of cases derived from its script:

- OK-VQA: VQA accuracy (``vqaEval.py``, ``VQAEval.evaluate``): the prediction is cleaned
  (:func:`~deepmmsearch.data.official_text.vqa_clean`); the ten annotator answers get the
  punctuation step only, and only when they are not all the same; each of the ten
  leave-one-out subsets scores ``min(1, matches / 3)``, and the ten are averaged;
- A-OKVQA direct answer (``evaluation/eval_predictions.py``, ``eval_aokvqa``): ``min(1, matches /
  3)`` over the ten raw direct answers, no normalisation, no leave-one-out; questions flagged
  ``difficult_direct_answer`` are left out of the direct-answer score (``strict=False`` gives a
  normalised variant, not the official rule);
- InfoSeek (``infoseek_eval.py``): string and time questions — exact match after
  ``normalize_answer`` against ``answer_eval``; numerical questions — the first two numbers of the
  prediction (``process_numerical_answer``; none at all reads as the range [0, 0]) against the
  range of the *first* ``answer_eval`` entry (``metric_numerical_range``); the final score is the
  harmonic mean of the unseen-question and unseen-entity scores, each rounded to two decimals
  (``evaluate_infoseek_full``);
- E-VQA (``evaluation_utils.py``): exact match after ``preprocess_answer``, multi-answer
  questions by list IoU ≥ 0.5, maximised over the ``|`` alternatives. BEM, the second stage,
  needs TensorFlow and a model download and is not implemented;
- DynVQA (OmniSearch ``evaluate.py``): the prediction is cleaned as in the VQA evaluation, both
  sides are tokenised (NLTK words for English, jieba for Chinese, chosen by the release's
  language), and the score is the share of gold tokens matched *with their counts*, maximised
  over the gold answers;
- FVQA: normalised exact match against the ground truth and its aliases;
- SimpleVQA: its official grader is an LLM: use the judge (returns None here);
- the 2026 search suite and the Table 2 sets: :mod:`deepmmsearch.data.scoring_general`
  (MMSearch F1, ANLS, OCRBench, MMBench / AI2D options with MMBench's circular groups, MathVista).

>>> vqa_accuracy("Tennis.", ["tennis"] * 6 + ["tenis", "badminton", "tennis", "sport"])
1.0
>>> infoseek_numeric("about 330 m", [297.0, 363.0])
1.0
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from statistics import mean

from deepmmsearch.data.official_text import (
    evqa_normalize,
    squad_normalize,
    vqa_clean,
    vqa_digits_articles,
    vqa_punctuation,
    word_tokens,
    zh_tokens,
)
from deepmmsearch.types import Sample

__all__ = ["aokvqa_direct_accuracy", "evqa_normalize", "evqa_score", "exact_match",
           "harmonic_mean", "infoseek_numeric", "infoseek_score", "official_score",
           "official_summary", "parse_numbers", "range_iou", "squad_normalize", "token_recall",
           "vqa_accuracy", "vqa_normalize"]


def vqa_normalize(text: str) -> str:
    """A prediction as the VQA evaluation compares it (see :func:`vqa_clean`)."""
    return vqa_clean(text)


# ---------------------------------------------------------------------------------------------
# VQA accuracy (OK-VQA) and A-OKVQA


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """OK-VQA / VQAv2 accuracy over the (ten) annotator answers, with leave-one-out.

    With a single annotator answer every leave-one-out subset is empty, so the score is 0, as
    in the official evaluation."""
    if not answers:
        return 0.0
    pred = vqa_clean(prediction)
    gold = [str(a).replace("\n", " ").replace("\t", " ").strip() for a in answers]
    if len(set(gold)) > 1:
        gold = [vqa_punctuation(a) for a in gold]
    matches = [g == pred for g in gold]
    total = sum(matches)
    return mean(min(1.0, (total - m) / 3.0) for m in matches)


def aokvqa_direct_accuracy(prediction: str, direct_answers: Sequence[str], *,
                           strict: bool = True) -> float:
    """A-OKVQA DA score ``min(1, matches / 3)`` on raw strings (``strict=False``: both sides
    VQA-cleaned first, a lenient variant that is not the official rule)."""
    norm = (lambda x: x) if strict else vqa_clean
    pred = norm(prediction)
    return min(1.0, sum(norm(a) == pred for a in direct_answers) / 3.0)


# ---------------------------------------------------------------------------------------------
# InfoSeek

_NUMBER = re.compile(r"[-+]?[.]?\d+(?:,\d\d\d)*[.]?\d*(?:[eE][-+]?\d+)?")


def _space_ranges(text: str) -> str:
    """``"9-10"`` → ``"9 - 10"``: a hyphen right after a digit separates two numbers."""
    return "".join(" - " if ch == "-" and i and text[i - 1].isdigit() else ch
                   for i, ch in enumerate(text))


def parse_numbers(text: str, k: int = 2) -> list[float]:
    """The first ``k`` numbers in ``text`` as InfoSeek reads them: ``"9-10"`` is 9 and 10,
    ``"1,200"`` is 1200 but ``"12,15"`` is 12 and 15 (a thousands comma needs three digits),
    surrounding periods are dropped (``".5"`` reads as 5, ``"1.2.3"`` as 1.2 and 3)."""
    out = []
    for token in _NUMBER.findall(_space_ranges(str(text))):
        token = token.replace(",", "").strip(".")
        if token.count(".") > 1:
            token = token.split(".")[0]
        try:
            out.append(float(token))
        except ValueError:
            continue
        if len(out) == k:
            break
    return out


def read_numeric_prediction(text: str) -> float | list[float]:
    """InfoSeek's ``process_numerical_answer``: two ascending numbers are a range, two others
    the first number, one number itself, none the range [0, 0]."""
    nums = parse_numbers(text, 2)
    if len(nums) == 2:
        return list(nums) if nums[0] <= nums[1] else nums[0]
    return nums[0] if nums else [0.0, 0.0]


def range_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """InfoSeek's range IoU (each length padded by 1e-12, as in the official script)."""
    lo1, hi1 = min(a), max(a)
    lo2, hi2 = min(b), max(b)
    overlap = max(0.0, min(hi1, hi2) - max(lo1, lo2))
    union = (hi1 - lo1 + 1e-12) + (hi2 - lo2 + 1e-12) - overlap
    return overlap / union if union != 0 else 0.0


def infoseek_numeric(prediction: str, gold_range: Sequence[float] | float,
                     tolerance: float = 0.1) -> float:
    """InfoSeek's ``metric_numerical_range`` on a prediction text (a single gold value becomes
    the range ±``tolerance``)."""
    if isinstance(gold_range, (int, float)):
        v = float(gold_range)
        lo, hi = v * (1 - tolerance), v * (1 + tolerance)
    else:
        lo, hi = (float(x) for x in gold_range[:2])
    pred = read_numeric_prediction(prediction)
    if not isinstance(pred, list):
        return float(lo <= pred <= hi)
    if lo <= pred[0] <= hi and lo <= pred[1] <= hi:
        return 1.0
    return float(range_iou(pred, (lo, hi)) >= 0.5 - 1e-12)


def exact_match(prediction: str, answers: Iterable[str], normalize=squad_normalize) -> float:
    pred = normalize(prediction)
    return float(any(pred == normalize(a) for a in answers))


def infoseek_score(prediction: str, sample: Sample) -> float:
    qtype = (sample.question_type or "").lower()
    if qtype == "numerical":
        rng = sample.metadata.get("numeric_range")
        if rng:
            return infoseek_numeric(prediction, rng)
        values = [n for a in sample.answers for n in parse_numbers(a, 1)]
        return infoseek_numeric(prediction, values[0]) if values else 0.0
    gold = [a for a in sample.metadata.get("answer_eval", []) if isinstance(a, str)] or sample.answers
    return exact_match(prediction, gold)


# ---------------------------------------------------------------------------------------------
# E-VQA


def evqa_score(prediction: str, sample: Sample) -> float:
    """E-VQA exact-match stage (BEM not included), maximised over the alternatives."""
    parts = sample.metadata.get("answer_parts") or [[a] for a in sample.answers]
    if sample.question_type == "multi_answer":
        cand = {evqa_normalize(x) for x in
                prediction.replace(" and ", ",").replace(" & ", ",").split(",")} - {""}
        for ref in parts:
            target = {evqa_normalize(x) for x in ref} - {""}
            if target and len(target & cand) / len(target | cand) >= 0.5:
                return 1.0
        return 0.0
    pred = evqa_normalize(prediction)
    return float(any(pred == evqa_normalize(" && ".join(ref)) for ref in parts if ref))


# ---------------------------------------------------------------------------------------------
# DynVQA

_EN_DROP = ",.?!:;'\""
_ZH_DROP = "，、。 ,.《》"


def dynvqa_tokens(text: str, language: str = "en") -> list[str]:
    """OmniSearch's ``process_string_en`` / ``process_string``: tokens, with the one-mark tokens
    it drops (a token is dropped when it is a substring of the mark list, as the script tests)."""
    if language == "zh":
        return [w for w in zh_tokens(str(text)) if w not in _ZH_DROP]
    return [w for w in word_tokens(str(text).lower()) if w not in _EN_DROP]


def token_recall(prediction: str, answers: Iterable[str], language: str = "en") -> float:
    """DynVQA's token F1-recall (``compute_acc``): matched gold tokens, counted with
    multiplicity, over the gold length; maximised over the answers."""
    pred = vqa_digits_articles(vqa_punctuation(str(prediction).replace("\n", " ")
                                               .replace("\t", " ").strip()))
    if pred == "":
        return 0.0
    pred_toks = Counter(dynvqa_tokens(pred, language))
    best = 0.0
    for a in answers:
        gold = dynvqa_tokens(a, language)
        if not gold or not pred_toks:
            score = float(not gold and not pred_toks)
        else:
            score = sum((Counter(gold) & pred_toks).values()) / len(gold)
        best = max(best, score)
    return best


def official_score(sample: Sample, prediction: str | None) -> float | None:
    """The benchmark's own rule for one prediction; None where the benchmark has none (and for
    A-OKVQA questions the official direct-answer score leaves out)."""
    pred = prediction or ""
    src = sample.source
    if src == "okvqa":
        return vqa_accuracy(pred, sample.metadata.get("all_answers") or sample.answers)
    if src == "aokvqa":
        if sample.metadata.get("difficult_direct_answer") is True:
            return None
        return aokvqa_direct_accuracy(pred, sample.metadata.get("all_answers") or sample.answers)
    if src == "infoseek":
        return infoseek_score(pred, sample)
    if src == "evqa":
        return evqa_score(pred, sample)
    if src == "dynvqa":
        return token_recall(pred, sample.answers, str(sample.metadata.get("language") or "en"))
    if src == "fvqa":
        return exact_match(pred, sample.answers)
    if src in GENERAL_RULES:
        return GENERAL_RULES[src](pred, sample)
    return None


def _mathvista(pred: str, s: Sample) -> float:
    from deepmmsearch.data.scoring_general import mathvista_score

    m = s.metadata
    return mathvista_score(pred, s.answers[0] if s.answers else "", choices=s.choices,
                           question_type=s.question_type, answer_type=m.get("answer_type"),
                           precision=m.get("precision"))


def _general(name: str):
    def rule(pred: str, s: Sample) -> float:
        from deepmmsearch.data import scoring_general as g

        if name == "mmsearch":
            return g.mmsearch_f1(pred, s.answers)
        if name == "docvqa":
            return g.anls(pred, s.answers)
        if name == "ocrbench":
            return g.ocrbench_score(pred, s.metadata.get("raw_answers") or s.answers, s.category)
        return g.choice_score(pred, s.choices or [], str(s.metadata.get("answer_letter") or ""))
    return rule


GENERAL_RULES = {"mmsearch": _general("mmsearch"), "docvqa": _general("docvqa"),
                 "infovqa": _general("docvqa"),
                 "ocrbench": _general("ocrbench"), "mmbench": _general("choice"),
                 "ai2d": _general("choice"), "mathvista": _mathvista}


def harmonic_mean(values: Sequence[float]) -> float:
    """InfoSeek's ``harmonic_mean``: a zero counts as 1e-12."""
    vals = [v if v != 0 else 1e-12 for v in values]
    return len(vals) / sum(1.0 / v for v in vals) if vals else 0.0


INFOSEEK_SPLITS = ("unseen_question", "unseen_entity")


def infoseek_final(split_scores: Mapping[str, Sequence[float]]) -> dict:
    """``evaluate_infoseek_full``: each split's mean in %, rounded to two decimals (an empty split
    scores 0), and their harmonic mean, rounded again."""
    splits = {k: round(100 * (sum(v) / len(v) if v else 0.0), 2)
              for k, v in ((k, list(split_scores.get(k, []))) for k in INFOSEEK_SPLITS)}
    return {"splits": splits, "harmonic_mean": round(harmonic_mean(list(splits.values())), 2)}


def infoseek_split(sample: Sample) -> str:
    """The official script's split test: ``data_split`` ending in ``unseen_question``, else
    unseen entity."""
    split = str(sample.metadata.get("data_split", ""))
    return "unseen_question" if split.endswith("unseen_question") else "unseen_entity"


def official_summary(samples: Iterable[Sample], predictions: Mapping[str, str | None]) -> dict:
    """Official accuracy per benchmark (mean, in %), plus InfoSeek's per-split scores and their
    harmonic mean. Samples without a prediction entry are left out (the official scripts score
    the predictions given); samples without a rule are counted as such."""
    per: dict[str, list[float]] = defaultdict(list)
    by_split: dict[str, list[float]] = defaultdict(list)
    no_rule: dict[str, int] = defaultdict(int)
    circular: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for s in samples:
        if s.id not in predictions:
            continue
        score = official_score(s, predictions[s.id])
        if score is None:
            no_rule[s.source] += 1
            continue
        per[s.source].append(score)
        if "circular_group" in s.metadata:
            circular[s.source].setdefault(str(s.metadata["circular_group"]), []).append(score)
        if s.source == "infoseek":
            by_split[infoseek_split(s)].append(score)
    out: dict = {src: {"accuracy": 100 * mean(v), "n": len(v)} for src, v in per.items()}
    for src, groups in circular.items():
        from deepmmsearch.data.scoring_general import group_min

        worst = group_min(groups)
        out[src].update(circular_accuracy=100 * mean(worst), n_groups=len(worst))
    if by_split:
        out["infoseek"].update(infoseek_final(by_split))
    for src, n in no_rule.items():
        out.setdefault(src, {})["no_official_rule"] = n
    return out
