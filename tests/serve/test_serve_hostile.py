"""Reliability, server limits: a hostile or careless client against a real server on 127.0.0.1.
Refusals come before any decoding, leave nothing on disk, and are 4xx (never 500); answers
carrying any text JSON can hold are delivered; no server path and no ``javascript:`` source
reaches a client; a client that goes away frees its slot."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import httpx
import pytest

from deepmmsearch.serve import media

from .test_serve_page import sse_events

QUESTION = "What is the wingspan of this bird?"


def png(size=(64, 48)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, "white").save(buf, format="PNG")
    return buf.getvalue()


def chat_body(text, image: bytes | None = None, **extra) -> dict:
    content: list = [{"type": "text", "text": text}]
    if image is not None:
        content.append({"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(image).decode()}})
    return {"model": "deepmmsearch", "messages": [{"role": "user", "content": content}], **extra}


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Counts every image decode the server starts."""
    calls: list[int] = []
    real = media.decode_image

    def counted(data, **kw):
        calls.append(len(data))
        return real(data, **kw)

    monkeypatch.setattr(media, "decode_image", counted)
    return calls


def uploads(srv) -> list[Path]:
    root = Path(srv.app.state.service.images.root)
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_busy_server_refuses_before_reading_or_decoding(make_server, decodes) -> None:
    srv = make_server(max_concurrent=2)
    held = [srv.app.state.service.slots.acquire() for _ in range(2)]
    image = png((600, 400))
    r = httpx.post(srv.url + "/v1/chat/completions", json=chat_body(QUESTION, image), timeout=30)
    assert r.status_code == 429 and r.headers["retry-after"]
    r = httpx.post(srv.url + "/api/ask", data={"question": QUESTION},
                   files={"image": ("x.png", image, "image/png")}, timeout=30)
    assert r.status_code == 429
    r = httpx.post(srv.url + "/retrieve", json={"queries": ["egret"]}, timeout=30)
    assert r.status_code == 429
    assert decodes == [] and uploads(srv) == []
    for release in held:
        release()
    r = httpx.post(srv.url + "/v1/chat/completions", json=chat_body(QUESTION, image), timeout=30)
    assert r.status_code == 200 and len(decodes) == 1 and len(uploads(srv)) == 1
    assert srv.app.state.service.slots.in_flight == 0


def test_refused_uploads_leave_nothing_and_free_the_slot(make_server, decodes) -> None:
    srv = make_server(max_concurrent=1, max_image_pixels=10_000)
    for data in (png((200, 200)), b"\x89PNG\r\n\x1a\n not really"):
        r = httpx.post(srv.url + "/api/ask", data={"question": QUESTION},
                       files={"image": ("x.png", data, "image/png")}, timeout=30)
        assert r.status_code in (400, 413), r.text
        r = httpx.post(srv.url + "/v1/chat/completions", json=chat_body(QUESTION, data), timeout=30)
        assert r.status_code in (400, 413), r.text
    assert uploads(srv) == [] and srv.app.state.service.slots.in_flight == 0


@pytest.mark.parametrize("route, body", [
    ("/v1/chat/completions", b"[" * 100_000 + b"]" * 100_000),
    ("/v1/chat/completions", b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("/retrieve", b'{"queries": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("/v1/chat/completions", json.dumps(chat_body(42)).encode()),
    ("/v1/chat/completions", json.dumps(chat_body({"nested": "object"})).encode()),
    ("/v1/chat/completions", json.dumps(chat_body(["a", "list"])).encode()),
    ("/v1/chat/completions", json.dumps(chat_body("x" * 4001)).encode()),
    ("/retrieve", json.dumps({"queries": ["x" * 4001]}).encode()),
])
def test_malformed_bodies_are_400(make_server, route, body) -> None:
    srv = make_server()
    r = httpx.post(srv.url + route, content=body, headers={"content-type": "application/json"},
                   timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]
    assert srv.app.state.service.slots.in_flight == 0


def test_the_page_caps_the_question_too(make_server) -> None:
    srv = make_server(max_question_chars=50)
    r = httpx.post(srv.url + "/api/ask", data={"question": "x" * 51}, timeout=30)
    assert r.status_code == 400 and "max_question_chars" in r.json()["error"]["message"]


@pytest.mark.parametrize("rel", [
    "a/" * 3000 + "x.png", "b" * 5000 + ".png", "../" * 2000 + "etc/passwd.png",
    "%2e%2e/" * 1000 + "x.png",
])
def test_huge_paths_are_404(make_server, rel) -> None:
    srv = make_server()
    r = httpx.get(f"{srv.url}/api/files/uploads/{rel}", timeout=30)
    assert r.status_code == 404


@pytest.mark.parametrize("query", [
    "line=99999999999999999999999999999", "line=0", "line=-5", f"line={2**63}",
])
def test_huge_line_numbers_are_400(make_server, tmp_path, query) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "t.jsonl").write_text('{"id": "a", "question": "q", "image": null}\n')
    srv = make_server()
    r = httpx.get(f"{srv.url}/api/trajectories/one?file=runs/t.jsonl&{query}", timeout=30)
    assert r.status_code in (400, 404), r.text
    r = httpx.get(f"{srv.url}/api/trajectories/rows?file=runs/t.jsonl&offset={10**30}", timeout=30)
    assert r.status_code == 400


def _surrogate_hits(tmp_path: Path) -> str:
    path = tmp_path / "hits.jsonl"
    row = {"query": "*", "hits": [{"title": "Great egret", "url": "https://example.org/great-egret",
                                   "snippet": "Its wingspan is 131 to 170 cm. SURR"}]}
    path.write_text(json.dumps(row).replace("SURR", "\\ud800 \\udfff") + "\n")
    return str(path)


def test_lone_surrogates_in_hits_reach_every_client(make_server, tmp_path, scene_image) -> None:
    srv = make_server(agent_overrides={"text_search": {"name": "fixture",
                                                       "path": _surrogate_hits(tmp_path)}})
    r = httpx.post(srv.url + "/v1/chat/completions", json=chat_body(QUESTION), timeout=30)
    assert r.status_code == 200, r.text
    assert "\\ud800" in r.text and r.json()["choices"][0]["message"]["content"] == "131 to 170 cm"
    r = httpx.post(srv.url + "/v1/chat/completions", json=chat_body(QUESTION, stream=True),
                   timeout=30)
    lines = [ln for ln in r.text.splitlines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and not any(ln.startswith('data: {"error"') for ln in lines)
    assert "\\ud800" in r.text
    r = httpx.post(srv.url + "/api/ask", data={"question": QUESTION}, timeout=30)
    kinds = [k for k, _ in sse_events(r.text)]
    assert kinds[-1] == "done" and "error" not in kinds
    r = httpx.post(srv.url + "/retrieve", json={"queries": ["egret"]}, timeout=30)
    assert r.status_code == 200 and "\\ud800" in r.text
    served = Path(srv.app.state.service.log_path)
    assert len(served.read_text(encoding="utf-8").splitlines()) == 3
    r = httpx.get(srv.url + "/api/trajectories/rows?file=served/served.jsonl", timeout=30)
    assert r.status_code == 200 and r.json()["total"] == 3


def test_no_server_path_reaches_a_client(make_server, tmp_path, scene_image) -> None:
    srv = make_server()
    image = Path(scene_image).read_bytes()
    texts = [httpx.post(srv.url + "/v1/chat/completions", json=chat_body(QUESTION, image),
                        timeout=30).text,
             httpx.post(srv.url + "/v1/chat/completions",
                        json=chat_body(QUESTION, image, stream=True), timeout=30).text,
             httpx.post(srv.url + "/api/ask", data={"question": QUESTION},
                        files={"image": ("s.png", image, "image/png")}, timeout=30).text]
    for text in texts:
        assert str(tmp_path) not in text and "/api/files/" in text
    r = httpx.get(srv.url + "/api/trajectories/one?file=served/served.jsonl&line=1", timeout=30)
    assert r.status_code == 200 and str(tmp_path) not in r.text


def test_old_files_with_javascript_sources_are_cleaned(make_server, tmp_path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    row = {"id": "a", "question": "q", "image": str(tmp_path / "secret" / "x.png"),
           "sources": ["javascript:alert(1)", "https://example.org/ok", "data:text/html,x"]}
    (runs / "t.jsonl").write_text(json.dumps(row) + "\n")
    srv = make_server()
    r = httpx.get(srv.url + "/api/trajectories/one?file=runs/t.jsonl&line=1", timeout=30)
    assert r.json()["sources"] == ["https://example.org/ok"]
    assert str(tmp_path) not in r.text


def _slow(tmp_path: Path) -> dict:
    return {"text_search": {"name": "fixture", "path": str(Path(__file__).parents[1] / "fixtures"
                                                           / "text_hits.yaml"),
                            "latency_s": 20}}


def _wait_idle(srv, within_s: float = 5.0) -> float:
    t0 = time.monotonic()
    while srv.app.state.service.slots.in_flight:
        if time.monotonic() - t0 > within_s:
            raise AssertionError("the slot of a client that went away was not freed")
        time.sleep(0.02)
    return time.monotonic() - t0


def test_a_client_that_goes_away_frees_its_slot(make_server, tmp_path) -> None:
    srv = make_server(max_concurrent=1, agent_overrides=_slow(tmp_path))
    with pytest.raises(httpx.ReadTimeout):  # non-streamed: the client gives up waiting
        httpx.post(srv.url + "/v1/chat/completions", json=chat_body(QUESTION), timeout=0.5)
    _wait_idle(srv)
    with httpx.Client(timeout=30) as c, c.stream(
            "POST", srv.url + "/v1/chat/completions", json=chat_body(QUESTION, stream=True)) as r:
        lines = r.iter_lines()  # kept: a dropped iterator closes the connection
        next(lines)  # the first chunk arrived: the run holds the slot
        time.sleep(0.2)
        assert srv.app.state.service.slots.in_flight == 1
    _wait_idle(srv)
    with httpx.Client(timeout=30) as c, c.stream(
            "POST", srv.url + "/api/ask", data={"question": QUESTION}) as r:
        lines = r.iter_lines()
        next(lines)
        time.sleep(0.2)
        assert srv.app.state.service.slots.in_flight == 1
    _wait_idle(srv)
    assert httpx.get(srv.url + "/healthz").json()["in_flight"] == 0


def test_the_same_image_sent_at_once_is_saved_once(tmp_path) -> None:
    import threading

    store = media.ImageStore(tmp_path / "uploads", max_pixels=10**8)
    data = png((1200, 900))
    start, errors, paths = threading.Barrier(6), [], []

    def save() -> None:
        start.wait()
        try:
            paths.append(store.save(data))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(paths)) == 1
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == [paths[0].name]
