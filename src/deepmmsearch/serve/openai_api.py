"""``/v1/chat/completions`` and ``/v1/models`` in OpenAI's format, backed by the search agent.

The question is the text of the last user message; the image is the last ``image_url`` part of
the most recent user message that has one (so a chat UI's follow-up keeps the image). Images
are data URLs, or http(s) URLs where the config allows (public addresses only). Sampling
options (temperature, max_tokens, ...) are accepted and ignored: the agent's config decides.

Non-streaming: ``choices[0].message.content`` is the answer; the response's extra field
``trajectory`` holds the whole episode. Streaming (``"stream": true``): SSE chunks; each model
turn and each observation arrive as ``delta.reasoning_content``, the answer as
``delta.content``; the last chunk carries ``finish_reason: "stop"`` and ``trajectory``; then
``data: [DONE]``. A failure mid-stream is an SSE ``{"error": {...}}`` message, which the
``openai`` client raises as an APIError.

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="...")
    r = client.chat.completions.create(model="deepmmsearch", messages=[{"role": "user",
        "content": [{"type": "text", "text": "What bird is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}]}])
    print(r.choices[0].message.content, r.model_extra["trajectory"]["sources"])
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from deepmmsearch import jsontext
from deepmmsearch.serve.security import ApiError, check_question, parse_json_body
from deepmmsearch.types import Trajectory


@dataclass(frozen=True)
class ChatRequest:
    question: str
    image: str | None  # a data: or http(s) URL
    stream: bool
    model: str
    include_usage: bool = False


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if content is None:
        return []
    if not isinstance(content, list):
        raise ApiError(400, f"{where}.content must be a string or a list of parts")
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise ApiError(400, f"{where}.content[{i}] must be an object with a 'type'")
        if part["type"] == "text" and not isinstance(part.get("text", ""), str):
            raise ApiError(400, f"{where}.content[{i}].text must be a string")
    return content


def _image_url(part: dict[str, Any], where: str) -> str:
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise ApiError(400, f"{where}: an image_url part needs image_url.url")
    return url


def parse_chat(body: bytes, *, model_name: str, max_question_chars: int = 4000) -> ChatRequest:
    data = parse_json_body(body)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object with 'model' and 'messages'")
    model = data.get("model") or model_name
    if model != model_name:
        raise ApiError(404, f"model {model!r} does not exist; this server serves {model_name!r}",
                       code="model_not_found")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list")
    question, image = None, None
    for i in range(len(messages) - 1, -1, -1):
        msg = messages[i]
        if not isinstance(msg, dict) or "role" not in msg:
            raise ApiError(400, f"messages[{i}] must be an object with a 'role'")
        if msg["role"] != "user":
            continue
        parts = _parts(msg.get("content"), f"messages[{i}]")
        if question is None:
            question = "\n".join(p.get("text", "") for p in parts if p["type"] == "text").strip()
        if image is None:
            urls = [_image_url(p, f"messages[{i}]") for p in parts if p["type"] == "image_url"]
            image = urls[-1] if urls else None
    if not question:
        raise ApiError(400, "no question: the last user message has no text")
    check_question(question, max_question_chars)
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false")
    options = data.get("stream_options") or {}
    usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
    return ChatRequest(question, image, stream, model, usage)


def answer_text(traj: Trajectory | dict[str, Any]) -> str:
    d = traj if isinstance(traj, dict) else traj.to_dict()
    if d.get("answer"):
        return str(d["answer"])
    return f"(no answer: the agent stopped with {d.get('stop_reason')})"


def usage(traj: dict[str, Any]) -> dict[str, int]:
    completion = sum(int(t.get("n_tokens") or 0) for t in traj.get("turns") or [])
    return {"prompt_tokens": 0, "completion_tokens": completion, "total_tokens": completion}


def completion(traj: Trajectory, model: str,
               present: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The non-streamed response; ``present`` turns server paths into URLs (the server's)."""
    d = traj.to_dict()
    d = present(d) if present is not None else d
    return {
        "id": f"chatcmpl-{traj.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": answer_text(d)}}],
        "usage": usage(d),
        "trajectory": d,
    }


def models(model_name: str, created: int) -> dict[str, Any]:
    return {"object": "list", "data": [
        {"id": model_name, "object": "model", "created": created, "owned_by": "deepmmsearch"}]}


class ChunkWriter:
    """Builds the SSE lines of one streamed completion."""

    def __init__(self, episode_id: str, model: str,
                 present: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.id = f"chatcmpl-{episode_id}"
        self.model = model
        self.created = int(time.time())
        self.present = present or (lambda d: d)

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                             "logprobs": None}], **extra}
        return f"data: {jsontext.dumps(body)}\n\n"

    def usage_chunk(self, traj: dict[str, Any]) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage(traj)}
        return f"data: {jsontext.dumps(body)}\n\n"


async def stream_sse(events: AsyncIterator[Any], writer: ChunkWriter,
                     include_usage: bool = False) -> AsyncIterator[str]:
    """Agent events → OpenAI chunk lines (see the module docstring)."""
    yield writer.chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            d = event.data
            if event.kind == "turn":
                yield writer.chunk({"reasoning_content": d["model_text"] + "\n"},
                                   event={"kind": "turn", "index": d["index"]})
            elif event.kind == "observation" and d.get("observation"):
                yield writer.chunk({"reasoning_content": d["observation"] + "\n"},
                                   event={"kind": "observation", "index": d["index"]})
            elif event.kind == "done":
                yield writer.chunk({"content": answer_text(d)})
                yield writer.chunk({}, "stop", trajectory=writer.present(d))
                if include_usage:
                    yield writer.usage_chunk(d)
    except ApiError as exc:
        yield f"data: {jsontext.dumps(exc.body())}\n\n"
    yield "data: [DONE]\n\n"
