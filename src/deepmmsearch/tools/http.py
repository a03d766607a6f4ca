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
  its key as a query parameter).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from deepmmsearch.tools.base import ToolError

log = logging.getLogger(__name__)

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Scrub ``value`` from error messages and HTTP logs from now on."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


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


class HttpClient:
    """JSON over HTTP for one backend (``name`` appears in every error message)."""

    def __init__(self, name: str, *, timeout_s: float = 15.0, retry: RetryPolicy | None = None,
                 rate_per_s: float | None = None, headers: dict[str, str] | None = None,
                 transport: Any = None) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.limiter = RateLimiter(rate_per_s) if rate_per_s else None
        self.headers = {"User-Agent": "deepmmsearch/0.1", "Accept": "application/json",
                        **(headers or {})}
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
                                       transport=self.transport, follow_redirects=True)
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
                resp = await self._client().request(method, url, params=params or None,
                                                    json=json_body, headers=headers)
            except httpx.TimeoutException:
                raise ToolError(f"{self.name}: no response within {self.timeout_s:g}s (timeout)",
                                retryable=True) from None
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
        except ValueError:
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
    """A short error string from a JSON error body (``error``/``message``/``detail``), if any."""
    try:
        data = json.loads(resp.content)
    except ValueError:
        return ""
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            val = data.get(key)
            if isinstance(val, dict):
                val = val.get("message") or val.get("detail") or json.dumps(val)[:200]
            if isinstance(val, str) and val.strip():
                return val.strip()[:200]
    return ""
