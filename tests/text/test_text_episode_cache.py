"""Episodes over a web text backend: failures become observations; record → replay is exact."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from deepmmsearch.agent.loop import run_episode
from deepmmsearch.agent.state import Episode
from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.policies.scripted import ScriptedPolicy
from deepmmsearch.protocol import extract_information
from deepmmsearch.registry import TEXT_SEARCH
from deepmmsearch.tools.cache import ReplayMiss, ToolCache
from deepmmsearch.tools.http import RetryPolicy
from deepmmsearch.tools.summarize import ExtractiveSummarizer

from .text_mock_server import Reply, recorded

R = "<reason>I should look this up.</reason>"
SCRIPT = [
    R + "<text_search>great egret wingspan</text_search>",
    R + "<text_search>great egret size</text_search>",
    R + "<answer>131 to 170 cm</answer>",
]
KEY = "serp-KEY-never-stored-7781"
VOLATILE = {"latency_s", "wall_s", "cache_hit"}


def strip(obj):
    """A trajectory dict without timing and cache-hit fields."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def toolbox(backend, cache=None) -> Toolbox:
    return Toolbox(text_search=backend, summarizer=ExtractiveSummarizer(), cache=cache,
                   prompt_version="test")


def searxng(url: str, timeout_s: float = 2.0):
    backend = TEXT_SEARCH.build({"name": "searxng", "base_url": url, "timeout_s": timeout_s})
    backend.client.retry = RetryPolicy(attempts=2, base_s=0.01, max_s=0.02)
    return backend


async def episode(tb, question="What is the wingspan of this bird?", script=SCRIPT, ep_id="e1"):
    return await run_episode(Episode(question, episode_id=ep_id), ScriptedPolicy(turns=script), tb)


async def test_failing_web_backend_is_an_observation_and_the_episode_goes_on(web_server):
    web_server.route("GET", "/search", Reply(500, {"error": "engine crashed"}),
                     Reply(500, {"error": "engine crashed"}), recorded("searxng.json"))
    traj = await episode(toolbox(searxng(web_server.url)))
    first, second = traj.tool_calls
    assert first.error and "searxng: HTTP 500 (server error) after 2 attempts: engine crashed" in first.error
    assert first.hits == [] and first.backend == "searxng"
    info = " ".join(extract_information(traj.turns[0].observation))
    assert "The text search failed" in info and "HTTP 500" in info
    assert second.error is None and len(second.hits) == 3 and "131" in second.summary
    assert traj.answer == "131 to 170 cm" and traj.stop_reason == "answer"


@pytest.mark.parametrize("reply", [Reply(429, {}, {"Retry-After": "600"}),
                                   Reply(200, "not json at all"),
                                   Reply(200, recorded("searxng.json").body, delay_s=1)])
async def test_rate_limit_malformed_and_timeout_reach_the_observation(reply, web_server):
    web_server.route("GET", "/search", reply)
    traj = await episode(toolbox(searxng(web_server.url, timeout_s=0.3)), script=SCRIPT[:1] + SCRIPT[2:])
    call = traj.tool_calls[0]
    assert call.error and call.error.startswith("searxng: ")
    assert call.error in traj.turns[0].observation and traj.answer == "131 to 170 cm"


async def test_record_then_replay_with_the_backend_switched_off(web_server, tmp_path, monkeypatch):
    monkeypatch.setenv("SERPAPI_API_KEY", KEY)
    web_server.route("GET", "/search.json", recorded("serpapi_google.json"))
    db = tmp_path / "cache.sqlite"
    backend = TEXT_SEARCH.build({"name": "serpapi", "base_url": web_server.url})
    live = await episode(toolbox(backend, ToolCache(db, "record")))
    assert [c.cache_hit for c in live.tool_calls] == [False, False]
    assert len(web_server.requests) == 2
    web_server.stop()  # the web is gone

    off = TEXT_SEARCH.build({"name": "serpapi", "base_url": web_server.url})
    replayed = await episode(toolbox(off, ToolCache(db, "replay")))
    assert [c.cache_hit for c in replayed.tool_calls] == [True, True]
    assert strip(replayed.to_dict()) == strip(live.to_dict())

    with pytest.raises(ReplayMiss, match="great egret habitat"):
        await episode(toolbox(off, ToolCache(db, "replay")),
                      script=[R + "<text_search>great egret habitat</text_search>"])

    for path in [db, *tmp_path.glob("cache.sqlite-*")]:  # the database and its WAL
        assert KEY.encode() not in Path(path).read_bytes()
    rows = sqlite3.connect(db).execute("SELECT key, role, backend, input, value FROM cache").fetchall()
    assert rows and all(KEY not in " ".join(map(str, r)) for r in rows)
    assert KEY not in live.to_json()


async def test_32_concurrent_episodes_share_one_cache_file(web_server, tmp_path):
    web_server.route("GET", "/search", Reply(200, recorded("searxng.json").body, delay_s=0.02))
    db = tmp_path / "shared.sqlite"
    backend = searxng(web_server.url)
    tb = toolbox(backend, ToolCache(db, "live"))
    scripts = [[R + f"<text_search>egret fact {i % 8}</text_search>", SCRIPT[2]] for i in range(32)]
    trajs = await asyncio.gather(*(episode(tb, f"question {i}", s, f"ep{i}")
                                   for i, s in enumerate(scripts)))
    assert all(t.answer == "131 to 170 cm" and not t.tool_calls[0].error for t in trajs)
    assert len(web_server.requests) == 8  # 8 distinct queries; concurrent misses coalesced
    assert sqlite3.connect(db).execute(
        "SELECT COUNT(*) FROM cache WHERE role='text_search'").fetchone()[0] == 8

    replay = toolbox(searxng(web_server.url), ToolCache(db, "replay"))
    again = await asyncio.gather(*(episode(replay, f"question {i}", s, f"ep{i}")
                                   for i, s in enumerate(scripts)))
    assert [strip(a.to_dict()) for a in again] == [strip(t.to_dict()) for t in trajs]
    assert len(web_server.requests) == 8
