"""A local HTTP server on 127.0.0.1 that misbehaves on purpose (for the web-fault tests).

``FaultServer().on(path, behaviour)`` where a behaviour writes the whole response itself:
:func:`drip` (headers, then one byte at a time), :func:`body` (any bytes and headers, e.g. a gzip
bomb), :func:`redirect`. Every request's path and headers are recorded in ``seen``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Behaviour = Callable[[BaseHTTPRequestHandler], None]


def body(data: bytes, status: int = 200, **headers: str) -> Behaviour:
    def write(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", headers.pop("content_type", "application/json"))
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return write


def drip(data: bytes, every_s: float) -> Behaviour:
    """A body sent one byte every ``every_s`` seconds: each read is quick, the whole is not."""
    def write(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        for i in range(len(data)):
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
            time.sleep(every_s)

    return write


def redirect(location: str, status: int = 302) -> Behaviour:
    def write(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return write


class FaultServer:
    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                server.seen.append((self.command, self.path,
                                    {k.lower(): v for k, v in self.headers.items()}))
                behaviour = server.routes.get(path, body(b'{"error": "no route"}', 404))
                try:
                    behaviour(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def on(self, path: str, behaviour: Behaviour) -> FaultServer:
        self.routes[path] = behaviour
        return self

    def headers_seen(self) -> list[dict[str, str]]:
        return [h for _, _, h in self.seen]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
