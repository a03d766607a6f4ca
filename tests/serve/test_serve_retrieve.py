"""POST /retrieve in Search-R1's request/response shape."""

from __future__ import annotations

import httpx
import pytest

from deepmmsearch.serve.retriever import Retriever, parse_request
from deepmmsearch.serve.security import ApiError
from deepmmsearch.tools.text.fixture import FixtureTextSearch


def test_retrieve_search_r1_shape(make_server) -> None:
    srv = make_server()
    body = {"queries": ["great egret wingspan", "nothing matches this"], "topk": 2,
            "return_scores": True}
    r = httpx.post(srv.url + "/retrieve", json=body)
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert [len(x) for x in result] == [2, 0]
    first = result[0][0]
    assert set(first) == {"document", "score"}
    doc = first["document"]
    assert doc["id"] == "https://example.org/great-egret"
    title, text = doc["contents"].split("\n", 1)  # how Search-R1's client reads it
    assert title == '"Great egret"' and "131 to 170 cm" in text
    assert [d["score"] for d in result[0]] == [1.0, 0.5]  # reciprocal rank: fixture has no scores
    bare = httpx.post(srv.url + "/retrieve", json={"queries": ["great egret wingspan"]}).json()
    assert bare["result"][0][0]["contents"].startswith('"Great egret"\n')  # no scores: bare docs
    assert len(bare["result"][0]) == 2  # default topk 3, the fixture has 2 hits


def test_retrieve_with_its_own_backend(make_server) -> None:
    hits = {"*": [{"title": "Doc", "url": "https://x.org/1", "snippet": "body", "score": 7.5}]}
    srv = make_server(retrieve={"name": "fixture", "responses": hits}, retrieve_topk=1)
    r = httpx.post(srv.url + "/retrieve", json={"queries": ["anything"], "return_scores": True})
    assert r.json() == {"result": [[{"document": {
        "id": "https://x.org/1", "contents": '"Doc"\nbody', "title": "Doc", "text": "body",
        "url": "https://x.org/1"}, "score": 7.5}]]}


def test_retrieve_bad_requests(make_server) -> None:
    srv = make_server()
    for body, message in [
        ({"queries": "a", "topk": 0}, "topk"),
        ({"queries": [1, 2]}, "list of strings"),
        ({"queries": []}, "between 1 and"),
        ({"queries": ["a"], "return_scores": "yes"}, "return_scores"),
        ({"queries": ["a"], "top_k": 3}, "unknown field"),
        ([1], "JSON object"),
    ]:
        r = httpx.post(srv.url + "/retrieve", json=body)
        assert r.status_code == 400 and message in r.json()["error"]["message"], (body, r.text)
    r = httpx.post(srv.url + "/retrieve", content=b"[" * 2_000_000,
                   headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_retrieve_wrong_content_type(make_server) -> None:
    srv = make_server()
    r = httpx.post(srv.url + "/retrieve", data={"queries": "a"})
    assert r.status_code == 415
    assert "application/json" in r.json()["error"]["message"]


async def test_backend_failure_is_502() -> None:
    backend = FixtureTextSearch(responses={"*": []}, fail_on={"boom": "quota exceeded"})
    with pytest.raises(ApiError) as err:
        await Retriever(backend).retrieve(["fine", "boom"], 3, True)
    assert err.value.status == 502 and "quota exceeded" in err.value.message
    assert await Retriever(backend).retrieve(["  "], 3, True) == [[]]


def test_parse_request_defaults() -> None:
    assert parse_request(b'{"queries": "q"}', default_topk=3, max_queries=5,
                         max_topk=10) == (["q"], 3, False)
    with pytest.raises(ApiError, match="between 1 and 5"):
        parse_request(b'{"queries": ["q","q","q","q","q","q"]}', default_topk=3, max_queries=5,
                      max_topk=10)


def test_retrieve_over_a_local_bm25_index(make_server, tmp_path) -> None:
    pytest.importorskip("tantivy")
    import json

    from deepmmsearch.tools.text.bm25 import build_index

    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": "d1", "title": "Great egret", "text": "The great egret has a wingspan of 131 "
             "to 170 cm."}, {"id": "d2", "title": "Grey heron", "text": "The grey heron is a "
             "long-legged wading bird."}, {"id": "d3", "title": "Eiffel Tower", "text": "A "
             "wrought-iron lattice tower in Paris."}]
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    build_index(corpus, tmp_path / "index", show_progress=False)
    srv = make_server(retrieve={"name": "bm25", "index": str(tmp_path / "index")})
    r = httpx.post(srv.url + "/retrieve", json={"queries": ["egret wingspan", "Paris tower"],
                                                "topk": 2, "return_scores": True})
    egret, tower = r.json()["result"]
    assert egret[0]["document"]["id"] == "d1" and tower[0]["document"]["id"] == "d3"
    assert egret[0]["document"]["contents"].startswith('"Great egret"\n')
    assert egret[0]["score"] > 0 and egret[0]["document"]["url"] is None


async def test_round_trip_with_our_http_retriever_backend(make_server) -> None:
    from deepmmsearch.tools.text.web import RetrieverTextSearch

    srv = make_server()
    client = RetrieverTextSearch(base_url=srv.url, retries=0)
    hits = await client.search("great egret wingspan", 2)
    assert [h.url for h in hits] == ["https://example.org/great-egret", "https://example.org/herons"]
    assert hits[0].title == "Great egret" and "131 to 170 cm" in hits[0].snippet
