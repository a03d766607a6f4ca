"""Text normalisation and tokenisation exactly as the benchmarks' official scripts do them.

Re-implemented from the scripts' logic (no code taken from them):

- :func:`vqa_punctuation` and :func:`vqa_digits_articles`: the VQA evaluation's answer
  processing (``vqaEval.py``, ``processPunctuation`` / ``processDigitArticle``), which OK-VQA uses
  and OmniSearch's DynVQA ``evaluate.py`` applies to predictions. Its quirks are kept: a
  punctuation mark is deleted (not replaced by a space) when that mark stands next to a space
  somewhere in the text, or when the text holds a digit-comma-digit anywhere; the apostrophe,
  colon and ``#$%&*|~^`` are not punctuation there; a
  period is deleted unless a digit follows, at most 32 times; contractions written without
  their apostrophe are given it back (``dont`` → ``don't``);
- :func:`squad_normalize`: InfoSeek's ``normalize_answer`` (ASCII punctuation, articles);
- :func:`evqa_normalize`: Encyclopedic-VQA's ``preprocess_answer`` (its punctuation set adds
  ``‘’´`_``; "the answer is" goes with the articles; digits and yes/no words mapped);
- :func:`word_tokens`: NLTK's word tokeniser, which DynVQA's English scoring uses (nltk's own
  Treebank tokeniser when ``nltk`` is installed, else a regex re-implementation of its rules for
  short answers); :func:`zh_tokens`: jieba, for DynVQA's Chinese scoring.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

ARTICLES = ("a", "an", "the")
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}

# Contracted forms the VQA evaluation restores when written with one apostrophe missing.
_CONTRACTED = (  # noqa: SIM905 - a word list reads better as text
    "ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've "
    "hasn't haven't he'd he'd've he's how'd how'll how's isn't it'd it'd've it'll ma'am "
    "mightn't mightn't've might've mustn't must've needn't not've o'clock oughtn't 'ow's'at "
    "shan't she'd've should've shouldn't shouldn't've somebody'd've somebody'll somebody's "
    "someone'd someone'd've someone'll someone's something'd something'd've something'll "
    "that's there'd there'd've there're there's they'd they'd've they'll they're they've "
    "'twas wasn't we'd've we've weren't what'll what're what's what've when's where'd where's "
    "where've who'd who'd've who'll who's who've why'll why're why's won't would've wouldn't "
    "wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've"
).split()


def _contractions() -> dict[str, str]:
    table: dict[str, str] = {}
    for word in _CONTRACTED:
        marks = [i for i, ch in enumerate(word) if ch == "'"]
        for i in marks:  # every spelling with exactly one apostrophe left out
            table[word[:i] + word[i + 1:]] = word
    table["somebody'd"] = "somebodyd"  # the official table maps this one the other way round
    return table


CONTRACTIONS = _contractions()
_VQA_PUNCT = tuple(';/[]"{}()=+\\_-><@`,?!')
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")


def vqa_punctuation(text: str) -> str:
    """The VQA evaluation's ``processPunctuation``."""
    out = text
    glue = bool(_COMMA_BETWEEN_DIGITS.search(text))
    for p in _VQA_PUNCT:
        out = out.replace(p, "" if glue or p + " " in text or " " + p in text else " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=32)


def vqa_digits_articles(text: str) -> str:
    """The VQA evaluation's ``processDigitArticle``: lower case, number words to digits, articles
    dropped, contractions restored."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def vqa_clean(text: str) -> str:
    """A prediction as the VQA evaluation compares it (whitespace, punctuation, digits)."""
    s = str(text).replace("\n", " ").replace("\t", " ").strip()
    return vqa_digits_articles(vqa_punctuation(s))


_ASCII_PUNCT = set(string.punctuation)
_EVQA_PUNCT = set(string.punctuation + "‘’´`_")
_EVQA_WORDS = {**NUMBER_WORDS, "entailment": "yes", "true": "yes", "contradiction": "no",
               "false": "no"}


def squad_normalize(text: str) -> str:
    """InfoSeek's ``normalize_answer``: lower case, ASCII punctuation and articles removed,
    whitespace collapsed."""
    s = "".join(ch for ch in str(text).lower() if ch not in _ASCII_PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def evqa_normalize(text: str) -> str:
    """Encyclopedic-VQA's ``preprocess_answer``."""
    s = str(text).lower().replace("\n", " ").replace("\t", " ").strip()
    if s.startswith("<extra_id_0> "):
        s = s.replace("<extra_id_0> ", "")
    s = "".join(ch for ch in s if ch not in _EVQA_PUNCT)
    s = re.sub(r"\b(the answer is|a|an|the)\b", " ", s)
    words = [CONTRACTIONS.get(_EVQA_WORDS.get(w, w), _EVQA_WORDS.get(w, w)) for w in s.split()]
    return " ".join(words)


# --- tokenisers ------------------------------------------------------------------------------

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(a), b) for a, b in (
    (r'^"', " `` "), (r"(``)", r" \1 "), (r'([ (\[{<])("|\'{2})', r"\1 `` "),
    (r"([«“‘„]|`+)", r" \1 "), (r"(?i)(')(?!re|ve|ll|m|t|s|d|n)(\w)\b", r"\1 \2"),
    (r"([:,])([^\d])", r" \1 \2"), (r"([:,])$", r" \1 "), (r"\.{2,}", r" \g<0> "),
    (r"[;@#$%&]", r" \g<0> "), (r'([^.])(\.)([\]\)}>"\']*)\s*$', r"\1 \2 \3 "),
    (r"[?!]", r" \g<0> "), (r"([^'])' ", r"\1 ' "),
    (r"[\]\[(){}<>]", r" \g<0> "), (r"--", r" -- "),
    (r"([»”’])", r" \1 "), (r"''", " '' "), (r'"', " '' "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
    (r"(?i)\b(can)(not)\b", r" \1 \2 "), (r"(?i)\b(gon)(na)\b", r" \1 \2 "),
    (r"(?i)\b(got)(ta)\b", r" \1 \2 "), (r"(?i)\b(wan)(na)\s", r" \1 \2 "),
))


def _regex_word_tokens(text: str) -> list[str]:
    s = f" {text} "
    for pattern, repl in _RULES:
        s = pattern.sub(repl, s)
    return s.split()


@lru_cache(maxsize=1)
def _nltk_tokenizer():
    try:
        from nltk.tokenize import NLTKWordTokenizer
    except ImportError:
        return None
    return NLTKWordTokenizer()


def word_tokens(text: str) -> list[str]:
    """NLTK word tokens of ``text`` (one sentence: Punkt's sentence split, which needs a data
    download, is not run; for short answers it changes nothing)."""
    tok = _nltk_tokenizer()
    return tok.tokenize(text) if tok is not None else _regex_word_tokens(text)


def zh_tokens(text: str) -> list[str]:
    """jieba's segmentation (needs ``pip install jieba``: DynVQA's Chinese scoring uses it)."""
    try:
        import jieba
    except ImportError:
        from deepmmsearch.registry import missing_dependency

        raise missing_dependency("jieba", "eval", "DynVQA's Chinese token recall") from None
    jieba.setLogLevel(60)
    return " ".join(jieba.cut(text)).split()
