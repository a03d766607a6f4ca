"""The real ``openai`` client against a running server (scripted policy, fixture tools)."""

from __future__ import annotations

import base64
import io
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

QUESTION = "What is the wingspan of this bird?"
ANSWER = "131 to 170 cm"


def data_url(path: Path | None = None, *, image=None) -> str:
    if image is not None:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        raw = buf.getvalue()
    else:
        raw = Path(path).read_bytes()
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def messages(image_url: str | None, question: str = QUESTION) -> list[dict]:
    content: list[dict] = [{"type": "text", "text": question}]
    if image_url:
        content.append({"type": "image_url", "image_url": {"url": image_url}})
    return [{"role": "system", "content": "ignored"}, {"role": "user", "content": content}]


def client(srv, key: str = "unused") -> OpenAI:
    return OpenAI(base_url=srv.url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_models_and_completion(make_server, scene_image) -> None:
    srv = make_server()
    c = client(srv)
    assert [m.id for m in c.models.list().data] == ["deepmmsearch"]
    assert c.models.retrieve("deepmmsearch").owned_by == "deepmmsearch"
    r = c.chat.completions.create(model="deepmmsearch", messages=messages(data_url(scene_image)))
    assert r.choices[0].message.content == ANSWER
    assert r.choices[0].message.role == "assistant"
    traj = r.model_extra["trajectory"]
    assert traj["stop_reason"] == "answer" and len(traj["turns"]) == 3
    assert "https://example.org/great-egret" in traj["sources"]
    crop = traj["turns"][0]["tool_call"]
    assert crop["kind"] == "image_search" and crop["box"] is not None
    assert crop["crop_path"] == "turn0_crop.png" and "/" not in crop["boxed_path"]  # no server path
    assert crop["crop_url"].startswith("/api/files/artifacts/")
    assert httpx.get(srv.url + crop["crop_url"]).content[:4] == b"\x89PNG"
    assert r.usage.completion_tokens > 0
    served = Path(srv.app.state.service.log_path).read_text().splitlines()
    assert len(served) == 1 and ANSWER in served[0]


def test_streaming(make_server, scene_image) -> None:
    srv = make_server()
    stream = client(srv).chat.completions.create(
        model="deepmmsearch", messages=messages(data_url(scene_image)), stream=True,
        stream_options={"include_usage": True})
    content, reasoning, finish, traj, usage = "", [], None, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        if (delta.model_extra or {}).get("reasoning_content"):
            reasoning.append(delta.model_extra["reasoning_content"])
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
            traj = chunk.model_extra["trajectory"]
    assert content == ANSWER and finish == "stop"
    assert len(reasoning) == 5  # 3 turns + 2 observations
    assert "<img_search>" in reasoning[0] and "<information>" in reasoning[1]
    assert traj["answer"] == ANSWER and usage.completion_tokens > 0


def test_text_only_question_and_follow_up_keeps_image(make_server, scene_image) -> None:
    srv = make_server()
    c = client(srv)
    r = c.chat.completions.create(model="deepmmsearch", messages=messages(None))
    traj = r.model_extra["trajectory"]
    assert traj["image"] is None
    assert "no image" in traj["turns"][0]["observation"]  # the image search failed clearly
    chat = messages(data_url(scene_image)) + [
        {"role": "assistant", "content": "..."}, {"role": "user", "content": QUESTION}]
    r = c.chat.completions.create(model="deepmmsearch", messages=chat)
    assert r.model_extra["trajectory"]["image"] is not None
    assert r.choices[0].message.content == ANSWER


def test_api_key(make_server, scene_image, monkeypatch) -> None:
    monkeypatch.setenv("DMS_TEST_KEY", "s3cret")
    srv = make_server(api_key_env="DMS_TEST_KEY")
    with pytest.raises(openai.AuthenticationError) as err:
        client(srv, "wrong").models.list()
    assert err.value.status_code == 401 and "invalid API key" in str(err.value)
    r = httpx.get(srv.url + "/v1/models")
    assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.post(srv.url + "/retrieve", json={"queries": ["x"]}).status_code == 401
    assert httpx.get(srv.url + "/api/trajectories").status_code == 401
    assert httpx.get(srv.url + "/api/info").json()["auth_required"] is True
    r = client(srv, "s3cret").chat.completions.create(
        model="deepmmsearch", messages=messages(data_url(scene_image)))
    assert r.choices[0].message.content == ANSWER


def test_api_key_env_must_be_set(tmp_path, monkeypatch) -> None:
    from deepmmsearch.config import load_config
    from deepmmsearch.registry import ConfigError
    from deepmmsearch.serve.app import create_app

    from .conftest import serve_data

    monkeypatch.delenv("DMS_UNSET_KEY", raising=False)
    cfg = load_config(data=serve_data(tmp_path, api_key_env="DMS_UNSET_KEY"), expect="serve")
    with pytest.raises(ConfigError, match="DMS_UNSET_KEY"):
        create_app(cfg)


def test_bad_requests_get_clear_4xx(make_server, scene_image) -> None:
    from PIL import Image

    srv = make_server(max_image_pixels=10_000, max_upload_bytes=40_000)
    c = client(srv)
    big = Image.new("RGB", (200, 200), "white")  # 40,000 pixels, tiny as PNG
    with pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="deepmmsearch", messages=messages(data_url(image=big)))
    assert err.value.status_code == 413 and "40,000 pixels" in str(err.value)
    # scene.png is 57 KB: over the byte limit
    with pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="deepmmsearch", messages=messages(data_url(scene_image)))
    assert err.value.status_code == 413 and "40,000 bytes" in str(err.value)
    bad = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    with pytest.raises(openai.BadRequestError, match="cannot read the image"):
        c.chat.completions.create(model="deepmmsearch", messages=messages(bad))
    with pytest.raises(openai.BadRequestError, match="remote image URLs are disabled"):
        c.chat.completions.create(model="deepmmsearch",
                                  messages=messages("https://example.org/bird.png"))
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        c.chat.completions.create(model="gpt-x", messages=messages(None))
    with pytest.raises(openai.BadRequestError, match="no question"):
        c.chat.completions.create(model="deepmmsearch", messages=[{"role": "user", "content": ""}])
    r = httpx.post(srv.url + "/v1/chat/completions", content=b'{"model": "deepmmsearch"}',
                   headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = httpx.post(srv.url + "/v1/chat/completions", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(srv.url + "/v1/chat/completions", content=b"x" * 400_000,
                   headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_private_addresses_refused(make_server) -> None:
    srv = make_server(allow_remote_images=True)
    c = client(srv)
    for url, why in [("http://10.1.2.3/a.png", "private"), ("http://127.0.0.1:9/a.png", "loopback"),
                     ("http://169.254.169.254/latest", "link-local"),
                     ("http://[::1]/a.png", "loopback"), ("http://[::ffff:192.168.0.1]/x", "private"),
                     ("file:///etc/passwd", "data: URL or an http")]:
        with pytest.raises(openai.BadRequestError, match=why):
            c.chat.completions.create(model="deepmmsearch", messages=messages(url))


def test_concurrency_limit_429(make_server, scene_image) -> None:
    srv = make_server(max_concurrent=1, agent_overrides={"text_search": {
        "name": "fixture", "path": str(Path(scene_image).parent / "text_hits.yaml"),
        "latency_s": 1.0}})
    c = client(srv)
    results: list = []
    first = threading.Thread(target=lambda: results.append(c.chat.completions.create(
        model="deepmmsearch", messages=messages(data_url(scene_image)))))
    first.start()
    deadline = time.monotonic() + 10
    while httpx.get(srv.url + "/healthz").json()["in_flight"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(openai.RateLimitError) as err:
        c.chat.completions.create(model="deepmmsearch", messages=messages(data_url(scene_image)))
    assert err.value.status_code == 429 and "busy" in str(err.value)
    assert err.value.response.headers["retry-after"] == "2"
    r = httpx.post(srv.url + "/retrieve", json={"queries": ["x"]})
    assert r.status_code == 429
    first.join(timeout=20)
    assert results and results[0].choices[0].message.content == ANSWER
    assert httpx.get(srv.url + "/healthz").json()["in_flight"] == 0


def test_closed_stream_frees_its_slot(make_server, scene_image) -> None:
    srv = make_server(max_concurrent=1, agent_overrides={"text_search": {
        "name": "fixture", "path": str(Path(scene_image).parent / "text_hits.yaml"),
        "latency_s": 5.0}})
    stream = client(srv).chat.completions.create(
        model="deepmmsearch", messages=messages(data_url(scene_image)), stream=True)
    next(iter(stream))
    stream.close()
    deadline = time.monotonic() + 4
    while httpx.get(srv.url + "/healthz").json()["in_flight"] != 0:
        assert time.monotonic() < deadline, "the cancelled run kept its slot"
        time.sleep(0.05)


def test_agent_timeout_is_504(make_server, scene_image) -> None:
    srv = make_server(request_timeout_s=0.3, agent_overrides={"text_search": {
        "name": "fixture", "path": str(Path(scene_image).parent / "text_hits.yaml"),
        "latency_s": 3.0}})
    with pytest.raises(openai.APIStatusError) as err:
        client(srv).chat.completions.create(model="deepmmsearch",
                                            messages=messages(data_url(scene_image)))
    assert err.value.status_code == 504 and "did not finish within 0.3 s" in str(err.value)
    with pytest.raises(openai.APIError, match="did not finish"):  # mid-stream: an SSE error
        for _ in client(srv).chat.completions.create(
                model="deepmmsearch", messages=messages(data_url(scene_image)), stream=True):
            pass
    assert httpx.get(srv.url + "/healthz").json()["in_flight"] == 0
