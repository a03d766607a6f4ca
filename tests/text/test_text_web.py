"""Web text-search backends against recorded responses served by a local HTTP server."""

from __future__ import annotations

import logging
import time

import pytest

from deepmmsearch.registry import TEXT_SEARCH, ConfigError
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.http import RateLimiter, RetryPolicy, parse_retry_after

from .text_mock_server import Reply, recorded

KEY = "sk-test-SECRET-4242"
ENV = {"serpapi": "SERPAPI_API_KEY", "serper": "SERPER_API_KEY", "brave": "BRAVE_API_KEY"}
# backend -> (method, path, success fixture, empty fixture)
API = {
    "searxng": ("GET", "/search", "searxng.json", "searxng_empty.json"),
    "serpapi": ("GET", "/search.json", "serpapi_google.json", "serpapi_no_results.json"),
    "serper": ("POST", "/search", "serper.json", "serper_empty.json"),
    "brave": ("GET", "/web/search", "brave.json", "brave_empty.json"),
    "http": ("POST", "/retrieve", "retriever.json", "retriever_empty.json"),
}


def make(name: str, server, monkeypatch, **options):
    if name in ENV:
        monkeypatch.setenv(ENV[name], KEY)
    backend = TEXT_SEARCH.build({"name": name, "base_url": server.url, **options})
    backend.client.retry = RetryPolicy(attempts=3, base_s=0.01, max_s=0.05, max_retry_after_s=2)
    return backend


def serve(server, name: str, *replies: Reply) -> None:
    method, path, _, _ = API[name]
    server.route(method, path, *replies)


@pytest.mark.parametrize("name", sorted(API))
async def test_success_parses_recorded_response(name, web_server, monkeypatch):
    serve(web_server, name, recorded(API[name][2]))
    hits = await make(name, web_server, monkeypatch).search("great egret wingspan", 2)
    assert len(hits) == 2
    assert hits[0].title.startswith("Great egret")
    assert hits[0].url.startswith("https://en.wikipedia.org/wiki/Great_egret") or hits[0].url == "doc:5218931"
    assert "131" in hits[0].snippet and "<strong>" not in hits[0].snippet
    assert all(h.snippet for h in hits)


async def test_requests_carry_query_and_key_where_each_api_wants_it(web_server, monkeypatch):
    for name in API:
        serve(web_server, name, recorded(API[name][2]))
        await make(name, web_server, monkeypatch).search("great egret", 3)
    by_path = {(r.method, r.path): r for r in web_server.requests}
    sx = by_path["GET", "/search"]
    assert sx.query == {"q": "great egret", "format": "json"}
    sp = by_path["GET", "/search.json"]
    assert sp.query["q"] == "great egret" and sp.query["engine"] == "google" and sp.query["api_key"] == KEY
    se = by_path["POST", "/search"]
    assert se.headers["x-api-key"] == KEY and se.body["q"] == "great egret"
    br = by_path["GET", "/web/search"]
    assert br.headers["x-subscription-token"] == KEY and br.query["count"] == "3"
    rt = by_path["POST", "/retrieve"]
    assert rt.body == {"queries": ["great egret"], "topk": 3, "return_scores": True}


async def test_brave_and_retriever_details(web_server, monkeypatch):
    serve(web_server, "brave", recorded("brave.json"))
    hits = await make("brave", web_server, monkeypatch).search("great egret wingspan", 5)
    assert hits[0].snippet.endswith("131 to 170 cm & it weighs about 1 kg.")
    assert hits[0].thumbnail == "https://imgs.search.brave.com/egret-thumb.jpg"
    assert "Wingspan: 51.6 in (131 cm)" in hits[1].snippet  # extra_snippets appended
    serve(web_server, "http", recorded("retriever.json"))
    hits = await make("http", web_server, monkeypatch, snippet_chars=120).search("wingspan", 5)
    assert [h.title for h in hits] == ["Great egret", "Egret", "Heron"]
    assert "wingspan of 131 to 170 cm" in hits[0].snippet and len(hits[0].snippet) <= 125
    assert hits[0].score == pytest.approx(0.8731) and hits[2].url == "https://en.wikipedia.org/wiki/Heron"


@pytest.mark.parametrize("name", sorted(API))
async def test_no_results_is_zero_hits(name, web_server, monkeypatch):
    serve(web_server, name, recorded(API[name][3]))
    assert await make(name, web_server, monkeypatch).search("zxqv nonexistent phrase", 5) == []


@pytest.mark.parametrize("name", ["searxng", "brave", "http"])
async def test_429_with_retry_after_is_honoured(name, web_server, monkeypatch):
    serve(web_server, name, Reply(429, recorded("brave_429.json").body, {"Retry-After": "0.3"}),
          recorded(API[name][2]))
    t0 = time.perf_counter()
    hits = await make(name, web_server, monkeypatch).search("great egret wingspan", 5)
    assert hits and len(web_server.requests) == 2
    assert time.perf_counter() - t0 >= 0.29


async def test_429_without_retry_after_backs_off_then_gives_up(web_server, monkeypatch):
    serve(web_server, "serper", Reply(429, {"message": "Too many requests"}))
    with pytest.raises(ToolError) as err:
        await make("serper", web_server, monkeypatch).search("q", 5)
    assert len(web_server.requests) == 3
    assert err.value.status == 429 and err.value.retryable
    assert "rate limited" in str(err.value) and "after 3 attempts" in str(err.value)


async def test_429_asking_for_a_long_wait_fails_at_once(web_server, monkeypatch):
    serve(web_server, "brave", Reply(429, recorded("brave_429.json").body, {"Retry-After": "3600"}))
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match="wait 3600s"):
        await make("brave", web_server, monkeypatch).search("q", 5)
    assert len(web_server.requests) == 1 and time.perf_counter() - t0 < 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_then_success_is_retried(status, web_server, monkeypatch):
    serve(web_server, "searxng", Reply(status, "<html>upstream error</html>",
                                       {"Content-Type": "text/html"}), recorded("searxng.json"))
    hits = await make("searxng", web_server, monkeypatch).search("great egret", 5)
    assert len(hits) == 3 and len(web_server.requests) == 2


async def test_persistent_5xx_fails_after_all_attempts(web_server, monkeypatch):
    serve(web_server, "http", Reply(503, {"detail": "index loading"}))
    with pytest.raises(ToolError, match=r"HTTP 503 \(server error\) after 3 attempts: index loading"):
        await make("http", web_server, monkeypatch).search("q", 5)
    assert len(web_server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_client_errors_are_never_retried(status, web_server, monkeypatch, caplog):
    serve(web_server, "serpapi", recorded("serpapi_401.json", status))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ToolError) as err:
        await make("serpapi", web_server, monkeypatch).search("great egret", 5)
    assert len(web_server.requests) == 1 and err.value.status == status and not err.value.retryable
    if status == 401:
        assert "check the API key" in str(err.value) and "Invalid API key" in str(err.value)
    assert KEY not in str(err.value)
    assert KEY not in caplog.text  # httpx logs the URL, which carries SerpApi's api_key


async def test_searxng_403_when_json_format_is_disabled(web_server, monkeypatch):
    serve(web_server, "searxng", Reply(403, "Forbidden", {"Content-Type": "text/plain"}))
    with pytest.raises(ToolError, match="searxng: HTTP 403 \\(forbidden\\)"):
        await make("searxng", web_server, monkeypatch).search("q", 5)


async def test_timeout(web_server, monkeypatch):
    serve(web_server, "brave", Reply(200, recorded("brave.json").body, delay_s=1.0))
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match="brave: no response within 0.2s"):
        await make("brave", web_server, monkeypatch, timeout_s=0.2).search("q", 5)
    assert time.perf_counter() - t0 < 0.9 and len(web_server.requests) == 1


@pytest.mark.parametrize("name", sorted(API))
async def test_malformed_json(name, web_server, monkeypatch):
    serve(web_server, name, Reply(200, '{"results": [{"title": "trunc'))
    with pytest.raises(ToolError, match=f"{name}: malformed JSON"):
        await make(name, web_server, monkeypatch).search("q", 5)


@pytest.mark.parametrize("name, body", [("searxng", {"results": "oops"}), ("http", {"answer": 1}),
                                        ("brave", {"web": ["x"]}), ("serpapi", [1, 2])])
async def test_unexpected_shape_is_a_tool_error(name, body, web_server, monkeypatch):
    serve(web_server, name, Reply(200, body))
    with pytest.raises(ToolError, match=f"{name}: .*(unexpected response shape|API error)"):
        await make(name, web_server, monkeypatch).search("q", 5)


async def test_unreachable_server(monkeypatch):
    backend = TEXT_SEARCH.build({"name": "http", "base_url": "http://127.0.0.1:9"})
    with pytest.raises(ToolError, match="http: cannot reach the server"):
        await backend.search("q", 5)


@pytest.mark.parametrize("name", sorted(ENV))
def test_missing_key_is_a_config_error_naming_the_variable(name, monkeypatch):
    monkeypatch.delenv(ENV[name], raising=False)
    with pytest.raises(ConfigError, match=ENV[name]):
        TEXT_SEARCH.build({"name": name})
    with pytest.raises(ConfigError, match="unknown option 'api_key'"):
        TEXT_SEARCH.validate({"name": name, "api_key": "inline keys are refused"})


def test_key_is_not_in_repr(monkeypatch):
    monkeypatch.setenv("SERPER_API_KEY", KEY)
    backend = TEXT_SEARCH.build({"name": "serper"})
    assert KEY not in repr(backend) and KEY not in repr(backend.client)


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


async def test_rate_limiter_spaces_requests():
    limiter = RateLimiter(rate_per_s=50)
    t0 = time.perf_counter()
    for _ in range(6):
        await limiter.acquire()
    assert time.perf_counter() - t0 >= 0.09  # 5 gaps of 20 ms
