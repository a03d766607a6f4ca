"""``POST /retrieve`` in the shape of Search-R1's retrieval server, over any TextSearch backend.

Request: ``{"queries": ["...", ...], "topk": 3, "return_scores": true}``. Response: ``{"result":
[per query: [...]]}`` where each item is ``{"document": DOC, "score": float}`` when
``return_scores`` is true and the bare ``DOC`` otherwise (as Search-R1 does). A ``DOC`` is
``{"id", "contents", "title", "text", "url"}`` with ``contents`` = the quoted title, a newline,
then the text — the layout of Search-R1's wiki corpus, which its clients split on the first
newline. With a local ``bm25`` index the id is the corpus id; raise the backend's
``snippet_chars`` to return whole passages. A backend without scores gets the
reciprocal rank (1, 1/2, 1/3, ...), so the order is kept and the field is always a number.

Other RL stacks point their search URL at ``http://HOST:PORT/retrieve`` to use our indexes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from deepmmsearch.serve.security import ApiError, check_question, parse_json_body
from deepmmsearch.tools.base import TextSearch
from deepmmsearch.types import SearchHit


def hit_document(hit: SearchHit, rank: int) -> dict[str, Any]:
    """A hit as a Search-R1 document. A local index's ``doc:<id>`` URL gives back the corpus id."""
    title, text = hit.title.strip(), hit.snippet.strip()
    url = hit.url or ""
    doc_id = url[4:] if url.startswith("doc:") else (url or f"rank-{rank}")
    return {
        "id": doc_id,
        "contents": f'"{title}"\n{text}',
        "title": title,
        "text": text,
        "url": None if url.startswith("doc:") else (url or None),
    }


def parse_request(body: bytes, *, default_topk: int, max_queries: int, max_topk: int,
                  max_query_chars: int = 4000) -> tuple[list[str], int, bool]:
    """Validate a /retrieve body → (queries, topk, return_scores); ApiError(400) when malformed."""
    data = parse_json_body(body)
    if not isinstance(data, dict):
        raise ApiError(400, 'the body must be a JSON object like {"queries": ["..."], "topk": 3}')
    unknown = set(data) - {"queries", "topk", "return_scores"}
    if unknown:
        raise ApiError(400, f"unknown field(s) {sorted(unknown)}; fields: queries, topk, "
                       "return_scores")
    queries = data.get("queries")
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise ApiError(400, "'queries' must be a list of strings")
    if not 1 <= len(queries) <= max_queries:
        raise ApiError(400, f"send between 1 and {max_queries} queries, got {len(queries)}")
    for i, q in enumerate(queries):
        check_question(q, max_query_chars, f"queries[{i}]")
    topk = data.get("topk")
    if topk is None:
        topk = default_topk
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= max_topk:
        raise ApiError(400, f"'topk' must be an integer in 1..{max_topk}, got {topk!r}")
    scores = data.get("return_scores", False)
    if not isinstance(scores, bool):
        raise ApiError(400, f"'return_scores' must be true or false, got {scores!r}")
    return queries, topk, scores


class Retriever:
    """Batch retrieval over one TextSearch backend, a bounded number of queries at a time."""

    def __init__(self, backend: TextSearch, *, concurrency: int = 8) -> None:
        self.backend = backend
        self.concurrency = max(1, concurrency)

    async def retrieve(self, queries: list[str], topk: int,
                       return_scores: bool) -> list[list[dict[str, Any]]]:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(query: str) -> list[dict[str, Any]]:
            if not query.strip():
                return []
            async with sem:
                try:
                    hits = await self.backend.search(query, topk)
                except Exception as exc:  # noqa: BLE001 - a backend failure is a 502 answer, not a 500
                    raise ApiError(502, f"the text backend {self.backend.name!r} failed on "
                                   f"{query!r}: {exc}", "backend_error", "backend_failed") from None
            out = []
            for rank, hit in enumerate(hits[:topk], start=1):
                doc = hit_document(hit, rank)
                score = float(hit.score) if hit.score is not None else 1.0 / rank
                out.append({"document": doc, "score": score} if return_scores else doc)
            return out

        return list(await asyncio.gather(*(one(q) for q in queries)))
