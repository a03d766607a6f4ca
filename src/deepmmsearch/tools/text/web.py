"""Web text-search backends: ``searxng``, ``serpapi``, ``serper``, ``brave`` and ``http``.

Configure one in an agent config, e.g.::

    text_search: {name: searxng, base_url: http://localhost:8888}
    text_search: {name: serpapi}                 # key from $SERPAPI_API_KEY
    text_search: {name: serper, gl: us}          # key from $SERPER_API_KEY
    text_search: {name: brave, rate_per_s: 1}    # key from $BRAVE_API_KEY (free tier: 1 req/s)
    text_search: {name: http, base_url: http://127.0.0.1:8000}   # Search-R1 style /retrieve

API keys come only from environment variables, read when the backend is built (``api_key_env``
names another variable); a missing key is a :class:`~deepmmsearch.registry.ConfigError` naming
the variable. Keys are never logged, never part of a cache key (the cache knows backends by
their registry name) and never in a trajectory. Every backend takes ``timeout_s`` (the deadline of one
whole attempt, body included), ``retries`` (total attempts for 429/5xx), ``rate_per_s`` and
``max_response_bytes`` (decoded body cap, 8 MiB); failures raise
:class:`~deepmmsearch.tools.base.ToolError` (see :mod:`deepmmsearch.tools.http`). "No results"
is an empty list, not an error.
"""

from __future__ import annotations

import html
import os
import re
from typing import Any

from deepmmsearch.jsontext import scrub
from deepmmsearch.registry import ConfigError
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpClient,
    RetryPolicy,
    register_secret,
)
from deepmmsearch.tools.text.snippets import best_passage, query_words, term_variants
from deepmmsearch.types import SearchHit

_TAG = re.compile(r"<[^>]+>")
SNIPPET_CHARS = 400


def clean_text(value: Any) -> str:
    """Plain text from an API string that may hold HTML tags (<strong>) or entities."""
    if not isinstance(value, str):
        return ""
    return " ".join(scrub(html.unescape(_TAG.sub("", value))).split())


def read_key(env: str, backend: str, *, required: bool = True) -> str | None:
    key = os.environ.get(env, "").strip() or None
    if key is None and required:
        raise ConfigError(f"text_search {backend!r} needs an API key: set the environment "
                          f"variable {env}")
    register_secret(key)
    return key


def _hit(title: Any, url: Any, snippet: Any, **extra: Any) -> SearchHit | None:
    url = url if isinstance(url, str) else ""
    title = clean_text(title)
    if not url and not title:
        return None
    return SearchHit(title=title or url, url=url, snippet=clean_text(snippet)[:SNIPPET_CHARS],
                     **{k: v for k, v in extra.items() if v is not None})


def _rows(data: Any, *path: str) -> list[dict]:
    """``data[path[0]][path[1]]...`` when it is a list of objects; [] when absent; else an error."""
    cur = data
    for key in path:
        if not isinstance(cur, dict):
            raise ToolError(f"unexpected response shape: expected an object at {'.'.join(path)}")
        cur = cur.get(key)
        if cur is None:
            return []
    if not isinstance(cur, list):
        raise ToolError(f"unexpected response shape: {'.'.join(path)} is not a list")
    return [r for r in cur if isinstance(r, dict)]


class _WebTextSearch:
    name = "web"

    def __init__(self, base_url: str, *, timeout_s: float, retries: int,
                 rate_per_s: float | None, headers: dict[str, str] | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = HttpClient(self.name, timeout_s=timeout_s, retry=RetryPolicy(attempts=retries),
                                 rate_per_s=rate_per_s, headers=headers,
                                 max_response_bytes=max_response_bytes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        if not query.strip() or k <= 0:
            return []
        data = await self._fetch(query, k)
        try:
            hits = self._parse(data, query)
        except ToolError as exc:
            raise ToolError(f"{self.name}: {exc}") from None
        return [h for h in hits if h is not None][:k]

    async def _fetch(self, query: str, k: int) -> Any:
        raise NotImplementedError

    def _parse(self, data: Any, query: str) -> list[SearchHit | None]:
        raise NotImplementedError


class SearxngTextSearch(_WebTextSearch):
    """A SearXNG instance's JSON API (``json`` must be enabled in its ``search.formats``)."""

    name = "searxng"

    def __init__(self, base_url: str = "http://localhost:8888", categories: str | None = None,
                 engines: str | None = None, language: str | None = None,
                 time_range: str | None = None, safesearch: int | None = None,
                 api_key_env: str = "SEARXNG_API_KEY", timeout_s: float = 15.0, retries: int = 3,
                 rate_per_s: float | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        key = read_key(api_key_env, self.name, required=False)  # for instances behind a proxy
        super().__init__(base_url, timeout_s=timeout_s, retries=retries, rate_per_s=rate_per_s,
                         max_response_bytes=max_response_bytes,
                         headers={"Authorization": f"Bearer {key}"} if key else None)
        self.params = {"categories": categories, "engines": engines, "language": language,
                       "time_range": time_range, "safesearch": safesearch}

    async def _fetch(self, query: str, k: int) -> Any:
        return await self.client.request_json(
            "GET", f"{self.base_url}/search", params={"q": query, "format": "json", **self.params})

    def _parse(self, data: Any, query: str) -> list[SearchHit | None]:
        return [_hit(r.get("title"), r.get("url"), r.get("content"),
                     date=r.get("publishedDate") or None,
                     thumbnail=r.get("thumbnail") or r.get("img_src") or None,
                     score=r.get("score") if isinstance(r.get("score"), (int, float)) else None)
                for r in _rows(data, "results")]


class SerpApiTextSearch(_WebTextSearch):
    """SerpApi (``engine=google`` by default): ``organic_results``; key from $SERPAPI_API_KEY."""

    name = "serpapi"

    def __init__(self, engine: str = "google", location: str | None = None, gl: str | None = None,
                 hl: str | None = None, google_domain: str | None = None, safe: str | None = None,
                 no_cache: bool = False, base_url: str = "https://serpapi.com",
                 api_key_env: str = "SERPAPI_API_KEY", timeout_s: float = 30.0, retries: int = 3,
                 rate_per_s: float | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self._key = read_key(api_key_env, self.name)
        super().__init__(base_url, timeout_s=timeout_s, retries=retries, rate_per_s=rate_per_s,
                         max_response_bytes=max_response_bytes)
        self.params = {"engine": engine, "location": location, "gl": gl, "hl": hl,
                       "google_domain": google_domain, "safe": safe,
                       "no_cache": "true" if no_cache else None}

    async def _fetch(self, query: str, k: int) -> Any:
        return await self.client.request_json(
            "GET", f"{self.base_url}/search.json",
            params={"q": query, **self.params, "api_key": self._key})

    def _parse(self, data: Any, query: str) -> list[SearchHit | None]:
        if isinstance(data, dict) and data.get("error"):
            err = str(data["error"])
            if "hasn't returned any results" in err or "no results" in err.lower():
                return []  # SerpApi reports "no results" as an error string with status Success
            raise ToolError(f"API error: {err[:200]}")
        return [_hit(r.get("title"), r.get("link"), r.get("snippet"), date=r.get("date"),
                     thumbnail=r.get("thumbnail"))
                for r in _rows(data, "organic_results")]


class SerperTextSearch(_WebTextSearch):
    """serper.dev Google search (``POST /search``): ``organic``; key from $SERPER_API_KEY."""

    name = "serper"

    def __init__(self, gl: str | None = None, hl: str | None = None, location: str | None = None,
                 base_url: str = "https://google.serper.dev", api_key_env: str = "SERPER_API_KEY",
                 timeout_s: float = 30.0, retries: int = 3, rate_per_s: float | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        key = read_key(api_key_env, self.name)
        super().__init__(base_url, timeout_s=timeout_s, retries=retries, rate_per_s=rate_per_s,
                         max_response_bytes=max_response_bytes,
                         headers={"X-API-KEY": key or ""})
        self.options = {k: v for k, v in {"gl": gl, "hl": hl, "location": location}.items() if v}

    async def _fetch(self, query: str, k: int) -> Any:
        return await self.client.request_json(
            "POST", f"{self.base_url}/search", json_body={"q": query, "num": max(k, 10), **self.options})

    def _parse(self, data: Any, query: str) -> list[SearchHit | None]:
        return [_hit(r.get("title"), r.get("link"), r.get("snippet"), date=r.get("date"),
                     thumbnail=r.get("imageUrl"))
                for r in _rows(data, "organic")]


class BraveTextSearch(_WebTextSearch):
    """Brave Search API web search: ``web.results``; key from $BRAVE_API_KEY."""

    name = "brave"

    def __init__(self, country: str | None = None, search_lang: str | None = None,
                 safesearch: str | None = None, freshness: str | None = None,
                 extra_snippets: bool = False,
                 base_url: str = "https://api.search.brave.com/res/v1",
                 api_key_env: str = "BRAVE_API_KEY", timeout_s: float = 15.0, retries: int = 3,
                 rate_per_s: float | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        key = read_key(api_key_env, self.name)
        super().__init__(base_url, timeout_s=timeout_s, retries=retries, rate_per_s=rate_per_s,
                         max_response_bytes=max_response_bytes,
                         headers={"X-Subscription-Token": key or ""})
        self.params = {"country": country, "search_lang": search_lang, "safesearch": safesearch,
                       "freshness": freshness, "extra_snippets": "true" if extra_snippets else None}

    async def _fetch(self, query: str, k: int) -> Any:
        return await self.client.request_json(
            "GET", f"{self.base_url}/web/search",
            params={"q": query, "count": min(20, max(1, k)), **self.params})

    def _parse(self, data: Any, query: str) -> list[SearchHit | None]:
        hits = []
        for r in _rows(data, "web", "results"):
            thumb = r.get("thumbnail")
            extra = " ".join(clean_text(s) for s in r.get("extra_snippets") or [] if isinstance(s, str))
            hits.append(_hit(r.get("title"), r.get("url"),
                             " ".join(filter(None, [clean_text(r.get("description")), extra])),
                             date=r.get("page_age") or r.get("age"),
                             thumbnail=thumb.get("src") if isinstance(thumb, dict) else None))
        return hits


class RetrieverTextSearch(_WebTextSearch):
    """A Search-R1 style retriever server: ``POST {base_url}/retrieve``.

    Request ``{"queries": [q], "topk": k, "return_scores": true}``; response
    ``{"result": [[{"document": {"id", "contents"}, "score"}]]}`` where ``contents`` is a quoted
    title line followed by the passage (documents with ``title``/``text``/``url`` work too).
    """

    name = "http"

    def __init__(self, base_url: str = "http://127.0.0.1:8000", path: str = "/retrieve",
                 api_key_env: str = "RETRIEVER_API_KEY", snippet_chars: int = SNIPPET_CHARS,
                 timeout_s: float = 30.0, retries: int = 3, rate_per_s: float | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        key = read_key(api_key_env, self.name, required=False)
        super().__init__(base_url, timeout_s=timeout_s, retries=retries, rate_per_s=rate_per_s,
                         max_response_bytes=max_response_bytes,
                         headers={"Authorization": f"Bearer {key}"} if key else None)
        self.path = "/" + path.lstrip("/")
        self.snippet_chars = snippet_chars

    async def _fetch(self, query: str, k: int) -> Any:
        return await self.client.request_json(
            "POST", self.base_url + self.path,
            json_body={"queries": [query], "topk": k, "return_scores": True})

    def _parse(self, data: Any, query: str) -> list[SearchHit | None]:
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise ToolError("unexpected response shape: no 'result' list")
        batch = data["result"]
        if not batch:
            return []
        rows = batch[0] if isinstance(batch[0], list) else []
        terms = term_variants(query_words(query))
        return [self._doc_hit(row, terms) for row in rows]

    def _doc_hit(self, row: Any, terms: frozenset[str]) -> SearchHit | None:
        if not isinstance(row, dict):
            return None
        doc = row.get("document", row)  # return_scores=false servers send bare documents
        if not isinstance(doc, dict):
            return None
        title, text = doc.get("title"), doc.get("text")
        if text is None and isinstance(doc.get("contents"), str):
            head, _, rest = doc["contents"].partition("\n")
            title, text = title or head.strip().strip('"'), rest
        doc_id = doc.get("id", doc.get("doc_id"))
        url = doc.get("url") or (f"doc:{doc_id}" if doc_id is not None else "")
        score = row.get("score")
        return _hit(title, url, best_passage(clean_text(text), terms, self.snippet_chars, clean_text(title)),
                    score=float(score) if isinstance(score, (int, float)) else None)
