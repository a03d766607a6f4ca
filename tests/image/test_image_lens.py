"""``serpapi-lens`` against recorded-shape responses (tests/fixtures/lens), failures included, and
the image hosts (a static folder served on 127.0.0.1; S3 through a fake client)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from deepmmsearch.registry import IMAGE_HOST, IMAGE_SEARCH, ConfigError
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.image.hosting import S3Host, StaticDirHost, content_name
from deepmmsearch.tools.image.lens import SerpApiLensSearch, parse_response
from deepmmsearch.tools.image.synthetic import make_picture

LENS = Path(__file__).parent.parent / "fixtures" / "lens"
KEY = "sk-test-lens-0123456789"


def _fixture(name: str) -> dict:
    return json.loads((LENS / name).read_text())


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("SERPAPI_API_KEY", KEY)


def _lens(tmp_path, responder, **kw) -> tuple[SerpApiLensSearch, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responder(request, len(seen))

    host = StaticDirHost(root=str(tmp_path / "crops"), base_url="https://crops.example/c")
    return SerpApiLensSearch(host=host, transport=httpx.MockTransport(handler), **kw), seen


async def test_lens_hits_exact_then_visual_deduplicated(tmp_path):
    lens, seen = _lens(tmp_path, lambda r, n: httpx.Response(200, json=_fixture("google_lens_ok.json")))
    image = make_picture(3, 80)
    hits = await lens.search(image, k=5)
    assert [h.url for h in hits] == [
        "https://en.wikipedia.org/wiki/Great_egret", "https://www.allaboutbirds.org/guide/Great_Egret",
        "https://www.flickr.com/photos/heron/123", "https://birds.example/egret-wingspan",
        "https://shop.example/egret-print"]
    assert hits[1].title == "Great Egret & Snowy Egret identification"  # HTML cleaned
    assert hits[0].snippet == "Wikipedia"  # Lens has no snippet: the source stands in
    assert hits[3].title == "birds.example" and hits[0].thumbnail.startswith("https://")
    params = seen[0].url.params
    assert params["engine"] == "google_lens" and params["api_key"] == KEY
    buf = io.BytesIO()
    image.save(buf, "PNG")
    name = content_name(buf.getvalue(), ".png")
    assert params["url"] == f"https://crops.example/c/{name}"  # content hash in the URL
    assert (tmp_path / "crops" / name).exists()


async def test_reverse_image_engine_gives_snippets(tmp_path):
    lens, seen = _lens(tmp_path, lambda r, n: httpx.Response(200, json=_fixture("google_reverse_image_ok.json")),
                       engine="google_reverse_image", hl="en")
    hits = await lens.search(make_picture(4, 64), k=5)
    assert "image_url" in seen[0].url.params and seen[0].url.params["hl"] == "en"
    assert len(hits) == 3 and "Wingspan 131 to 170 cm" in hits[0].snippet
    assert hits[1].date == "Mar 3, 2024"
    assert hits[2].title == "Great Egret | Audubon Field Guide"


async def test_no_results_error_string_is_zero_hits_not_a_failure(tmp_path):
    lens, _ = _lens(tmp_path, lambda r, n: httpx.Response(200, json=_fixture("google_lens_no_results.json")))
    assert await lens.search(make_picture(5, 64)) == []


async def test_429_then_success_is_retried(tmp_path):
    def responder(request, n):
        if n == 1:
            return httpx.Response(429, json=_fixture("error_throughput.json"), headers={"Retry-After": "0"})
        return httpx.Response(200, json=_fixture("google_lens_ok.json"))

    lens, seen = _lens(tmp_path, responder, retries=3)
    assert len(await lens.search(make_picture(6, 64), k=2)) == 2 and len(seen) == 2


@pytest.mark.parametrize("status,body,match,retryable", [
    (429, "error_throughput.json", "rate limited", True),
    (503, None, "server error", True),
    (401, "error_invalid_key.json", "unauthorized", False),
    (400, "error_status.json", "Unsupported", False),
])
async def test_http_failures_raise_tool_errors_without_the_key(tmp_path, status, body, match, retryable):
    def responder(request, n):
        if body is None:
            return httpx.Response(status, text="<html>Bad gateway</html>", headers={"Retry-After": "0"})
        return httpx.Response(status, json=_fixture(body), headers={"Retry-After": "0"})

    lens, seen = _lens(tmp_path, responder, retries=2)
    with pytest.raises(ToolError, match=match) as info:
        await lens.search(make_picture(7, 64))
    assert info.value.retryable is retryable and info.value.status == status
    assert KEY not in str(info.value)
    assert len(seen) == (2 if retryable else 1)


async def test_bad_json_and_error_under_200_raise(tmp_path):
    lens, _ = _lens(tmp_path, lambda r, n: httpx.Response(200, text="{not json", headers={"content-type": "text/html"}))
    with pytest.raises(ToolError, match="malformed JSON"):
        await lens.search(make_picture(8, 64))
    lens, _ = _lens(tmp_path, lambda r, n: httpx.Response(200, json=_fixture("error_status.json")))
    with pytest.raises(ToolError, match="serpapi-lens: API error: Unsupported"):
        await lens.search(make_picture(8, 64))
    with pytest.raises(ToolError, match="not a list"):
        parse_response({"visual_matches": {"oops": 1}}, "google_lens")
    with pytest.raises(ToolError, match="not a JSON object"):
        parse_response(["x"], "google_lens")


async def test_failed_upload_is_a_tool_error(tmp_path):
    class Broken:
        name = "broken"

        def put(self, data, suffix=".png"):
            raise OSError("disk full")

    lens = SerpApiLensSearch(host=Broken(), transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(ToolError, match="uploading the image to the broken host failed: disk full"):
        await lens.search(make_picture(9, 64))


def test_configuration_errors(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="needs an image host"):
        SerpApiLensSearch()
    with pytest.raises(ConfigError, match="engine"):
        SerpApiLensSearch(host={"name": "static", "root": str(tmp_path)}, engine="bing")
    monkeypatch.delenv("SERPAPI_API_KEY")
    with pytest.raises(ConfigError, match="SERPAPI_API_KEY"):
        IMAGE_SEARCH.build({"name": "serpapi-lens", "host": {"name": "static", "root": str(tmp_path)}})
    monkeypatch.setenv("SERPAPI_API_KEY", KEY)
    lens = IMAGE_SEARCH.build({"name": "serpapi-lens", "host": {"name": "static", "root": str(tmp_path)}})
    assert isinstance(lens.host, StaticDirHost) and KEY not in repr(lens)


async def test_static_host_serves_the_upload_on_loopback(tmp_path):
    """End to end: the crop is uploaded, served over HTTP, and the 'API' fetches it by URL."""
    fetched: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        url = request.url.params["url"]
        assert url.startswith("http://127.0.0.1:")
        fetched.append(httpx.get(url, timeout=5).content)
        return httpx.Response(200, json=_fixture("google_lens_ok.json"))

    with StaticDirHost(root=str(tmp_path / "served")) as host:
        lens = SerpApiLensSearch(host=host, transport=httpx.MockTransport(handler))
        image = make_picture(10, 72)
        await lens.search(image)
        await lens.search(image)  # same bytes, same file
    assert len(fetched) == 2 and Image.open(io.BytesIO(fetched[0])).tobytes() == image.tobytes()
    assert len(list((tmp_path / "served").iterdir())) == 1


class FakeS3:
    def __init__(self):
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}

    def put_object(self, Bucket, Key, Body, ContentType):
        self.objects[(Bucket, Key)] = (Body, ContentType)

    def generate_presigned_url(self, op, Params, ExpiresIn):
        return f"https://s3.example/{Params['Bucket']}/{Params['Key']}?X-Amz-Expires={ExpiresIn}&op={op}"


def test_s3_host_presigned_and_public_urls():
    fake = FakeS3()
    host = S3Host(bucket="crops", prefix="runs/1", expires_s=900, client=fake)
    data = b"\x89PNG fake bytes"
    url = host.put(data)
    key = f"runs/1/{content_name(data)}"
    assert url == f"https://s3.example/crops/{key}?X-Amz-Expires=900&op=get_object"
    assert fake.objects[("crops", key)] == (data, "image/png")
    public = S3Host(bucket="crops", public_base_url="https://cdn.example/", client=fake)
    assert public.put(data, ".jpg") == f"https://cdn.example/deepmmsearch/crops/{content_name(data, '.jpg')}"
    with pytest.raises(ConfigError, match="expires_s"):
        S3Host(bucket="b", expires_s=10**7)
    with pytest.raises(ValueError, match="suffix"):
        host.put(data, ".gif")


def test_s3_host_without_boto3_names_the_extra():
    try:
        import boto3  # noqa: F401
    except ImportError:
        host = IMAGE_HOST.build({"name": "s3", "bucket": "b"})
        with pytest.raises(ImportError, match=r"deepmmsearch\[s3\]"):
            host.put(b"x")
    else:
        pytest.skip("boto3 is installed: the install hint cannot be shown")
