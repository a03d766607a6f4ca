"""Reliability, web faults: every keyed backend against hostile servers on 127.0.0.1 — slow drip,
gzip and deflate bombs, huge bodies, corrupt encodings, nesting bombs, cross-origin redirects that
would carry the key away, error bodies that echo the key. Each must end in a ToolError, quickly,
with no key sent or shown."""

from __future__ import annotations

import gzip
import json
import time
import zlib

import pytest

from deepmmsearch.registry import TEXT_SEARCH
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.http import RetryPolicy

from .fault_server import FaultServer, body, drip, redirect
from .text_mock_server import fixture_bytes

KEY = "sk-fault-KEY-0123456789abcdef"
# name -> (path the backend calls, key env, the header or parameter that carries the key)
KEYED = {
    "serper": ("/search", "SERPER_API_KEY", "x-api-key"),
    "brave": ("/web/search", "BRAVE_API_KEY", "x-subscription-token"),
    "serpapi": ("/search.json", "SERPAPI_API_KEY", "api_key"),
    "searxng": ("/search", "SEARXNG_API_KEY", "authorization"),
    "http": ("/retrieve", "RETRIEVER_API_KEY", "authorization"),
}
GOOD = {"serper": "serper.json", "brave": "brave.json", "serpapi": "serpapi_google.json",
        "searxng": "searxng.json", "http": "retriever.json"}


@pytest.fixture
def servers():
    made: list[FaultServer] = []

    def make() -> FaultServer:
        made.append(FaultServer())
        return made[-1]

    yield make
    for s in made:
        s.stop()


def backend(name: str, url: str, monkeypatch, **options):
    monkeypatch.setenv(KEYED[name][1], KEY)
    b = TEXT_SEARCH.build({"name": name, "base_url": url, "retries": 1, **options})
    b.client.retry = RetryPolicy(attempts=1)
    return b


def _leaked(server: FaultServer) -> bool:
    return any(KEY in v for _, path, h in server.seen for v in [path, *h.values()])


@pytest.mark.parametrize("name", sorted(KEYED))
async def test_a_cross_origin_redirect_never_carries_the_key(name, servers, monkeypatch):
    good, evil = servers(), servers()
    evil.on(KEYED[name][0], body(fixture_bytes(GOOD[name])))
    good.on(KEYED[name][0], redirect(evil.url + KEYED[name][0], 307))
    b = backend(name, good.url, monkeypatch)
    with pytest.raises(ToolError, match="another origin") as err:
        await b.search("great egret", 3)
    assert evil.seen == [] and not _leaked(evil)
    assert KEY not in str(err.value)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_same_origin_redirect_is_followed_with_the_key(status, servers, monkeypatch):
    s = servers()
    s.on("/search", redirect("/v2/search", status)).on("/v2/search",
                                                       body(fixture_bytes("serper.json")))
    hits = await backend("serper", s.url, monkeypatch).search("great egret", 2)
    assert hits and s.seen[-1][1].startswith("/v2/search")
    assert s.seen[-1][2]["x-api-key"] == KEY


async def test_a_keyless_backend_may_follow_a_cross_origin_redirect(servers, monkeypatch):
    a, b = servers(), servers()
    b.on("/search", body(fixture_bytes("searxng.json")))
    a.on("/search", redirect(b.url + "/search"))
    monkeypatch.delenv("SEARXNG_API_KEY", raising=False)
    sx = TEXT_SEARCH.build({"name": "searxng", "base_url": a.url})
    assert await sx.search("great egret", 2)


async def test_redirect_loops_stop(servers, monkeypatch):
    s = servers()
    s.on("/search", redirect("/search"))
    with pytest.raises(ToolError, match="redirects"):
        await backend("serper", s.url, monkeypatch).search("q", 2)
    assert len(s.seen) == 4  # the request and three redirects


@pytest.mark.parametrize("name", ["serper", "brave"])
async def test_a_slow_drip_hits_the_deadline(name, servers, monkeypatch):
    s = servers()
    s.on(KEYED[name][0], drip(fixture_bytes(GOOD[name]), 0.05))  # ~100 s for the whole body
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match="within 0.5s"):
        await backend(name, s.url, monkeypatch, timeout_s=0.5).search("q", 2)
    assert time.perf_counter() - t0 < 2.5


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compression_bomb_stops_at_the_cap(encoding, servers, monkeypatch):
    inflated = b'{"organic": [], "pad": "' + b"0" * (40 * 1024 * 1024) + b'"}'
    packed = gzip.compress(inflated, 9) if encoding == "gzip" else zlib.compress(inflated, 9)
    assert len(packed) < 100_000
    s = servers()
    s.on("/search", body(packed, content_encoding=encoding))
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match="larger than 1,048,576 bytes"):
        await backend("serper", s.url, monkeypatch, max_response_bytes=1024 * 1024).search("q", 2)
    assert time.perf_counter() - t0 < 5


async def test_compressed_answers_still_work(servers, monkeypatch):
    s = servers()
    raw = fixture_bytes("serper.json")
    s.on("/search", body(gzip.compress(raw), content_encoding="gzip"))
    assert await backend("serper", s.url, monkeypatch).search("great egret", 2)
    s.on("/search", body(zlib.compress(raw)[2:-4], content_encoding="deflate"))  # raw deflate
    assert await backend("serper", s.url, monkeypatch).search("great egret", 2)
    assert "gzip" in s.seen[-1][2]["accept-encoding"] and "br" not in s.seen[-1][2]["accept-encoding"]


async def test_a_huge_plain_body_is_refused(servers, monkeypatch):
    s = servers()
    s.on("/search", body(b'{"organic": []' + b" " * (3 * 1024 * 1024) + b"}"))
    with pytest.raises(ToolError, match="max_response_bytes"):
        await backend("serper", s.url, monkeypatch, max_response_bytes=1024 * 1024).search("q", 2)


@pytest.mark.parametrize("payload, encoding", [
    (b"\x1f\x8b\x08\x00garbage-not-gzip", "gzip"),
    (b"{}", "br"),
    (b"{}", "gzip, gzip"),
])
async def test_corrupt_or_unknown_encodings_are_tool_errors(payload, encoding, servers, monkeypatch):
    s = servers()
    s.on("/search", body(payload, content_encoding=encoding))
    with pytest.raises(ToolError, match="serper"):
        await backend("serper", s.url, monkeypatch).search("q", 2)


async def test_a_nesting_bomb_is_a_tool_error(servers, monkeypatch):
    s = servers()
    s.on("/search", body(b"[" * 200_000 + b"]" * 200_000))
    with pytest.raises(ToolError, match="malformed JSON"):
        await backend("serper", s.url, monkeypatch).search("q", 2)
    s.on("/search", body(b'{"error": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", 400))
    with pytest.raises(ToolError, match="HTTP 400"):
        await backend("serper", s.url, monkeypatch).search("q", 2)


@pytest.mark.parametrize("pad", [0, 150, 170, 185, 199])
async def test_an_error_body_echoing_the_key_is_redacted_before_it_is_cut(pad, servers,
                                                                          monkeypatch):
    s = servers()
    echo = "x" * pad + f" you sent X-API-KEY: {KEY} and Authorization: Bearer {KEY[::-1]}"
    s.on("/search", body(json.dumps({"message": echo}).encode(), 401))
    with pytest.raises(ToolError) as err:
        await backend("serper", s.url, monkeypatch).search("q", 2)
    msg = str(err.value)
    for secret in (KEY, KEY[::-1]):
        assert not any(secret[i:i + 8] in msg for i in range(len(secret) - 7)), msg


async def test_a_surrogate_in_a_hit_is_scrubbed(servers, monkeypatch):
    s = servers()
    data = {"organic": [{"title": "Great egret \\ud800", "link": "https://example.org/e",
                         "snippet": "wingspan \\udfff 131 cm"}]}
    s.on("/search", body(json.dumps(data).replace("\\\\u", "\\u").encode()))
    hits = await backend("serper", s.url, monkeypatch).search("q", 2)
    assert hits[0].title == "Great egret \ufffd" and "\ufffd" in hits[0].snippet
