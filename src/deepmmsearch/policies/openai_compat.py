"""``openai``: any OpenAI-compatible chat-completions endpoint — vLLM, SGLang, hosted APIs.

Serve a model and point the agent at it::

    vllm serve Qwen/Qwen2.5-VL-7B-Instruct --port 8000
    # configs/ask_openai.yaml
    policy: {name: openai, base_url: "http://localhost:8000/v1", model: Qwen/Qwen2.5-VL-7B-Instruct}

The API key is read from the environment variable named by ``api_key_env`` (default
``OPENAI_API_KEY``) and never from a config file; local servers need none. Our neutral messages
become OpenAI chat messages: the ``<image>`` placeholder is replaced, at its position, by the
image as a base64 data URL, and environment injections (role ``tool``) are sent as user
messages — or, with ``inline_tools: true``, the model turns and injections after the prompt are
sent as one assistant message that the server continues (vLLM/SGLang ``continue_final_message``),
which is how our chat template renders them for a model we trained. Generation stops at
:data:`~deepmmsearch.protocol.STOP_STRINGS`; servers drop the stop string from the output, so the
closing tag that stopped generation is put back and the turn parses. Transient failures
(connection errors, timeouts, HTTP 408/409/429/5xx, malformed JSON) are retried with exponential
back-off; what still fails raises :class:`PolicyError`, which ends the episode with
``stop_reason="policy_error"``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from deepmmsearch.policies.base import Generation, GenerationRequest, truncate_at_stop
from deepmmsearch.protocol import ACTION_TAGS, IMAGE_PLACEHOLDER, close_tag, open_tag
from deepmmsearch.types import Message

log = logging.getLogger(__name__)

_PASS_THROUGH_FORMATS = {
    "PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_RETRY_STATUS = {408, 409, 429}
_OPEN_ACTION = re.compile("|".join(re.escape(open_tag(t)) for t in ACTION_TAGS))


class PolicyError(RuntimeError):
    """The endpoint failed for good (after retries, or with a non-retryable HTTP error)."""


# --------------------------------------------------------------------------------------------
# pure helpers: messages, images, stop strings


def image_data_url(path: str) -> str:
    """A ``data:`` URL for an image file. PNG/JPEG/WEBP/GIF are sent as they are; any other
    format PIL can read (TIFF, BMP, 16-bit PNG...) is converted to RGB PNG."""
    from PIL import Image

    from deepmmsearch.tools.crop import ImageLoadError, load_image

    p = Path(path)
    if not p.exists():
        raise ImageLoadError(f"image not found: {p}")
    try:
        with Image.open(p) as im:
            fmt, mode = im.format, im.mode
    except Exception as exc:  # noqa: BLE001 - any decoder error
        raise ImageLoadError(f"cannot read image {p}: {exc}") from None
    if fmt in _PASS_THROUGH_FORMATS and not mode.startswith("I"):
        data, mime = p.read_bytes(), _PASS_THROUGH_FORMATS[fmt]
    else:
        import io

        buf = io.BytesIO()
        load_image(p).save(buf, format="PNG")
        data, mime = buf.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _content(msg: Message, encode) -> str | list[dict[str, Any]]:
    """Text, or text and image parts with each image at its ``<image>`` placeholder."""
    if not msg.images:
        return msg.content.replace(IMAGE_PLACEHOLDER, "")
    pieces = msg.content.split(IMAGE_PLACEHOLDER)
    n_slots = len(pieces) - 1
    images = list(msg.images)
    extra, placed = images[: max(0, len(images) - n_slots)], images[max(0, len(images) - n_slots):]
    parts: list[dict[str, Any]] = [_image_part(encode(img)) for img in extra]  # no slot: in front
    for i, text in enumerate(pieces):
        if text:
            parts.append({"type": "text", "text": text})
        if i < len(placed):
            parts.append(_image_part(encode(placed[i])))
    return parts


def _image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def to_openai_messages(messages: list[Message], encode=image_data_url, *,
                       inline_tools: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """Our messages → OpenAI chat messages. Returns (messages, continue_final_message).

    Tool messages become user messages; with ``inline_tools`` every assistant and tool message
    after the last user message is folded into one assistant message to be continued.
    """
    out: list[dict[str, Any]] = []
    start = len(messages)
    if inline_tools:
        while start > 0 and messages[start - 1].role in ("assistant", "tool"):
            start -= 1
    for msg in messages[:start]:
        role = "user" if msg.role == "tool" else msg.role
        out.append({"role": role, "content": _content(msg, encode)})
    tail = messages[start:]
    if tail:
        out.append({"role": "assistant", "content": "".join(m.content for m in tail)})
    return out, bool(tail)


ABSENT = object()  # the server's reply has no field saying what stopped it


def restore_stop(text: str, finish_reason: str | None, matched: Any, stops: tuple[str, ...]) -> str:
    """Put back the stop string the server removed, so ``…<text_search>q`` becomes a full tag.

    ``matched`` is the server's report of what stopped generation (vLLM ``stop_reason``, SGLang
    ``matched_stop``): a stop string is put back; ``None`` or a token id means end of sequence,
    and nothing is added. When the server reports nothing (``ABSENT``, e.g. hosted APIs), the
    last unclosed action tag is closed.
    """
    text, stopped = truncate_at_stop(text, stops)  # the server kept it, or ignored ``stop``
    if stopped or finish_reason != "stop" or not stops:
        return text
    if matched is not ABSENT:
        return text + matched if isinstance(matched, str) and matched in stops else text
    last = None
    for m in _OPEN_ACTION.finditer(text):
        last = m
    if last is None:
        return text  # a natural end of sequence, not a stop string
    closing = close_tag(last.group(0)[1:-1])
    if closing in stops and closing not in text[last.end():]:
        return text + closing
    return text


def _is_local(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_private
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------


class OpenAIPolicy:
    """A Policy that calls ``POST {base_url}/chat/completions``; see the module docstring."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        temperature: float = 0.0,
        top_p: float | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        retry_backoff_s: float = 1.0,
        extra_body: dict[str, Any] | None = None,
        send_stop: bool = True,
        inline_tools: bool = False,
        max_tokens_field: str = "max_tokens",
    ) -> None:
        from deepmmsearch.registry import ConfigError

        if not model:
            raise ConfigError("policy 'openai' needs 'model' (the name the server knows it by)")
        if max_retries < 0 or timeout <= 0:
            raise ConfigError("policy 'openai': max_retries must be >= 0 and timeout > 0")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.top_p = top_p
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.extra_body = dict(extra_body or {})
        self.send_stop = send_stop
        self.inline_tools = inline_tools
        self.max_tokens_field = max_tokens_field
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._images: dict[tuple[str, float], str] = {}
        if api_key_env and not os.environ.get(api_key_env) and not _is_local(self.base_url):
            log.warning("openai policy: %s is not set; %s will probably refuse the requests",
                        api_key_env, self.base_url)

    # -- HTTP --------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.aclose()

    def _encode(self, path: str) -> str:
        key = (path, os.path.getmtime(path) if os.path.exists(path) else 0.0)
        if key not in self._images:
            if len(self._images) > 256:
                self._images.clear()
            self._images[key] = image_data_url(path)
        return self._images[key]

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body for one request (also handy to inspect what is sent)."""
        messages, cont = to_openai_messages(request.messages, self._encode,
                                            inline_tools=self.inline_tools)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            self.max_tokens_field: request.max_new_tokens,
        }
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.send_stop and request.stop:
            body["stop"] = list(request.stop)
        if cont:
            body.update(continue_final_message=True, add_generation_prompt=False)
        body.update(self.extra_body)
        return body

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        last = ""
        for attempt in range(self.max_retries + 1):
            delay = self.retry_backoff_s * (2 ** attempt)
            try:
                resp = await self._http().post(url, json=body, headers=self._headers())
            except httpx.HTTPError as exc:  # connection refused, timeout, broken stream
                last = f"{type(exc).__name__}: {exc}".strip()
            else:
                if resp.status_code == 200:
                    try:
                        data = resp.json()
                        if isinstance(data, dict) and data.get("choices"):
                            return data
                        last = f"malformed reply (no choices): {resp.text[:200]!r}"
                    except ValueError:
                        last = f"malformed JSON reply: {resp.text[:200]!r}"
                else:
                    last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                    if resp.status_code < 500 and resp.status_code not in _RETRY_STATUS:
                        raise PolicyError(f"{url}: {last}")
                    delay = max(delay, _retry_after(resp))
            if attempt < self.max_retries:
                log.info("openai policy: %s (attempt %d/%d); retrying in %.1fs",
                         last, attempt + 1, self.max_retries + 1, delay)
                await asyncio.sleep(delay)
        raise PolicyError(f"{url} failed after {self.max_retries + 1} attempts: {last}")

    # -- Policy ------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Generation:
        data = await self._post(self.payload(request))
        choice = data["choices"][0] if isinstance(data["choices"][0], dict) else {}
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        text = content if isinstance(content, str) else ""
        finish = choice.get("finish_reason")
        matched = next((choice[k] for k in ("stop_reason", "matched_stop") if k in choice), ABSENT)
        if request.stop and self.send_stop:
            text = restore_stop(text, finish, matched, request.stop)
        elif request.stop:  # the server was not told: cut after the first action ourselves
            text, _ = truncate_at_stop(text, request.stop)
        usage = data.get("usage") or {}
        n = usage.get("completion_tokens") if isinstance(usage, dict) else None
        return Generation(text, n_tokens=n if isinstance(n, int) else None, finish_reason=finish)


def _retry_after(resp: httpx.Response) -> float:
    try:
        return min(30.0, max(0.0, float(resp.headers.get("retry-after", 0))))
    except ValueError:
        return 0.0
