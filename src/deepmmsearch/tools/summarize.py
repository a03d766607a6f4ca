"""The Summarizer role: turns the top-k hits into the text placed inside ``<information>``.

- ``extractive`` (offline default): deterministic and query-focused. It scores every sentence of
  the hits by overlap with the query (each word counts twice) and the question (titles count as
  sentences; the query is what this search is for, the question may ask more), keeps the best
  ones in their original order, up to ``max_sentences_text`` (text hits) or
  ``max_sentences_image`` (image hits), each tagged with the title of its page.
- ``llm``: asks a Policy to summarise with the E.7 prompt structure (about ten sentences for text
  hits, four or five for image hits).
- ``none``: the hits verbatim (title: snippet), for tiny models and debugging.
"""

from __future__ import annotations

import re
from typing import Any

from deepmmsearch.types import Message, SearchHit

_SENT = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = ("a an the of in on at to for by with and or is are was were be been what which who "
               "whom whose when where why how this that these those it its from as do does did")
_STOP = frozenset(_STOP_WORDS.split())


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


class ExtractiveSummarizer:
    name = "extractive"

    def __init__(self, max_sentences_text: int = 10, max_sentences_image: int = 5,
                 max_chars: int = 2000) -> None:
        self.max_sentences = {"text": max_sentences_text, "image": max_sentences_image}
        self.max_chars = max_chars

    async def summarize(self, kind: str, question: str, query: str, hits: list[SearchHit]) -> str:
        return self.summarize_sync(kind, question, query, hits)

    def summarize_sync(self, kind: str, question: str, query: str, hits: list[SearchHit]) -> str:
        asked = _terms(query)
        context = _terms(question) - asked
        cands: list[tuple[float, int, int, str]] = []  # (score, hit rank, position, sentence)
        for rank, h in enumerate(hits):
            sents = [s.strip() for s in _SENT.split(h.snippet or "") if s.strip()]
            if kind == "image" or not sents:
                sents = [h.title] + sents
            for pos, s in enumerate(sents):
                terms = _terms(s)
                overlap = 2 * len(terms & asked) + len(terms & context)
                # earlier hits and earlier sentences win ties; image titles always count
                score = overlap + (1.0 if kind == "image" and pos == 0 else 0.0) - 0.01 * rank
                cands.append((score, rank, pos, s))
        n = self.max_sentences.get(kind, 5)
        best = sorted(cands, key=lambda c: (-c[0], c[1], c[2]))[:n]
        best.sort(key=lambda c: (c[1], c[2]))
        out, size = [], 0
        for _, rank, _, s in best:
            title = hits[rank].title
            line = s if kind == "image" and s == title else f"{title}: {s}"
            if size + len(line) > self.max_chars:
                break
            out.append(line)
            size += len(line) + 1
        return "\n".join(out)


class PassthroughSummarizer:
    name = "none"

    def __init__(self, max_chars: int = 2000) -> None:
        self.max_chars = max_chars

    async def summarize(self, kind: str, question: str, query: str, hits: list[SearchHit]) -> str:
        return "\n".join(f"{h.title}: {h.snippet}".strip() for h in hits)[: self.max_chars]


class LLMSummarizer:
    """Summarise through any Policy (e.g. an ``openai`` backend) with the E.7 structure."""

    name = "llm"

    def __init__(self, model: dict[str, Any] | None = None, policy: Any = None,
                 prompts: Any = None, max_new_tokens: int = 512) -> None:
        from deepmmsearch.prompts import PAPER
        from deepmmsearch.registry import POLICY

        if model is not None:
            self.policy = POLICY.build(model)
        elif policy is not None:
            self.policy = policy
        else:
            from deepmmsearch.registry import ConfigError

            raise ConfigError("summarizer 'llm' needs 'model' (a policy spec, e.g. {name: openai, model: ...})")
        self.prompts = prompts or PAPER
        self.max_new_tokens = max_new_tokens

    def render(self, kind: str, question: str, query: str, hits: list[SearchHit]) -> str:
        if kind == "image":
            results = "\n".join(f"{i + 1}. {h.title} — {h.snippet} ({h.url})" for i, h in enumerate(hits))
            return self.prompts.summarize_image.format(original_question=question, formatted_results=results)
        refs = "\n\n".join(f"[{i + 1}] {h.title} ({h.url})\n{h.snippet}" for i, h in enumerate(hits))
        return self.prompts.summarize_text.format(original_question=question, query=query, references_text=refs)

    async def summarize(self, kind: str, question: str, query: str, hits: list[SearchHit]) -> str:
        from deepmmsearch.policies.base import GenerationRequest

        req = GenerationRequest([Message("user", self.render(kind, question, query, hits))],
                                max_new_tokens=self.max_new_tokens, stop=())
        gen = await self.policy.generate(req)
        return gen.text.strip()
