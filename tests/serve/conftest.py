"""Fixtures for the server tests: a real uvicorn server on 127.0.0.1 (random port) in a thread,
running the scripted policy with the fixture tools."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures"
BROWSER_SKIPS: list[str] = []


def serve_data(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A serve config (as data) over the fixture tools; ``agent_overrides`` merges into agent."""
    agent = {
        "policy": {"name": "scripted", "path": str(FIXTURES / "ask_script.yaml")},
        "text_search": {"name": "fixture", "path": str(FIXTURES / "text_hits.yaml")},
        "image_search": {"name": "fixture", "path": str(FIXTURES / "image_hits.yaml")},
        "grounder": {"name": "fixed", "box": [20, 20, 90, 80]},
        "summarizer": "extractive",
    }
    agent.update(overrides.pop("agent_overrides", {}))
    data = {"stage": "serve", "agent": agent, "work_dir": str(tmp_path / "serve"),
            "trajectories_dir": str(tmp_path / "runs")}
    data.update(overrides)
    return data


@dataclass
class Running:
    url: str
    app: Any
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(app: Any) -> Running:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return Running(f"http://127.0.0.1:{port}", app, server, thread)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """``make_server(**config_overrides)`` → a started :class:`Running` (stopped at teardown)."""
    from deepmmsearch.config import load_config
    from deepmmsearch.serve.app import create_app

    running: list[Running] = []

    def make(*, app_kwargs: dict | None = None, **overrides: Any) -> Running:
        cfg = load_config(data=serve_data(tmp_path, **overrides), expect="serve")
        srv = start_server(create_app(cfg, **(app_kwargs or {})))
        running.append(srv)
        return srv

    yield make
    for srv in running:
        srv.stop()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say loudly why the browser test was skipped (pytest -q hides skip reasons)."""
    for reason in BROWSER_SKIPS:
        terminalreporter.write_line(f"BROWSER TEST SKIPPED: {reason}", yellow=True, bold=True)
