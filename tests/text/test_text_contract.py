"""The text-search contract over every ``registry.TEXT_SEARCH`` name: hits are records, at most
``k`` of them, and odd queries give hits or a ToolError — never another exception. The web
backends talk to a local server playing recorded responses."""

from __future__ import annotations

import pytest

from deepmmsearch.registry import TEXT_SEARCH
from deepmmsearch.roles import TextSearch
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.text.bm25 import build_index
from deepmmsearch.types import SearchHit

from .test_text_web import API, make, serve
from .text_mock_server import recorded

QUERIES = ["great egret wingspan", "", "   ", "🐦 鸟 Ümlaut", "x" * 2000, 'a "quoted" OR (b AND c)']


@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory):
    return build_index("tests/fixtures/text_corpus.jsonl", tmp_path_factory.mktemp("bm25c") / "i",
                       show_progress=False).path


def _build(name, web_server, monkeypatch, bm25_index):
    if name in API:
        serve(web_server, name, recorded(API[name][2]))
        return make(name, web_server, monkeypatch)
    spec = {"fixture": {"path": "tests/fixtures/text_hits.yaml"}, "bm25": {"index": str(bm25_index)}}
    return TEXT_SEARCH.build({"name": name, **spec[name]})


@pytest.mark.parametrize("name", TEXT_SEARCH.names())
async def test_text_search_contract(name, web_server, monkeypatch, bm25_index):
    backend = _build(name, web_server, monkeypatch, bm25_index)
    assert isinstance(backend, TextSearch) and isinstance(backend.name, str)
    found = 0
    for q in QUERIES:
        for k in (1, 3):
            try:
                hits = await backend.search(q, k)
            except ToolError:
                continue
            assert isinstance(hits, list) and len(hits) <= k
            assert all(isinstance(h, SearchHit) and isinstance(h.snippet, str) for h in hits)
            found += len(hits)
    assert found > 0  # the first query is in every backend's data
