"""A local HTTP server that plays recorded API responses (for the web text-search tests).

Routes map ``(METHOD, path)`` to a queue of :class:`Reply`; the last reply repeats. Every request
is recorded (method, path, query, headers, JSON body) so tests can check what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

WEB_FIXTURES = Path(__file__).parent.parent / "fixtures" / "web"


def fixture_bytes(name: str) -> bytes:
    return (WEB_FIXTURES / name).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


def recorded(name: str, status: int = 200, **kw) -> Reply:
    """A reply whose body is the recorded response ``tests/fixtures/web/<name>``."""
    return Reply(status, fixture_bytes(name), **kw)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object


class MockWebServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                seen = Seen(self.command, parts.path,
                            {k: v[0] for k, v in parse_qs(parts.query).items()},
                            {k.lower(): v for k, v in self.headers.items()}, body)
                reply = server._next(seen)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data = reply.payload()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.headers.pop("Content-Type", "application/json"))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method.upper(), path)] = [Reply(**vars(r)) for r in replies]

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            queue = self.routes.get((seen.method, seen.path))
            if not queue:
                return Reply(404, {"error": f"no route for {seen.method} {seen.path}"})
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            return Reply(**vars(reply) | {"headers": dict(reply.headers)})

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
