"""A deterministic synthetic corpus for the text-index benchmark and tests.

Documents are short "encyclopedia" passages whose words follow a Zipf law over a fixed vocabulary:
the head of the vocabulary is English function words (as in real text, where "the", "of", "and"
dominate), the rest is generated pronounceable words. Queries are 3–5 words drawn from a random
document, so every query has at least one relevant document.

    from text_corpus import write_corpus, make_queries
    write_corpus("corpus.jsonl", n_docs=10_000, seed=0)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_FUNCTION_TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there one all we their has been would had more when if "
    "will who its so no can them other into than only some could also these two may first then "
    "do any like my now over such our man me even most made after many where before through "
    "back much should well people down own just because good each those how very being here "
    "between both under never same another while last might us great old year off come since "
    "against go came right used take three"
)
FUNCTION_WORDS = _FUNCTION_TEXT.split()

_ONSETS = "b c d f g h j k l m n p r s t v w z br cr dr fr gr pl st tr sh ch th".split()  # noqa: SIM905
_VOWELS = "a e i o u ai ea io ou".split()  # noqa: SIM905
_CODAS = ["", "", "n", "r", "s", "l", "m", "x", "nd", "st"]


def make_vocabulary(size: int = 60_000, seed: int = 0) -> list[str]:
    """Function words first, then unique generated words of 2–4 syllables."""
    rng = np.random.default_rng(seed)
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < size:
        n_syl = int(rng.integers(2, 5))
        w = "".join(
            _ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
            for _ in range(n_syl)
        ) + _CODAS[rng.integers(len(_CODAS))]
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def _zipf_probs(n: int, s: float = 1.0) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** s
    return p / p.sum()


def generate_docs(n_docs: int, seed: int = 0, mean_words: int = 50, vocab_size: int = 60_000):
    """Yield corpus rows ``{id, title, text, url}``; deterministic for a given seed."""
    vocab = np.array(make_vocabulary(vocab_size, seed), dtype=object)
    probs = _zipf_probs(len(vocab))
    rng = np.random.default_rng(seed + 1)
    chunk = 10_000
    for start in range(0, n_docs, chunk):
        n = min(chunk, n_docs - start)
        lengths = rng.integers(mean_words // 2, mean_words * 3 // 2 + 1, size=n)
        words = rng.choice(len(vocab), size=int(lengths.sum()), p=probs)
        # titles come from the tail of the vocabulary (names are rare words)
        titles = rng.integers(len(FUNCTION_WORDS) + 500, len(vocab), size=(n, 2))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        for i in range(n):
            doc_id = start + i
            text = " ".join(vocab[words[offsets[i]:offsets[i + 1]]])
            title = " ".join(vocab[titles[i]]).title()
            yield {"id": f"d{doc_id}", "title": title, "text": text.capitalize() + ".",
                   "url": f"https://example.org/wiki/{doc_id}"}


def write_corpus(path: str | Path, n_docs: int, seed: int = 0, mean_words: int = 50) -> Path:
    path = Path(path)
    with path.open("w", encoding="utf-8") as fh:
        for row in generate_docs(n_docs, seed, mean_words):
            fh.write(json.dumps(row) + "\n")
    return path


def make_queries(corpus: str | Path, n_queries: int, seed: int = 0) -> list[str]:
    """Queries of 3–5 words taken from random documents of a corpus file."""
    rng = np.random.default_rng(seed + 2)
    with Path(corpus).open(encoding="utf-8") as fh:
        n_docs = sum(1 for _ in fh)
    wanted = rng.integers(0, n_docs, size=n_queries)
    wanted_set = set(wanted.tolist())
    rows: dict[int, list[str]] = {}
    with Path(corpus).open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i in wanted_set:
                row = json.loads(line)
                rows[i] = (row["title"] + " " + row["text"].rstrip(".")).lower().split()
    out = []
    for d in wanted.tolist():
        toks = rows[d]
        n = min(int(rng.integers(3, 6)), len(toks))
        idx = sorted(rng.choice(len(toks), size=n, replace=False).tolist())
        out.append(" ".join(toks[j] for j in idx))
    return out
