"""Unit tests of the guards: address checks, the pinned remote fetcher, slots, config, command."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from deepmmsearch.serve.security import ApiError, RemoteImageFetcher, Slots, address_refusal


def png_bytes(size=(8, 8)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, "red").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("addr, refused", [
    ("93.184.216.34", None), ("2606:4700::1111", None),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
    ("::ffff:10.0.0.1", "private"), ("100.64.0.1", "non-public"), ("fc00::1", "private"),
])
def test_address_refusal(addr, refused) -> None:
    why = address_refusal(addr)
    assert (why is None) if refused is None else (refused in why)


def fetcher(routes: dict[str, httpx.Response], dns: dict[str, list[str]], **kw) -> tuple:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return routes[f"{request.url.host}{request.url.path}"]

    async def resolver(host: str, port: int) -> list[str]:
        if host not in dns:
            raise OSError("no such host")
        return dns[host]

    f = RemoteImageFetcher(max_bytes=kw.pop("max_bytes", 10_000), resolver=resolver,
                           transport=httpx.MockTransport(handler), **kw)
    return f, seen


async def test_fetch_connects_to_the_checked_address() -> None:
    f, seen = fetcher({"93.184.216.34/a.png": httpx.Response(200, content=png_bytes())},
                      {"img.example": ["93.184.216.34"]})
    assert (await f.fetch("https://img.example/a.png"))[:4] == b"\x89PNG"
    assert seen[0].url.host == "93.184.216.34" and seen[0].headers["host"] == "img.example"
    assert seen[0].extensions["sni_hostname"] == "img.example"


async def test_redirect_to_a_private_address_is_refused() -> None:
    f, seen = fetcher({"93.184.216.34/a.png": httpx.Response(
        302, headers={"location": "http://internal.example/secret.png"})},
        {"img.example": ["93.184.216.34"], "internal.example": ["10.0.0.7"]})
    with pytest.raises(ApiError, match="private address") as err:
        await f.fetch("http://img.example/a.png")
    assert err.value.status == 400 and len(seen) == 1  # never connected to 10.0.0.7


async def test_every_resolved_address_is_checked() -> None:
    f, seen = fetcher({}, {"mixed.example": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(ApiError, match="loopback"):
        await f.fetch("http://mixed.example/a.png")
    assert not seen


async def test_fetch_limits_and_failures() -> None:
    f, _ = fetcher({"93.184.216.34/big": httpx.Response(200, content=b"x" * 20_000),
                    "93.184.216.34/gone": httpx.Response(404),
                    "93.184.216.34/loop": httpx.Response(301, headers={"location": "/loop"})},
                   {"img.example": ["93.184.216.34"]}, max_redirects=2)
    with pytest.raises(ApiError) as err:
        await f.fetch("http://img.example/big")
    assert err.value.status == 413
    with pytest.raises(ApiError, match="HTTP 404"):
        await f.fetch("http://img.example/gone")
    with pytest.raises(ApiError, match="too many redirects"):
        await f.fetch("http://img.example/loop")
    with pytest.raises(ApiError, match="cannot resolve"):
        await f.fetch("http://nowhere.example/x")
    with pytest.raises(ApiError, match="credentials"):
        await f.fetch("http://user:pw@img.example/x")


def test_slots() -> None:
    slots = Slots(1)
    release = slots.acquire()
    with pytest.raises(ApiError) as err:
        slots.acquire()
    assert err.value.status == 429
    release()
    release()  # idempotent
    assert slots.in_flight == 0
    slots.acquire()


def test_serve_config(tmp_path) -> None:
    from deepmmsearch.commands.serve import load_serve_config
    from deepmmsearch.config import load_config
    from deepmmsearch.registry import ConfigError

    cfg = load_serve_config("configs/ask_fixture.yaml", [], port=9999)  # an agent config
    assert cfg.stage == "serve" and cfg.port == 9999 and cfg.host == "127.0.0.1"
    assert cfg.loopback_only
    cfg = load_serve_config("configs/serve_fixture.yaml", ["host=0.0.0.0", "max_concurrent=2"])
    assert not cfg.loopback_only and cfg.max_concurrent == 2
    with pytest.raises(ConfigError, match="max_upload_bytes"):
        load_config(data={"stage": "serve", "max_upload_byte": 1})
    with pytest.raises(ConfigError, match="max_concurrent"):
        load_config(data={"stage": "serve", "max_concurrent": 0})
    with pytest.raises(ConfigError, match="unknown text_search backend"):
        load_config(data={"stage": "serve", "retrieve": {"name": "bm26"}})
    shipped = sorted(Path("configs").glob("serve_*.yaml"))
    assert len(shipped) >= 2
    for path in shipped:
        assert load_config(path, expect="serve").stage == "serve"


def test_serve_command_refuses_open_bind_without_key(capsys) -> None:
    from deepmmsearch.cli import main

    assert main(["serve", "-c", "configs/serve_fixture.yaml", "--host", "0.0.0.0"]) == 2
    assert "refusing to bind 0.0.0.0 without an API key" in capsys.readouterr().err


def test_serve_command_end_to_end(tmp_path, scene_image) -> None:
    """`deepmmsearch serve` as a user runs it: a subprocess on a free loopback port."""
    import base64
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "deepmmsearch", "serve", "-c", "configs/serve_fixture.yaml",
           "--port", str(port), f"work_dir={tmp_path}/serve", f"trajectories_dir={tmp_path}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        image = base64.b64encode(Path(scene_image).read_bytes()).decode()
        r = httpx.post(url + "/v1/chat/completions", timeout=30, json={
            "model": "deepmmsearch", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is the wingspan of this bird?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}]}]})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "131 to 170 cm"
    finally:
        proc.terminate()
        out = proc.communicate(timeout=15)[0]
    assert f"http://127.0.0.1:{port}/" in out
