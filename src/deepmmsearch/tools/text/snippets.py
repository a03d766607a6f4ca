"""Query words and snippets shared by the text backends.

``query_words`` reduces any query (an LLM's, with quotes, colons or operators) to its words;
``best_passage`` picks the window of a document that best covers them, trimmed to a length:

    best_passage(page_text, term_variants(query_words("great egret wingspan")), 300, title)
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+")
_MAX_QUERY_WORDS = 32


def query_words(query: str) -> list[str]:
    """The words of a query, lower-cased; punctuation and query-language syntax are dropped."""
    return _WORD.findall(query.lower())[:_MAX_QUERY_WORDS]


def term_variants(words: list[str]) -> dict[str, str]:
    """Map each query word's singular stem to the word (``egrets`` → ``{"egret": "egrets"}``);
    :func:`best_passage` matches a stem followed by nothing, ``s`` or ``es``."""
    return {s_stem(w): w for w in words if w}


def s_stem(word: str) -> str:
    """Harman's S-stemmer: plural to singular (``egrets`` → ``egret``, ``flies`` → ``fly``)."""
    if len(word) > 3 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if len(word) > 2 and word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def _find_terms(lower: str, terms: dict[str, str]) -> list[tuple[int, str]]:
    """(position, query word) of every whole-word occurrence of a stem (+ "", "s" or "es")."""
    found = []
    n = len(lower)
    for stem, base in terms.items():
        i = lower.find(stem)
        while i >= 0:
            j = i + len(stem)
            if i == 0 or not lower[i - 1].isalnum():
                for suffix in ("", "s", "es"):
                    k = j + len(suffix)
                    if lower.startswith(suffix, j) and (k >= n or not lower[k].isalnum()):
                        found.append((i, base))
                        break
            i = lower.find(stem, j)
    found.sort()
    return found


def best_passage(text: str, terms: dict[str, str], max_chars: int = 300, title: str = "") -> str:
    """The ``max_chars`` window of ``text`` that best covers the query, trimmed at word bounds.

    A window scores the distinct query words it holds, each weighted by 1 / (its count in the
    document), and by 1/4 when the title already shows it — so the snippet adds what the title
    and the rest of the page do not (for "great egret wingspan" on the egret page: the wingspan
    sentence, not the first line). Matching uses ``str.find`` per query word (C speed).
    """
    if len(text) <= max_chars:
        return " ".join(text.split())
    found = _find_terms(text.lower(), terms)
    counts: dict[str, int] = {}
    for _, base in found:
        counts[base] = counts.get(base, 0) + 1
    in_title = {terms[t] for t in map(s_stem, query_words(title)) if t in terms}
    weight = {b: (0.25 if b in in_title else 1.0) / c for b, c in counts.items()}
    lead = min(40, max_chars // 8)
    best, start = 0.0, 0
    for i, (pos, _) in enumerate(found):  # windows that open a little before each match
        lo = max(0, pos - lead)
        inside = {b for p, b in found[i:] if p < lo + max_chars - 10}
        score = sum(weight[b] for b in inside)
        if score > best + 1e-9:
            best, start = score, lo
    start = max(0, min(start, len(text) - max_chars))
    end = start + max_chars
    if start > 0:  # snap to word boundaries
        cut = text.find(" ", start)
        start = cut + 1 if 0 <= cut < start + lead else start
    if end < len(text):
        cut = text.rfind(" ", start, end)
        end = cut if cut > start else end
    body = " ".join(text[start:end].split())
    return ("… " if start > 0 else "") + body + (" …" if end < len(text) else "")
