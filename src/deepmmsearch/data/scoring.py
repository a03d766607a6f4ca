"""Official scoring rules of the benchmarks — pure functions, reported beside the judge accuracy.

The paper scores every benchmark with one LLM judge; these rules are the secondary cross-check
(re-implemented from the benchmarks' descriptions, not imported):

- OK-VQA: VQA accuracy — ``min(1, matches / 3)`` averaged over the ten leave-one-out subsets of
  the ten annotator answers, after EvalAI-style answer normalisation (:func:`vqa_normalize`);
- A-OKVQA direct answer: ``min(1, matches / 3)`` over the ten direct answers, no leave-one-out.
  The official script compares raw strings; we normalise both sides by default because the
  direct answers are already normalised and free-form agent answers otherwise never match
  (``strict=True`` gives the raw-string rule);
- InfoSeek: exact match after SQuAD-style normalisation for string and time questions; for
  numerical questions the first two numbers of the prediction must fall inside the gold range
  (±10% when only a value is known), or a predicted range must lie inside it or overlap it with
  IoU ≥ 0.5. The final score is the harmonic mean over the unseen-question and unseen-entity
  splits (:func:`official_summary`);
- E-VQA: exact match after E-VQA normalisation (multi-answer questions: list IoU ≥ 0.5). BEM, the
  second stage, needs TensorFlow and a model download and is not implemented;
- DynVQA: token recall of the gold answer in the prediction, maximised over answers;
- FVQA: normalised exact match against the ground truth and its aliases;
- SimpleVQA: its official grader is an LLM: use the judge (returns None here).

>>> vqa_accuracy("Tennis.", ["tennis"] * 6 + ["tenis", "badminton", "tennis", "sport"])
1.0
>>> infoseek_numeric("about 330 m", [297.0, 363.0])
1.0
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from statistics import mean

from deepmmsearch.types import Sample

_PUNCT = set(string.punctuation + "‘’´`_“”")
_APOSTROPHES = set("'’‘´`")
_ARTICLES = {"a", "an", "the"}
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_EVQA_EXTRA = {"entailment": "yes", "true": "yes", "contradiction": "no", "false": "no"}


# ---------------------------------------------------------------------------------------------
# normalisation


def vqa_normalize(text: str) -> str:
    """EvalAI-style VQA answer normalisation: lower case, digits for number words, no articles,
    punctuation removed (apostrophes joined, thousands commas and decimal points kept in numbers)."""
    s = str(text).lower().replace("\n", " ").replace("\t", " ").strip()
    s = re.sub(r"(?<=\d),(?=\d)", "", s)
    out = []
    for i, ch in enumerate(s):
        if ch == "." and 0 < i < len(s) - 1 and s[i - 1].isdigit() and s[i + 1].isdigit():
            out.append(ch)
        elif ch in _APOSTROPHES:
            continue
        elif ch in _PUNCT:
            out.append(" ")
        else:
            out.append(ch)
    words = [_NUMBER_WORDS.get(w, w) for w in "".join(out).split() if w not in _ARTICLES]
    return " ".join(words)


def squad_normalize(text: str) -> str:
    """Lower case, punctuation and articles removed, whitespace collapsed (InfoSeek, FVQA)."""
    s = "".join(ch for ch in str(text).lower() if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def evqa_normalize(text: str) -> str:
    s = str(text).lower().replace("\n", " ").replace("\t", " ").strip()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = re.sub(r"\b(the answer is|a|an|the)\b", " ", s)
    return " ".join(_EVQA_EXTRA.get(w, _NUMBER_WORDS.get(w, w)) for w in s.split())


# ---------------------------------------------------------------------------------------------
# per-benchmark rules


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """OK-VQA / VQAv2 accuracy over the (ten) annotator answers, with leave-one-out."""
    gold = [vqa_normalize(a) for a in answers]
    if not gold:
        return 0.0
    pred = vqa_normalize(prediction)
    if len(gold) == 1:
        return float(pred == gold[0])
    scores = []
    for i in range(len(gold)):
        others = gold[:i] + gold[i + 1:]
        scores.append(min(1.0, sum(g == pred for g in others) / 3.0))
    return mean(scores)


def aokvqa_direct_accuracy(prediction: str, direct_answers: Sequence[str], *,
                           strict: bool = False) -> float:
    """A-OKVQA DA score ``min(1, matches / 3)``; ``strict``: raw strings, as the official script."""
    norm = (lambda x: x) if strict else vqa_normalize
    pred = norm(prediction)
    return min(1.0, sum(norm(a) == pred for a in direct_answers) / 3.0)


_NUM_RE = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_numbers(text: str, k: int = 2) -> list[float]:
    """The first ``k`` numbers in ``text`` ("9-10" is the range 9 to 10; "1,200" is 1200)."""
    s = re.sub(r"(?<=\d)\s*-\s*(?=\d)", " - ", str(text))
    out = []
    for m in _NUM_RE.finditer(s):
        token = m.group().replace(",", "")
        try:
            out.append(float(token))
        except ValueError:
            continue
        if len(out) == k:
            break
    return out


def range_iou(a: Sequence[float], b: Sequence[float]) -> float:
    lo1, hi1 = min(a), max(a)
    lo2, hi2 = min(b), max(b)
    overlap = max(0.0, min(hi1, hi2) - max(lo1, lo2))
    union = (hi1 - lo1) + (hi2 - lo2) - overlap
    return overlap / union if union > 0 else float(lo1 == lo2 and hi1 == hi2)


def infoseek_numeric(prediction: str, gold_range: Sequence[float] | float,
                     tolerance: float = 0.1) -> float:
    """InfoSeek's relaxed numeric rule (see the module docstring)."""
    if isinstance(gold_range, (int, float)):
        v = float(gold_range)
        lo, hi = sorted((v * (1 - tolerance), v * (1 + tolerance)))
    else:
        lo, hi = sorted(float(x) for x in gold_range[:2])
    nums = parse_numbers(prediction)
    if not nums:
        return 0.0
    if len(nums) == 1 or nums[0] > nums[1]:
        return float(lo <= nums[0] <= hi)
    p_lo, p_hi = nums
    if lo <= p_lo <= hi and lo <= p_hi <= hi:
        return 1.0
    return float(range_iou((p_lo, p_hi), (lo, hi)) >= 0.5 - 1e-12)


def exact_match(prediction: str, answers: Iterable[str], normalize=squad_normalize) -> float:
    pred = normalize(prediction)
    return float(any(pred == normalize(a) for a in answers if normalize(a)))


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


def evqa_score(prediction: str, sample: Sample) -> float:
    """E-VQA exact-match stage (BEM not included), maximised over the alternatives."""
    parts = sample.metadata.get("answer_parts") or [[a] for a in sample.answers]
    if sample.question_type == "multi_answer":
        cand = {evqa_normalize(x) for x in re.split(r",| and | & ", prediction)} - {""}
        for ref in parts:
            target = {evqa_normalize(x) for x in ref} - {""}
            if target and len(target & cand) / len(target | cand) >= 0.5:
                return 1.0
        return 0.0
    pred = evqa_normalize(prediction)
    return float(any(pred == evqa_normalize(" ".join(ref)) for ref in parts if ref))


def _tokens(text: str) -> list[str]:
    s = str(text).lower()
    if re.search(r"[\u3400-\u9fff]", s):  # Chinese: characters (no segmenter dependency)
        return [ch for ch in s if not ch.isspace() and ch not in _PUNCT]
    return re.findall(r"\w+", s)


def token_recall(prediction: str, answers: Iterable[str]) -> float:
    """DynVQA: share of the gold answer's tokens found in the prediction, max over answers."""
    pred = set(_tokens(prediction))
    best = 0.0
    for a in answers:
        gold = _tokens(a)
        if gold:
            best = max(best, sum(t in pred for t in gold) / len(gold))
    return best


def official_score(sample: Sample, prediction: str | None) -> float | None:
    """The benchmark's own rule for one prediction; None where the benchmark has none."""
    pred = prediction or ""
    src = sample.source
    if src == "okvqa":
        return vqa_accuracy(pred, sample.metadata.get("all_answers") or sample.answers)
    if src == "aokvqa":
        return aokvqa_direct_accuracy(pred, sample.metadata.get("all_answers") or sample.answers)
    if src == "infoseek":
        return infoseek_score(pred, sample)
    if src == "evqa":
        return evqa_score(pred, sample)
    if src == "dynvqa":
        return token_recall(pred, sample.answers)
    if src == "fvqa":
        return exact_match(pred, sample.answers)
    return None


def harmonic_mean(values: Sequence[float]) -> float:
    vals = [v if v > 0 else 1e-12 for v in values]
    return len(vals) / sum(1.0 / v for v in vals) if vals else 0.0


def official_summary(samples: Iterable[Sample], predictions: Mapping[str, str | None]) -> dict:
    """Official accuracy per benchmark (mean, in %), plus InfoSeek's per-split scores and their
    harmonic mean. Samples without a rule or without a prediction entry are counted as such."""
    per: dict[str, list[float]] = defaultdict(list)
    infoseek_split: dict[str, list[float]] = defaultdict(list)
    no_rule: dict[str, int] = defaultdict(int)
    for s in samples:
        if s.id not in predictions:
            continue
        score = official_score(s, predictions[s.id])
        if score is None:
            no_rule[s.source] += 1
            continue
        per[s.source].append(score)
        if s.source == "infoseek":
            split = str(s.metadata.get("data_split", ""))
            infoseek_split["unseen_question" if split.endswith("question") else "unseen_entity"].append(score)
    out: dict = {src: {"accuracy": 100 * mean(v), "n": len(v)} for src, v in per.items()}
    if infoseek_split:
        splits = {k: 100 * mean(v) for k, v in infoseek_split.items()}
        out["infoseek"].update(splits=splits, harmonic_mean=harmonic_mean(list(splits.values())))
    for src, n in no_rule.items():
        out.setdefault(src, {})["no_official_rule"] = n
    return out
