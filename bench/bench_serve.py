"""What the server adds on top of the agent: HTTP, JSON, image upload, SSE, the event queue.

Runs the fixture agent (scripted policy, fixture tools: the agent itself costs ~nothing, so the
server's own overhead shows) in process as the baseline, then through a real uvicorn server on
127.0.0.1 (``deepmmsearch serve`` in a subprocess): non-streaming and streaming chat completions
with an image, concurrent requests, and
/retrieve batches. Prints per-request latency and the ratio to the in-process baseline.

    .venv/bin/python bench/bench_serve.py [--n 40] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _start(port: int, tmp: str, concurrency: int) -> subprocess.Popen:
    """`deepmmsearch serve` in its own process (a server thread in this process would share
    the GIL with the client and add ~40 ms a request on this box)."""
    import httpx

    cmd = [sys.executable, "-m", "deepmmsearch", "serve", "-c", "configs/serve_fixture.yaml",
           "--port", str(port), f"work_dir={tmp}", "save_trajectories=false",
           "trajectories_dir=null", f"max_concurrent={concurrency}", f"agent.artifacts_dir={tmp}/a"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the server did not start")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples) * 1000:7.1f} ms  mean {statistics.fmean(samples) * 1000:7.1f} ms"


async def _baseline(agent, image: str, n: int) -> list[float]:
    from deepmmsearch.agent.loop import run_episode

    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await run_episode(agent.episode("What is the wingspan of this bird?", image), agent.policy,
                          agent.toolbox)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str]) -> int:
    import httpx

    from deepmmsearch.agent.runtime import build_agent
    from deepmmsearch.config import load_config

    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--concurrency", type=int, default=4)
    args = p.parse_args(argv)
    image = str(ROOT / "tests/fixtures/scene.png")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(ROOT / "configs/serve_fixture.yaml",
                          [f"work_dir={tmp}", "save_trajectories=false", "trajectories_dir=null",
                           f"max_concurrent={args.concurrency}", f"agent.artifacts_dir={tmp}/a"],
                          expect="serve")
        cwd = os.getcwd()
        os.chdir(ROOT)  # the fixture config's paths are relative to the repository
        try:
            base = asyncio.run(_baseline(build_agent(cfg.agent), image, args.n))
        finally:
            os.chdir(cwd)
        port = _free_port()
        proc = _start(port, tmp, args.concurrency)
        url = f"http://127.0.0.1:{port}"
        data_url = "data:image/png;base64," + base64.b64encode(Path(image).read_bytes()).decode()
        body = {"model": "deepmmsearch", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is the wingspan of this bird?"},
            {"type": "image_url", "image_url": {"url": data_url}}]}]}
        try:
            with httpx.Client(base_url=url, timeout=60) as c:
                c.post("/v1/chat/completions", json=body).raise_for_status()  # warm up
                floor = []
                for _ in range(args.n):
                    t0 = time.perf_counter()
                    c.get("/healthz").raise_for_status()
                    floor.append(time.perf_counter() - t0)
                plain, stream = [], []
                for _ in range(args.n):
                    t0 = time.perf_counter()
                    c.post("/v1/chat/completions", json=body).raise_for_status()
                    plain.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    with c.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
                        for _line in r.iter_lines():
                            pass
                    stream.append(time.perf_counter() - t0)
                queries = {"queries": ["great egret wingspan"] * 64, "topk": 3, "return_scores": True}
                retr = []
                for _ in range(args.n):
                    t0 = time.perf_counter()
                    c.post("/retrieve", json=queries).raise_for_status()
                    retr.append(time.perf_counter() - t0)
            conc = _concurrent(url, body, args.n, args.concurrency)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    b = statistics.median(base)
    print(f"in-process episode (baseline)      {_ms(base)}")
    print(f"GET /healthz (HTTP floor)          {_ms(floor)}")
    print(f"POST /v1/chat/completions          {_ms(plain)}  x{statistics.median(plain) / b:.1f}")
    print(f"  stream=true                      {_ms(stream)}  x{statistics.median(stream) / b:.1f}")
    print(f"  {args.concurrency} clients at once: {conc:.1f} requests/s "
          f"(baseline sequential {1 / b:.1f} episodes/s)")
    print(f"POST /retrieve, 64 queries         {_ms(retr)}")
    return 0


def _concurrent(url: str, body: dict, n: int, k: int) -> float:
    import httpx

    def worker(count: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            for _ in range(count):
                c.post("/v1/chat/completions", json=body).raise_for_status()

    threads = [threading.Thread(target=worker, args=(n // k,)) for _ in range(k)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (n // k) * k / (time.perf_counter() - t0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
