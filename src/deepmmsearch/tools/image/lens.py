"""``serpapi-lens`` image search: SerpApi Google Lens or Google reverse image search.

SerpApi takes the image as a public URL, so each searched image (usually a crop) is first
uploaded through an image host (:mod:`deepmmsearch.tools.image.hosting`)::

    image_search:
      name: serpapi-lens
      engine: google_lens            # or google_reverse_image (gives snippets)
      host: {name: s3, bucket: my-crops, expires_s: 900}

The key comes from ``$SERPAPI_API_KEY`` (``api_key_env`` names another variable). Hits: Lens
``exact_matches`` then ``visual_matches`` (title, link, ``source`` as the snippet — Lens has no
snippet — and the thumbnail URL); reverse image ``image_results`` then ``inline_images``.
"No results" (an ``error`` string under HTTP 200) is an empty list; 429/5xx are retried with
back-off; other failures raise :class:`~deepmmsearch.tools.base.ToolError`.
"""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

from PIL import Image

from deepmmsearch.registry import IMAGE_HOST, ConfigError
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpClient,
    RetryPolicy,
    register_secret,
)
from deepmmsearch.tools.text.web import clean_text
from deepmmsearch.types import SearchHit

ENGINES = {
    # engine: (image URL parameter, result lists in order of preference)
    "google_lens": ("url", ("exact_matches", "visual_matches")),
    "google_reverse_image": ("image_url", ("image_results", "inline_images")),
}
NO_RESULTS = ("hasn't returned any results", "no results", "returned no results")
SNIPPET_CHARS = 400


def encode_image(image: Image.Image, max_edge: int = 1024, fmt: str = "png") -> tuple[bytes, str]:
    """Image bytes for upload (downsized to ``max_edge``) and the file suffix."""
    img = image.convert("RGB")
    if max(img.size) > max_edge:
        img = img.copy()
        img.thumbnail((max_edge, max_edge), Image.LANCZOS)
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue(), ".jpg"
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue(), ".png"


def _text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def parse_response(data: Any, engine: str) -> list[SearchHit]:
    """SearchHits from a SerpApi image-engine response; raises ToolError on an error or bad shape."""
    if not isinstance(data, dict):
        raise ToolError("unexpected response shape: not a JSON object")
    err = data.get("error")
    if err:
        if any(s in str(err).lower() for s in NO_RESULTS):
            return []
        raise ToolError(f"API error: {str(err)[:200]}")
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for key in ENGINES[engine][1]:
        rows = data.get(key) or []
        if not isinstance(rows, list):
            raise ToolError(f"unexpected response shape: {key} is not a list")
        for r in rows:
            if not isinstance(r, dict):
                continue
            url = r.get("link") if isinstance(r.get("link"), str) else _text(r.get("original"))
            title = _text(r.get("title")) or _text(r.get("source"))
            if not url or url in seen:
                continue
            seen.add(url)
            snippet = _text(r.get("snippet")) or _text(r.get("source"))
            thumb = r.get("thumbnail") if isinstance(r.get("thumbnail"), str) else None
            hits.append(SearchHit(title=title or url, url=url, snippet=snippet[:SNIPPET_CHARS],
                                  thumbnail=thumb, date=_text(r.get("date")) or None))
    return hits


class SerpApiLensSearch:
    name = "serpapi-lens"

    def __init__(self, host: Any = None, engine: str = "google_lens", lens_type: str | None = None,
                 q: str | None = None, hl: str | None = None, country: str | None = None,
                 no_cache: bool = False, base_url: str = "https://serpapi.com",
                 api_key_env: str = "SERPAPI_API_KEY", timeout_s: float = 60.0, retries: int = 3,
                 rate_per_s: float | None = None, max_edge: int = 1024, image_format: str = "png",
                 transport: Any = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"serpapi-lens: engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if image_format not in ("png", "jpeg"):
            raise ConfigError(f"serpapi-lens: image_format must be png or jpeg, got {image_format!r}")
        if host is None:
            raise ConfigError("serpapi-lens needs an image host (SerpApi fetches images by URL): "
                              "e.g. host: {name: s3, bucket: BUCKET} or host: {name: static, "
                              "root: DIR, base_url: https://your.server/crops}")
        self.host = host if hasattr(host, "put") else IMAGE_HOST.build(host)
        self._key = os.environ.get(api_key_env, "").strip()
        if not self._key:
            raise ConfigError(f"image_search 'serpapi-lens' needs an API key: set the environment "
                              f"variable {api_key_env}")
        register_secret(self._key)
        self.engine = engine
        self.base_url = base_url.rstrip("/")
        self.max_edge = max_edge
        self.image_format = image_format
        self.params = {"engine": engine, "type": lens_type, "q": q, "hl": hl, "country": country,
                       "no_cache": "true" if no_cache else None}
        self.client = HttpClient(self.name, timeout_s=timeout_s, retry=RetryPolicy(attempts=retries),
                                 rate_per_s=rate_per_s, transport=transport,
                                 max_response_bytes=max_response_bytes)

    def __repr__(self) -> str:  # never show the key
        return f"SerpApiLensSearch(engine={self.engine!r}, host={getattr(self.host, 'name', '?')!r})"

    async def upload(self, image: Image.Image) -> str:
        data, suffix = encode_image(image, self.max_edge, self.image_format)
        try:
            return await asyncio.to_thread(self.host.put, data, suffix)
        except Exception as exc:  # noqa: BLE001 - any upload failure is a tool failure
            raise ToolError(f"{self.name}: uploading the image to the "
                            f"{getattr(self.host, 'name', 'image')} host failed: {exc}") from None

    async def search(self, image: Image.Image, k: int = 5) -> list[SearchHit]:
        if k <= 0:
            return []
        url = await self.upload(image)
        param = ENGINES[self.engine][0]
        data = await self.client.request_json(
            "GET", f"{self.base_url}/search.json",
            params={**self.params, param: url, "api_key": self._key})
        try:
            return parse_response(data, self.engine)[:k]
        except ToolError as exc:
            raise ToolError(f"{self.name}: {exc}") from None
