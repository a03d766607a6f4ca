"""Official scores of the 2026 search suite and of the paper's Table 2 sets (pure functions).

Re-implemented from each benchmark's evaluation code (no code taken from it):

- MMSearch end-to-end (lmms-eval ``tasks/mmsearch/score/f1_score.py``, ``get_f1_score``, and
  ``mmsearch_aggregate_results_f1_score``): SQuAD-style token F1 (lower case, ASCII punctuation
  and articles removed, tokens counted), maximised over the gold answer and its alternatives;
  an empty side scores 1 only when both are empty;
- DocVQA ANLS (the RRC rule as lmms-eval computes it, ``api/metrics.py``, ``anls``): both
  strings lower-cased with whitespace collapsed, the edit distance divided by the longer
  *raw* length, the best answer kept, and a similarity below 0.5 set to 0;
- OCRBench (``OCRBench/scripts`` evaluation): a gold answer counts when it is contained in the
  prediction — lower-cased, stripped and with newlines as spaces; for ``HME100k`` (formulas),
  case kept and all spaces removed. OCRBench reports the count out of 1,000; we report the share;
- MMBench and AI2D: the option the prediction names, by the rule-based step of VLMEvalKit's
  matching (``can_infer``: exactly one option letter among the words, else exactly one option
  text inside the answer); an answer it cannot read is wrong (VLMEvalKit would then ask an LLM).
  MMBench's circular score (a group passes only when every rotation is right) is computed over
  ``metadata["circular_group"]`` by :func:`group_min`;
- MathVista (``evaluation/calculate_score.py``, ``normalize_extracted_answer`` / ``safe_equal``):
  a multiple-choice answer becomes the option text (a letter, or else the most similar option),
  integers and floats are parsed (floats rounded to ``precision``), then compared as strings.
  The official answer *extraction* is an LLM call; here a rule takes the prediction itself when
  it parses, else its last number, else the text after "answer is" — the same on short answers;
- MM-Vet and BrowseComp-VL are graded by LLM prompts (``llm`` judge modes ``mmvet`` and
  ``browsecomp``): no rule here.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

LETTERS = string.ascii_uppercase
_ASCII_PUNCT = set(string.punctuation)


# --- MMSearch F1 -------------------------------------------------------------------------------


def _f1_tokens(text: str) -> list[str]:
    s = "".join(ch for ch in str(text or "").lower() if ch not in _ASCII_PUNCT)
    return re.sub(r"\b(a|an|the)\b", " ", s).split()


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = _f1_tokens(prediction), _f1_tokens(gold)
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def mmsearch_f1(prediction: str, answers: Sequence[str]) -> float:
    return max((token_f1(prediction, a) for a in answers), default=0.0)


# --- ANLS --------------------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(prediction: str, answers: Sequence[str], threshold: float = 0.5) -> float:
    if not answers:
        return 0.0
    pred = " ".join(str(prediction).strip().lower().split())
    distances = []
    for a in answers:
        gold = " ".join(str(a).strip().lower().split())
        length = max(len(str(a)), len(str(prediction)))
        distances.append(0.0 if length == 0 else levenshtein(gold, pred) / length)
    score = 1.0 - min(distances)
    return 0.0 if score < threshold else score


# --- OCRBench ----------------------------------------------------------------------------------


def ocrbench_score(prediction: str, answers: Sequence[str], dataset: str | None = None) -> float:
    if dataset == "HME100k":
        def norm(x: str) -> str:
            return str(x).strip().replace("\n", " ").replace(" ", "")
    else:
        def norm(x: str) -> str:
            return str(x).lower().strip().replace("\n", " ")
    pred = norm(prediction)
    return float(any(norm(a) in pred for a in answers))


# --- multiple choice (MMBench, AI2D) -----------------------------------------------------------

_STRIP = ".()[],:;!*#{}"


def choose_option(prediction: str, options: Sequence[str]) -> str | None:
    """The option letter a prediction names, or None when the rule cannot tell."""
    letters = LETTERS[:len(options)]
    text = str(prediction or "")
    words = text
    for ch in _STRIP:
        words = words.replace(ch, " ")
    named = [c for c in letters if c in words.split()]
    if len(named) == 1:
        return named[0]
    if named:
        return None
    low = text.lower()
    inside = [letters[i] for i, o in enumerate(options) if str(o).lower() in low]
    return inside[0] if len(inside) == 1 else None


def choice_score(prediction: str, options: Sequence[str], gold_letter: str) -> float:
    return float(bool(gold_letter) and choose_option(prediction, options) == gold_letter)


def group_min(scores: dict[str, list[float]]) -> list[float]:
    """Circular evaluation: a group scores its worst member (1 only when every rotation is 1)."""
    return [min(v) for v in scores.values() if v]


# --- MathVista ---------------------------------------------------------------------------------

_NUM = re.compile(r"-?\d+(?:\.\d+)?")


def mathvista_extract(prediction: str, question_type: str | None, answer_type: str | None) -> str:
    """A rule in place of MathVista's LLM extraction (see the module docstring)."""
    text = str(prediction or "").strip()
    if question_type == "multi_choice":
        return text
    if answer_type in ("integer", "float"):
        try:
            float(text)
            return text
        except ValueError:
            nums = _NUM.findall(text.replace(",", ""))
            return nums[-1] if nums else text
    m = re.search(r"answer is[:\s]*(.+)", text, re.IGNORECASE)
    return m.group(1).strip().rstrip(".") if m else text


def _most_similar(text: str, choices: Sequence[str]) -> str:
    return min(choices, key=lambda c: levenshtein(text, str(c)))


def mathvista_normalize(extraction: str, choices: Sequence[str] | None, question_type: str | None,
                        answer_type: str | None, precision: float | None) -> str | None:
    """MathVista's ``normalize_extracted_answer``."""
    if question_type == "multi_choice":
        choices = list(choices or [])
        s = str(extraction).strip()
        letter = re.findall(r"\(([a-zA-Z])\)", s)
        if letter:
            s = letter[0].upper()
        options = [LETTERS[i] for i in range(len(choices))]
        if s in options:
            return str(choices[options.index(s)])
        return str(_most_similar(s, choices)) if choices else s
    try:
        if answer_type == "integer":
            return str(int(float(extraction)))
        if answer_type == "float":
            return str(round(float(extraction), int(precision or 0)))
    except (TypeError, ValueError):
        return None
    return str(extraction)


def mathvista_score(prediction: str, answer: str, *, choices: Sequence[str] | None,
                    question_type: str | None, answer_type: str | None,
                    precision: float | None) -> float:
    extraction = mathvista_extract(prediction, question_type, answer_type)
    normalized = mathvista_normalize(extraction, choices, question_type, answer_type, precision)
    return float(normalized is not None and str(normalized).strip() == str(answer).strip())
