"""A local OpenAI-compatible chat server for tests: records every request and answers with
scripted turns, dropping the stop string from the output the way vLLM and SGLang do.

    with FakeChatServer(turns=["<reason>r</reason><answer>a</answer>"]) as srv:
        policy = OpenAIPolicy(model="m", base_url=srv.base_url)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from deepmmsearch.protocol import information_spans

# a reply: (status, body (dict → JSON, str → raw), headers)
Reply = tuple[int, Any, dict[str, str]]


def completion(text: str, finish: str = "stop", tokens: int = 7, **choice: Any) -> dict[str, Any]:
    return {
        "id": "cmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish, **choice}],
        "usage": {"prompt_tokens": 100, "completion_tokens": tokens, "total_tokens": 100 + tokens},
    }


def scripted_turn(text: str, request: dict[str, Any], *, report_stop: bool) -> dict[str, Any]:
    """What a vLLM server returns for ``text``: cut at the first requested stop string, which is
    removed from the output (``stop_reason`` reports it when ``report_stop``)."""
    stops = request.get("stop") or []
    hits = [(text.find(s), s) for s in stops if s in text]
    if hits:
        pos, stop = min(hits)
        extra = {"stop_reason": stop} if report_stop else {}
        return completion(text[:pos], "stop", tokens=len(text) // 4, **extra)
    return completion(text, "stop", tokens=len(text) // 4)


class FakeChatServer:
    def __init__(self, turns: list[str] | None = None,
                 replies: list[Reply | Callable[[dict], Reply]] | None = None,
                 report_stop: bool = False, delay_s: float = 0.0,
                 by_model: dict[str, str] | None = None) -> None:
        self.turns = list(turns or [])
        self.by_model = dict(by_model or {})  # model name -> fixed reply (e.g. a summariser)
        self.replies = list(replies or [])
        self.report_stop = report_stop
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            if body.get("model") in self.by_model:
                return 200, completion(self.by_model[body["model"]]), {}
            if self.replies:
                reply = self.replies.pop(0)
                return reply(body) if callable(reply) else reply
            # scripted turns: the turn index is the number of assistant turns so far
            msgs = body.get("messages", [])
            i = sum(m.get("role") == "assistant" for m in msgs)
            if body.get("continue_final_message"):
                i = len(information_spans(msgs[-1]["content"]))
            text = self.turns[i] if i < len(self.turns) else "out of script"
        return 200, scripted_turn(text, body, report_stop=self.report_stop), {}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                with server._lock:
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    server.paths.append(self.path)
                if server.delay_s:
                    time.sleep(server.delay_s)
                status, body, headers = server._next(json.loads(raw))
                data = body if isinstance(body, str) else json.dumps(body)
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(data.encode())))
                    self.end_headers()
                    self.wfile.write(data.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        return Handler

    def __enter__(self) -> FakeChatServer:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
