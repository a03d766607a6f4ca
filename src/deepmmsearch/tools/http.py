"""HTTP plumbing shared by the web backends: timeouts, retries, rate limiting, error mapping.

:class:`HttpClient` wraps ``httpx.AsyncClient`` (one per event loop, so ``asyncio.run`` may be
called many times) and returns parsed JSON or raises
:class:`~deepmmsearch.tools.base.ToolError`:

- 429 and 5xx are retried with capped exponential back-off, honouring ``Retry-After`` (seconds or
  an HTTP date); a ``Retry-After`` longer than ``max_retry_after_s`` fails at once instead of
  stalling the episode. 400, 401, 403 and other 4xx are never retried; neither are timeouts or
  refused connections (they fail fast and the episode sees the error).
- A malformed JSON body, a timeout or a transport error becomes a ToolError with a short message.
- Secrets (API keys) registered with :func:`register_secret` are scrubbed from every ToolError
  message and from the ``httpx``/``httpcore`` log records (httpx logs full URLs, and SerpApi takes
  its key as a query parameter). Error bodies are redacted *before* they are cut short, and any
  ``Bearer <token>`` / ``api_key=<value>`` text is masked too.
- Hostile or broken servers: each attempt has an overall deadline (``timeout_s`` covers connect,
  headers and the whole body, so one byte a second cannot stall a search), a body cap
  (``max_response_bytes`` after decompression; gzip and deflate are inflated here in bounded
  steps, so a gzip bomb stops at the cap), and redirects are followed by hand (at most
  ``max_redirects``): a request that carries a secret (a header value or a query parameter that
  is a registered key) is never redirected to another origin — that is an error instead.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from typing import Any

from deepmmsearch.tools.base import ToolError

log = logging.getLogger(__name__)

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Scrub ``value`` from error messages and HTTP logs from now on."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


_TOKENISH = re.compile(r"(?i)(\bbearer\s+|\b(?:api[_-]?key|x-api-key|x-subscription-token|token)"
                       r"[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{6,}")


def redact(text: str) -> str:
    """``text`` with every registered secret, and anything shaped like a bearer token or an
    ``api_key=...`` value, replaced by ``***``."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return _TOKENISH.sub(lambda m: m.group(1) + "***", text)


def has_secret(text: str) -> bool:
    return any(secret in text for secret in _SECRETS)


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = redact(str(record.msg))
            if isinstance(record.args, tuple):
                record.args = tuple(a if isinstance(a, (int, float)) else redact(str(a))
                                    for a in record.args)
        return True


for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_RedactFilter())


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; sleeps ``base_s·2^i`` (jittered, at most ``max_s``)."""

    attempts: int = 3
    base_s: float = 0.5
    max_s: float = 8.0
    max_retry_after_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_s, self.base_s * 2**attempt) * (0.5 + random.random() / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RateLimiter:
    """At most ``rate_per_s`` requests per second, shared by every episode using the backend.

    Requests are spaced ``1 / rate_per_s`` apart; ``burst`` requests may go back to back after
    an idle period. Thread-safe; no asyncio primitives, so one limiter serves several loops.
    """

    def __init__(self, rate_per_s: float, burst: int = 1) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self.interval = 1.0 / rate_per_s
        self.burst = max(1, burst)
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book the next slot; returns how long the caller must wait for it."""
        with self._lock:
            now = time.monotonic()
            earliest = now - (self.burst - 1) * self.interval
            slot = max(self._next, earliest)
            self._next = slot + self.interval
            return max(0.0, slot - now)

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)


DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


class _Inflater:
    """Decode a body's ``Content-Encoding`` (identity, gzip, deflate) and stop at ``cap`` bytes
    of decoded output, inflating in bounded steps (a bomb never expands past the cap)."""

    def __init__(self, encoding: str | None, cap: int, name: str) -> None:
        codings = [c.strip().lower() for c in (encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise ToolError(f"{name}: unsupported Content-Encoding {encoding!r} (asked for gzip, "
                            "deflate or none)")
        self.coding = codings[0] if codings else None
        self.cap = cap
        self.name = name
        self.size = 0
        self.tried_raw = False
        self.z = (zlib.decompressobj(31) if self.coding in ("gzip", "x-gzip") else
                  zlib.decompressobj(15) if self.coding == "deflate" else None)

    def _count(self, n: int) -> None:
        self.size += n
        if self.size > self.cap:
            raise ToolError(f"{self.name}: the response is larger than {self.cap:,} bytes "
                            "(max_response_bytes)")

    def feed(self, data: bytes) -> list[bytes]:
        if self.z is None:
            self._count(len(data))
            return [data]
        out = []
        buf = data
        while buf and not self.z.eof:
            try:
                piece = self.z.decompress(buf, self.cap - self.size + 1)
            except zlib.error as exc:
                if self.coding == "deflate" and self.size == 0 and not self.tried_raw:
                    self.z = zlib.decompressobj(-15)  # raw deflate, as some servers send it
                    self.tried_raw = True
                    continue
                raise ToolError(f"{self.name}: the {self.coding} body is corrupt ({exc})") from None
            self._count(len(piece))
            out.append(piece)
            buf = self.z.unconsumed_tail
        return out

    def finish(self) -> list[bytes]:
        if self.z is None:
            return []
        try:
            piece = self.z.flush()
        except zlib.error as exc:
            raise ToolError(f"{self.name}: the {self.coding} body is corrupt ({exc})") from None
        self._count(len(piece))
        return [piece]


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


class HttpClient:
    """JSON over HTTP for one backend (``name`` appears in every error message)."""

    def __init__(self, name: str, *, timeout_s: float = 15.0, retry: RetryPolicy | None = None,
                 rate_per_s: float | None = None, headers: dict[str, str] | None = None,
                 transport: Any = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 max_redirects: int = 3) -> None:
        if timeout_s <= 0:
            raise ValueError(f"{name}: timeout_s must be > 0, got {timeout_s}")
        if max_response_bytes < 1:
            raise ValueError(f"{name}: max_response_bytes must be >= 1, got {max_response_bytes}")
        self.name = name
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        self.retry = retry or RetryPolicy()
        self.limiter = RateLimiter(rate_per_s) if rate_per_s else None
        self.headers = {"User-Agent": "deepmmsearch/0.1", "Accept": "application/json",
                        "Accept-Encoding": "gzip, deflate", **(headers or {})}
        self.transport = transport  # httpx.MockTransport in tests, or a custom transport
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:  # headers may hold a key: never show them
        return f"HttpClient({self.name!r}, timeout_s={self.timeout_s})"

    def _client(self):
        import httpx

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = httpx.AsyncClient(timeout=self.timeout_s, headers=self.headers,
                                       transport=self.transport, follow_redirects=False)
            self._clients[loop] = client
        return client

    async def request_json(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                           json_body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Send a request and return the decoded JSON body; failures raise ToolError."""
        import httpx

        params = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(max(1, self.retry.attempts)):
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                resp = await asyncio.wait_for(
                    self._attempt(method, url, params or None, json_body, headers),
                    timeout=self.timeout_s)
            except (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError):
                raise ToolError(f"{self.name}: no response within {self.timeout_s:g}s "
                                "(timeout, the whole response counts)", retryable=True) from None
            except httpx.HTTPError as exc:
                raise ToolError(redact(f"{self.name}: cannot reach the server "
                                       f"({type(exc).__name__}: {exc})"), retryable=True) from None
            status = resp.status_code
            if status < 400:
                return self._decode(resp)
            wait = self._retry_wait(resp, attempt)
            if wait is None:
                raise self._http_error(resp, attempt + 1)
            log.info("%s: HTTP %d, retrying in %.2fs (attempt %d/%d)", self.name, status, wait,
                     attempt + 1, self.retry.attempts)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def _attempt(self, method: str, url: str, params: Any, json_body: Any,
                       headers: dict[str, str] | None):
        """One request, redirects followed by hand, body read under the cap → a Response."""
        import httpx

        client = self._client()
        request = client.build_request(method, url, params=params, json=json_body,
                                       headers=headers)
        for _ in range(self.max_redirects + 1):
            resp = await client.send(request, stream=True)
            try:
                nxt = resp.next_request if resp.status_code in _REDIRECTS else None
                if nxt is None:
                    content = await self._read_body(resp)
                    kept = [(k, v) for k, v in resp.headers.multi_items()
                            if k.lower() not in ("content-encoding", "content-length")]
                    return httpx.Response(resp.status_code, headers=kept, content=content,
                                          request=request)
            finally:
                await resp.aclose()
            if _origin(nxt.url) != _origin(request.url) and self._carries_secret(request):
                raise ToolError(f"{self.name}: the server redirected to another origin "
                                f"({nxt.url.scheme}://{nxt.url.host}); not followed, because "
                                "the request carries an API key")
            request = nxt
        raise ToolError(f"{self.name}: more than {self.max_redirects} redirects")

    @staticmethod
    def _carries_secret(request) -> bool:
        return has_secret(str(request.url)) or any(has_secret(v) for v in request.headers.values())

    async def _read_body(self, resp) -> bytes:
        import httpx

        declared = resp.headers.get("content-length")
        if (declared and declared.isdigit() and int(declared) > self.max_response_bytes
                and not resp.headers.get("content-encoding")):
            raise ToolError(f"{self.name}: the response is larger than "
                            f"{self.max_response_bytes:,} bytes (max_response_bytes)")
        try:  # a transport that hands over a response already read (httpx.MockTransport)
            content = resp.content
        except httpx.ResponseNotRead:
            pass
        else:
            _Inflater(None, self.max_response_bytes, self.name).feed(content)
            return content
        inflater = _Inflater(resp.headers.get("content-encoding"), self.max_response_bytes,
                             self.name)
        chunks: list[bytes] = []
        async for raw in resp.aiter_raw():
            chunks.extend(inflater.feed(raw))
        chunks.extend(inflater.finish())
        return b"".join(chunks)

    def _retry_wait(self, resp, attempt: int) -> float | None:
        """Seconds to wait before retrying ``resp``, or None when it must not be retried."""
        status = resp.status_code
        if status != 429 and status < 500:
            return None
        if attempt + 1 >= self.retry.attempts:
            return None
        after = parse_retry_after(resp.headers.get("Retry-After"))
        if after is None:
            return self.retry.backoff(attempt)
        if after > self.retry.max_retry_after_s:
            return None
        return after

    def _decode(self, resp) -> Any:
        try:
            return json.loads(resp.content)
        except (ValueError, RecursionError):
            kind = resp.headers.get("content-type", "unknown type")
            raise ToolError(f"{self.name}: malformed JSON in the response (HTTP {resp.status_code}, "
                            f"{len(resp.content)} bytes of {kind})") from None

    def _http_error(self, resp, attempts: int) -> ToolError:
        status = resp.status_code
        detail = _error_detail(resp)
        what = {401: "unauthorized: check the API key", 403: "forbidden", 429: "rate limited"}.get(
            status, "server error" if status >= 500 else "request rejected")
        after = parse_retry_after(resp.headers.get("Retry-After"))
        msg = f"{self.name}: HTTP {status} ({what})"
        if status == 429 and after is not None:
            msg += f"; the server asks to wait {after:.0f}s"
        if attempts > 1:
            msg += f" after {attempts} attempts"
        if detail:
            msg += f": {detail}"
        retryable = status == 429 or status >= 500
        return ToolError(redact(msg), retryable=retryable, status=status)


def _error_detail(resp) -> str:
    """A short error string from a JSON error body (``error``/``message``/``detail``), if any;
    redacted first, then cut to 200 characters (cutting first could leave half a key)."""
    try:
        data = json.loads(resp.content)
    except (ValueError, RecursionError):
        return ""
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            val = data.get(key)
            if isinstance(val, dict):
                val = val.get("message") or val.get("detail") or json.dumps(val)
            if isinstance(val, str) and val.strip():
                return redact(val.strip())[:200]
    return ""
