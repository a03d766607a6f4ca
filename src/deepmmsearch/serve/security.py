"""The server's guards: API key, body-size limit, concurrency limit, and safe remote fetching.

Every refusal is an :class:`ApiError` with an HTTP status and a sentence saying what to change;
the app renders it in OpenAI's error format ``{"error": {"message", "type", "code"}}``.

Remote image URLs (off unless ``allow_remote_images``) are fetched only from public addresses:
the host is resolved and *every* address must be global (no private, loopback, link-local,
multicast, reserved or unspecified address, IPv4-mapped forms included); the connection then
goes to the checked address itself (so a second DNS answer cannot point elsewhere), and each
redirect is checked the same way.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass
class ApiError(Exception):
    """An HTTP error with a clear message (rendered in OpenAI's error format)."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "code": self.code,
                          "param": None}}


# --- API key ---------------------------------------------------------------------------------


class ApiKeyCheck:
    """``Authorization: Bearer <key>`` against the key in the environment variable ``env``."""

    def __init__(self, env: str | None) -> None:
        self.env = env
        self.key: str | None = None
        if env:
            self.key = os.environ.get(env) or None
            if self.key is None:
                from deepmmsearch.registry import ConfigError

                raise ConfigError(f"api_key_env is {env!r} but that environment variable is empty; "
                                  f"export {env}=<a secret> or remove api_key_env")

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def check(self, authorization: str | None) -> None:
        if self.key is None:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'",
                           "authentication_error", "missing_api_key",
                           {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(token.strip().encode(), self.key.encode()):
            raise ApiError(401, "invalid API key", "authentication_error", "invalid_api_key",
                           {"WWW-Authenticate": "Bearer"})


# --- request limits --------------------------------------------------------------------------


def require_content_type(content_type: str | None, *wanted: str) -> None:
    """415 unless the media type (before any ``;`` parameters) is one of ``wanted``."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in wanted:
        raise ApiError(415, f"unsupported content type {media or '(none)'!r}: send "
                       f"{' or '.join(wanted)}", code="unsupported_media_type")


async def read_limited(request, limit: int, what: str = "request body") -> bytes:
    """Read a Starlette request's body, refusing (413) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(what, limit)
        except ValueError:
            raise ApiError(400, "malformed Content-Length header") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(what, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def check_question(text: str, limit: int, what: str = "the question") -> None:
    """400 when ``text`` is longer than ``limit`` characters."""
    if len(text) > limit:
        raise ApiError(400, f"{what} is {len(text):,} characters long; the server's limit is "
                       f"{limit:,} (max_question_chars)", code="question_too_long")


def parse_json_body(body: bytes) -> object:
    """``json.loads`` for a request body; 400 for malformed or too deeply nested JSON."""
    import json

    try:
        return json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply to be read as JSON") from None


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(413, f"{what} is larger than the server's limit of {limit:,} bytes",
                    code="payload_too_large")


class Slots:
    """A non-blocking concurrency limit: ``acquire`` returns a release callable or raises 429."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def acquire(self) -> Callable[[], None]:
        if self.in_flight >= self.limit:
            raise ApiError(429, f"the server is busy: {self.in_flight} requests are running and "
                           f"the limit is {self.limit}; retry shortly", "rate_limit_error",
                           "too_many_requests", {"Retry-After": "2"})
        self.in_flight += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= 1

        return release


# --- remote images ---------------------------------------------------------------------------


def address_refusal(address: str) -> str | None:
    """Why ``address`` may not be fetched, e.g. "a private address (10.0.0.1)"; None if public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        why = address_refusal(str(embedded))
        if why:
            return f"{why[:-1]}, inside {ip})" if why.endswith(")") else why
        ip = embedded
    for attr, what in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                       ("is_unspecified", "unspecified"), ("is_multicast", "multicast"),
                       ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, attr):
            return f"a {what} address ({ip})"
    if not ip.is_global:
        return f"a non-public address ({ip})"
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_COMPAT = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress._BaseAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in every form a router may translate it from:
    IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``,
    NAT64 ``64:ff9b::a.b.c.d`` (and the local-use ``64:ff9b:1::/48``), Teredo ``2001:0::/32``
    (the client address is stored inverted). None for a plain IPv6 or an IPv4 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _COMPAT and int(ip) > 1:  # ::a.b.c.d (deprecated); :: and ::1 are checked as IPv6
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


class RemoteImageFetcher:
    """Fetch an http(s) image URL safely (see the module docstring). Returns the bytes."""

    def __init__(self, *, max_bytes: int, timeout_s: float = 10.0, max_redirects: int = 3,
                 resolver: Resolver | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.resolver = resolver or system_resolver
        self.transport = transport  # tests pass httpx.MockTransport

    async def check_url(self, url: str) -> tuple[str, str, int]:
        """Validate ``url``; returns (host, the public address to connect to, port)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ApiError(400, f"image URL scheme {parts.scheme!r} is not allowed: use http(s) "
                           "or a data: URL", code="bad_image_url")
        host = parts.hostname
        if not host:
            raise ApiError(400, f"image URL {url!r} has no host", code="bad_image_url")
        if parts.username or parts.password:
            raise ApiError(400, "image URLs with credentials are not allowed", code="bad_image_url")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise ApiError(400, f"cannot resolve image host {host!r}: {exc}",
                           code="bad_image_url") from None
        if not addresses:
            raise ApiError(400, f"image host {host!r} has no address", code="bad_image_url")
        for addr in addresses:
            why = address_refusal(addr)
            if why:
                raise ApiError(400, f"refusing to fetch {url!r}: {host} resolves to {why}",
                               code="forbidden_address")
        return host, addresses[0], port

    async def fetch(self, url: str) -> bytes:
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout_s,
                                     follow_redirects=False, trust_env=False) as client:
            for _ in range(self.max_redirects + 1):
                host, address, port = await self.check_url(url)
                status, location, body = await self._get_pinned(client, url, host, address, port)
                if status in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                if status != 200:
                    raise ApiError(400, f"fetching the image URL failed with HTTP {status}",
                                   code="image_fetch_failed")
                return body
        raise ApiError(400, f"too many redirects (more than {self.max_redirects})",
                       code="image_fetch_failed")

    async def _get_pinned(self, client: httpx.AsyncClient, url: str, host: str, address: str,
                          port: int) -> tuple[int, str | None, bytes]:
        parts = urlsplit(url)
        literal = f"[{address}]" if ":" in address else address
        pinned = parts._replace(netloc=f"{literal}:{port}").geturl()
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        request = client.build_request("GET", pinned, headers={"Host": host_header},
                                       extensions=extensions)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(400, f"cannot fetch the image URL: {type(exc).__name__}: {exc}",
                           code="image_fetch_failed") from None
        try:
            if response.status_code != 200:
                return response.status_code, response.headers.get("location"), b""
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise _too_large("the remote image", self.max_bytes)
                chunks.append(chunk)
            return 200, None, b"".join(chunks)
        finally:
            await response.aclose()
