"""The web page's API: upload + live SSE stream, safe file serving, trajectory browsing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

QUESTION = "What is the wingspan of this bird?"


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        kind = next(ln[7:] for ln in block.splitlines() if ln.startswith("event: "))
        data = next(ln[6:] for ln in block.splitlines() if ln.startswith("data: "))
        out.append((kind, json.loads(data)))
    return out


def ask(srv, image: str | None, question: str = QUESTION, **kw) -> httpx.Response:
    files = {"image": ("scene.png", Path(image).read_bytes(), "image/png")} if image else None
    return httpx.post(srv.url + "/api/ask", data={"question": question}, files=files,
                      timeout=30, **kw)


def test_page_and_static(make_server) -> None:
    srv = make_server()
    r = httpx.get(srv.url + "/")
    assert r.status_code == 200 and 'id="ask-form"' in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(srv.url + "/static/app.js").status_code == 200
    assert httpx.get(srv.url + "/static/../settings.py").status_code == 404
    info = httpx.get(srv.url + "/api/info").json()
    assert info["auth_required"] is False and info["remote_images"] is False


def test_ask_streams_the_trajectory(make_server, scene_image) -> None:
    srv = make_server()
    r = ask(srv, scene_image)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    kinds = [k for k, _ in events]
    assert kinds == ["start", "turn", "tool_start", "observation", "turn", "tool_start",
                     "observation", "turn", "done"]
    start, crop_turn, done = events[0][1], events[3][1], events[-1][1]
    assert start["image_url"].startswith("/api/files/uploads/")
    call = crop_turn["tool_call"]
    assert call["box"] and call["crop_url"].startswith("/api/files/artifacts/")
    assert done["answer"] == "131 to 170 cm" and done["image_url"] == start["image_url"]
    for url in (start["image_url"], call["crop_url"], call["boxed_url"]):
        img = httpx.get(srv.url + url)
        assert img.status_code == 200 and img.content[:4] == b"\x89PNG"


def test_ask_bad_requests(make_server, scene_image) -> None:
    srv = make_server(max_upload_bytes=20_000)
    r = ask(srv, scene_image)  # 57 KB > 20 KB
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    r = httpx.post(srv.url + "/api/ask", json={"question": QUESTION})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]["message"]
    r = ask(srv, None, question="  ")
    assert r.status_code == 400 and "question" in r.json()["error"]["message"]
    r = httpx.post(srv.url + "/api/ask", data={"question": QUESTION},
                   files={"image": ("x.png", b"garbage", "image/png")})
    assert r.status_code == 400 and "cannot read the image" in r.json()["error"]["message"]


def test_files_cannot_escape_their_roots(make_server, tmp_path) -> None:
    srv = make_server()
    (tmp_path / "secret.png").write_bytes(b"\x89PNG secret")
    uploads = Path(srv.app.state.service.images.root)
    (uploads / "note.txt").write_text("not an image")
    (uploads / "link.png").symlink_to(tmp_path / "secret.png")
    for rel in ["uploads/../../secret.png", "uploads/%2e%2e/%2e%2e/secret.png",
                "uploads/..%2f..%2fsecret.png", "uploads/note.txt", "uploads/link.png",
                "uploads//etc/passwd", "nowhere/x.png", "uploads/missing.png",
                "artifacts/%2Fetc%2Fpasswd"]:
        r = httpx.get(f"{srv.url}/api/files/{rel}")
        assert r.status_code == 404, rel
        assert b"secret" not in r.content


def test_browse_past_trajectories(make_server, scene_image, tmp_path) -> None:
    srv = make_server()
    assert ask(srv, scene_image).status_code == 200  # appended to served.jsonl
    served = Path(srv.app.state.service.log_path).read_text().strip()
    runs = tmp_path / "runs" / "eval1"
    runs.mkdir(parents=True)
    row = json.loads(served)
    row.update(verdict={"correct": True, "judge": "rule"}, benchmark="simweb")
    (runs / "trajectories.jsonl").write_text(json.dumps(row) + "\n\n{broken\n" +
                                             json.dumps({"foo": 1}) + "\n")
    files = httpx.get(srv.url + "/api/trajectories").json()["files"]
    assert [f["id"] for f in files] == ["runs/eval1/trajectories.jsonl", "served/served.jsonl"]
    rows = httpx.get(srv.url + "/api/trajectories/rows",
                     params={"file": "runs/eval1/trajectories.jsonl"}).json()
    assert rows["total"] == 3
    good, broken, other = rows["rows"]
    assert good["correct"] is True and good["answer"] == "131 to 170 cm" and good["line"] == 1
    assert broken["line"] == 3 and "not valid JSON" in broken["error"]
    assert "not a trajectory" in other["error"]
    one = httpx.get(srv.url + "/api/trajectories/one",
                    params={"file": "runs/eval1/trajectories.jsonl", "line": 1}).json()
    assert one["extra"] == {"benchmark": "simweb"} and one["verdict"]["correct"] is True
    assert one["image_url"].startswith("/api/files/uploads/")
    assert one["turns"][0]["tool_call"]["crop_url"].startswith("/api/files/artifacts/")
    r = httpx.get(srv.url + "/api/trajectories/one",
                  params={"file": "runs/eval1/trajectories.jsonl", "line": 3})
    assert r.status_code == 422
    for bad in ["runs/../runs/eval1/trajectories.jsonl", "/etc/passwd", "served/../x.jsonl",
                "runs/eval1/../../serve/served.jsonl"]:
        r = httpx.get(srv.url + "/api/trajectories/rows", params={"file": bad})
        assert r.status_code == 404, bad
    r = httpx.get(srv.url + "/api/trajectories/one", params={"file": "served/served.jsonl",
                                                             "line": "x"})
    assert r.status_code == 400
