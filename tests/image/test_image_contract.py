"""The image-search and image-host contracts over every ``registry.IMAGE_SEARCH`` and
``registry.IMAGE_HOST`` name (grounders: test_image_grounders.py). Lens answers through a mock
transport with a recorded response; S3 through a fake client."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image

from deepmmsearch.registry import IMAGE_HOST, IMAGE_SEARCH
from deepmmsearch.roles import ImageHost, ImageSearch
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.image.synthetic import make_picture
from deepmmsearch.types import SearchHit

from .test_image_lens import FakeS3, _fixture

IMAGES = [make_picture(3, 80), Image.new("RGB", (7, 5), 200), Image.new("L", (96, 300), 90),
          Image.new("RGBA", (64, 64), (10, 20, 30, 0))]


def _search_spec(name, image_index, tmp_path):
    ok = httpx.MockTransport(lambda r: httpx.Response(200, json=_fixture("google_lens_ok.json")))
    return {
        "fixture": {"path": "tests/fixtures/image_hits.yaml"},
        "local": {"index": str(image_index)},
        "serpapi-lens": {"host": {"name": "static", "root": str(tmp_path),
                                  "base_url": "https://crops.example/c"}, "transport": ok},
    }[name]


@pytest.mark.parametrize("name", IMAGE_SEARCH.names())
async def test_image_search_contract(name, image_index, tmp_path, monkeypatch):
    monkeypatch.setenv("SERPAPI_API_KEY", "sk-test-contract")
    backend = IMAGE_SEARCH.build({"name": name, **_search_spec(name, image_index, tmp_path)})
    assert isinstance(backend, ImageSearch) and isinstance(backend.name, str)
    found = 0
    for image in IMAGES:
        for k in (1, 4):
            try:
                hits = await backend.search(image, k)
            except ToolError:
                continue
            assert isinstance(hits, list) and len(hits) <= k
            assert all(isinstance(h, SearchHit) and isinstance(h.url, str) for h in hits)
            found += len(hits)
    assert found > 0


@pytest.mark.parametrize("name", IMAGE_HOST.names())
def test_image_host_contract(name, tmp_path):
    spec = {"static": {"root": str(tmp_path), "base_url": "https://crops.example/c"},
            "s3": {"bucket": "crops", "client": FakeS3()}}[name]
    host = IMAGE_HOST.build({"name": name, **spec})
    assert isinstance(host, ImageHost) and isinstance(host.name, str)
    a, b = host.put(b"\x89PNG one"), host.put(b"\x89PNG two", ".jpg")
    assert a.startswith("https://") and b.startswith("https://") and a != b
    assert host.put(b"\x89PNG one") == a  # content-addressed: the same bytes, the same URL
    with pytest.raises(ValueError):
        host.put(b"x", ".exe")
