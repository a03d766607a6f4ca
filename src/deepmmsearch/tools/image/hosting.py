"""Image hosts: turn a crop's bytes into a URL that a reverse-image API can fetch.

SerpApi's image engines take a public URL, never bytes (``reference/backends.md`` §3), so the
``serpapi-lens`` backend uploads each crop through an :class:`~deepmmsearch.roles.ImageHost` (``put(data) -> url``).
File names are content hashes: the same crop gets the same URL (SerpApi's cache then answers it
for free) and nothing else leaks into the name. Registered as ``image_host``:

- ``static``: writes into a folder served over HTTP — by a server you run (``base_url``), or, if
  none is given, by a local thread serving ``root`` on 127.0.0.1 (tests, LAN tools). A public
  API needs a public ``base_url``.
- ``s3``: an S3-compatible bucket (AWS, MinIO, R2, ...) via boto3; returns a presigned GET URL
  valid for ``expires_s`` (or ``public_base_url/key`` for a public bucket).
  ``pip install 'deepmmsearch[s3]'``; credentials come from boto3's usual chain.

Uploaded crops are visible to whoever gets the URL, and to the search provider.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import threading
from pathlib import Path
from typing import Any

from deepmmsearch.registry import ConfigError, missing_dependency

log = logging.getLogger(__name__)

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def content_name(data: bytes, suffix: str = ".png") -> str:
    """``<sha256 prefix><suffix>``: the same bytes always get the same name."""
    if suffix not in CONTENT_TYPES:
        raise ValueError(f"unsupported image suffix {suffix!r}; one of {', '.join(CONTENT_TYPES)}")
    return hashlib.sha256(data).hexdigest()[:32] + suffix


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("static host: " + format, *args)


class StaticDirHost:
    """Write crops into ``root`` and return ``base_url/<hash>.png``.

    Without ``base_url`` a daemon thread serves ``root`` on ``host:port`` (port 0 picks a free
    one) from the first ``put`` until :meth:`close`.
    """

    name = "static"

    def __init__(self, root: str, base_url: str | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.host = host
        self.port = port
        self._server: http.server.ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def url_for(self, name: str) -> str:
        return f"{self.serve()}/{name}"

    def serve(self) -> str:
        """The base URL, starting the local server if this host runs its own."""
        if self.base_url:
            return self.base_url
        with self._lock:
            if self._server is None:
                self.root.mkdir(parents=True, exist_ok=True)
                handler = functools.partial(_QuietHandler, directory=str(self.root))
                self._server = http.server.ThreadingHTTPServer((self.host, self.port), handler)
                self._server.daemon_threads = True
                threading.Thread(target=self._server.serve_forever, name="static-image-host",
                                 daemon=True).start()
                log.info("static image host serving %s on %s:%d", self.root, self.host,
                         self._server.server_address[1])
            return f"http://{self.host}:{self._server.server_address[1]}"

    def put(self, data: bytes, suffix: str = ".png") -> str:
        name = content_name(data, suffix)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / name
        if not path.exists():
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return self.url_for(name)

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    def __enter__(self) -> StaticDirHost:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class S3Host:
    """Upload to ``bucket`` under ``prefix``; return a presigned GET URL (or a public one).

    ``client`` is any object with boto3's ``put_object`` and ``generate_presigned_url`` (a fake
    in tests); by default ``boto3.client("s3", endpoint_url=..., region_name=...)``.
    """

    name = "s3"

    def __init__(self, bucket: str, prefix: str = "deepmmsearch/crops/", endpoint_url: str | None = None,
                 region: str | None = None, expires_s: int = 3600, public_base_url: str | None = None,
                 client: Any = None) -> None:
        if not bucket:
            raise ConfigError("image_host s3: 'bucket' is required")
        if expires_s <= 0 or expires_s > 7 * 24 * 3600:
            raise ConfigError("image_host s3: expires_s must be in (0, 604800] (S3's presign limit)")
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.expires_s = int(expires_s)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise missing_dependency("boto3", "s3", "the s3 image host") from None
            self._client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._client

    def key_for(self, name: str) -> str:
        return f"{self.prefix}{name}" if not self.prefix or self.prefix.endswith("/") else f"{self.prefix}/{name}"

    def put(self, data: bytes, suffix: str = ".png") -> str:
        key = self.key_for(content_name(data, suffix))
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=CONTENT_TYPES[suffix])
        if self.public_base_url:
            return f"{self.public_base_url}/{key}"
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expires_s)
