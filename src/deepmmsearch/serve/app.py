"""The FastAPI app: the web page, its live SSE stream, trajectory browsing, the OpenAI-compatible
API and Search-R1's ``/retrieve``. Run it with ``deepmmsearch serve -c configs/serve_fixture.yaml``
or build it in Python::

    from deepmmsearch.config import load_config
    from deepmmsearch.serve.app import create_app
    app = create_app(load_config("configs/serve_fixture.yaml", expect="serve"))

Endpoints (all but ``/``, ``/static/*``, ``/healthz`` and ``/api/info`` need the API key when
``api_key_env`` is set):

    GET  /                       the page              POST /api/ask          multipart → SSE
    GET  /api/files/ROOT/PATH    an image (safe roots) GET  /api/trajectories (/rows, /one)
    GET  /v1/models              POST /v1/chat/completions                    POST /retrieve
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from deepmmsearch import jsontext
from deepmmsearch.registry import TEXT_SEARCH, missing_dependency
from deepmmsearch.serve import openai_api
from deepmmsearch.serve.retriever import Retriever, parse_request
from deepmmsearch.serve.runner import AgentService, LiveRun
from deepmmsearch.serve.security import (
    ApiError,
    ApiKeyCheck,
    check_question,
    read_limited,
    require_content_type,
)
from deepmmsearch.serve.settings import ServeConfig
from deepmmsearch.serve.trajectories import TrajectoryBrowser

try:  # the server edge: FastAPI is needed from here on
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException
except ImportError:  # pragma: no cover - depends on the install
    raise missing_dependency("fastapi", "serve", "deepmmsearch serve") from None

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", (b"default-src 'self'; img-src 'self' blob: data:; "
                                  b"style-src 'self'; script-src 'self'; connect-src 'self'; "
                                  b"frame-ancestors 'none'")),
]


class SafeJSONResponse(JSONResponse):
    """JSON whose strings may hold lone surrogates (from a search hit): escaped, never a 500."""

    def render(self, content: Any) -> bytes:
        return jsontext.dumps(content, allow_nan=False, separators=(",", ":")).encode("utf-8")


class SecurityHeaders:
    """Pure ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_HEADERS]}
            await send(message)

        return await self.app(scope, receive, with_headers)


def create_app(cfg: ServeConfig, *, agent: Any = None, fetcher: Any = None,
               retrieve_backend: Any = None) -> Any:
    """Build the app. ``agent``/``fetcher``/``retrieve_backend`` replace the configured ones."""
    service = AgentService(cfg, agent=agent, fetcher=fetcher)
    if retrieve_backend is None:
        retrieve_backend = (service.agent.toolbox.text_search if cfg.retrieve is None else
                            TEXT_SEARCH.build(cfg.retrieve, prompts=service.agent.prompts))
    app = FastAPI(title="deepmmsearch", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None, default_response_class=SafeJSONResponse)
    app.state.service = service
    app.state.auth = ApiKeyCheck(cfg.api_key_env)
    app.state.retriever = Retriever(retrieve_backend) if retrieve_backend is not None else None
    app.state.browser = TrajectoryBrowser(
        {"runs": cfg.trajectories_dir, "served": cfg.work_dir if cfg.save_trajectories else None},
        only={"served": "served.jsonl"})
    app.state.started = int(time.time())
    app.add_middleware(SecurityHeaders)
    _errors(app)
    _page_routes(app, cfg)
    _api_routes(app, cfg)
    _retrieve_route(app, cfg)
    return app


def _errors(app: Any) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return SafeJSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        err = ApiError(exc.status_code, str(exc.detail), code="http_error")
        return SafeJSONResponse(err.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_params(request, exc: RequestValidationError):
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return SafeJSONResponse(ApiError(400, f"bad request parameters: {where}").body(),
                            status_code=400)


def _guard(request: Any) -> AgentService:
    request.app.state.auth.check(request.headers.get("authorization"))
    return request.app.state.service


def _replay(request: Any, body: bytes) -> Any:
    """A new Request over the same scope whose body is ``body`` (already read and size-checked)."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)  # fastapi's Request is starlette's


def _sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {jsontext.dumps(data)}\n\n"


async def _watch_disconnect(request: Any, live: LiveRun) -> None:
    """Cancel ``live`` (freeing its slot) as soon as the client goes away."""
    try:
        while True:
            message = await request.receive()
            if message.get("type") == "http.disconnect":
                live.cancel()
                return
    except (RuntimeError, OSError):  # the transport is gone
        return


def _watched(request: Any, live: LiveRun) -> None:
    task = asyncio.ensure_future(_watch_disconnect(request, live))
    live.task.add_done_callback(lambda _: task.cancel())


async def _page_stream(service: AgentService, live: LiveRun):
    yield _sse("start", {"episode_id": live.episode_id,
                         "image_url": service.roots.url_for(str(live.image) if live.image else None)})
    try:
        async for event in service.events(live):
            yield service.present_event(event)
    except ApiError as exc:
        yield _sse("error", exc.body()["error"])
    finally:
        live.cancel()


def _page_routes(app: Any, cfg: ServeConfig) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/healthz")
    async def health(request: Request) -> dict[str, Any]:
        slots = request.app.state.service.slots
        return {"status": "ok", "in_flight": slots.in_flight, "max_concurrent": slots.limit}

    @app.get("/api/info")
    async def info(request: Request) -> dict[str, Any]:
        return {"model": cfg.model_name, "auth_required": request.app.state.auth.enabled,
                "max_upload_bytes": cfg.max_upload_bytes, "max_image_pixels": cfg.max_image_pixels,
                "remote_images": cfg.allow_remote_images, "max_concurrent": cfg.max_concurrent}

    @app.post("/api/ask")
    async def ask(request: Request) -> Any:
        service = _guard(request)
        require_content_type(request.headers.get("content-type"), "multipart/form-data",
                             "application/x-www-form-urlencoded")
        release = service.slots.acquire()  # count before reading or decoding anything
        try:
            body = await read_limited(request, cfg.max_upload_bytes + 64 * 1024, "the upload")
            form = await _replay(request, body).form(max_files=1, max_fields=8)
            question = form.get("question")
            question = question.strip() if isinstance(question, str) else ""
            if not question:
                raise ApiError(400, "ask a question: the 'question' field is empty")
            check_question(question, cfg.max_question_chars)
            upload = form.get("image")
            data = await upload.read() if hasattr(upload, "read") else b""
            await form.close()  # the spooled upload goes now, accepted or not
            image = await service.image_from_bytes(data) if data else None
        except BaseException:
            release()
            raise
        live = service.start(question, image, release)
        _watched(request, live)
        return StreamingResponse(_page_stream(service, live), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/files/{root}/{rel:path}")
    async def files(root: str, rel: str, request: Request) -> Any:
        path = _guard(request).roots.resolve(root, rel)
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/trajectories")
    async def trajectory_files(request: Request) -> dict[str, Any]:
        _guard(request)
        return {"files": request.app.state.browser.files()}

    @app.get("/api/trajectories/rows")
    async def trajectory_rows(request: Request, file: str, offset: int = 0,
                              limit: int = 100) -> dict[str, Any]:
        _guard(request)
        return request.app.state.browser.rows(file, offset, limit)

    @app.get("/api/trajectories/one")
    async def trajectory_one(request: Request, file: str, line: int) -> dict[str, Any]:
        service = _guard(request)
        return service.present_trajectory(request.app.state.browser.get(file, line))


def _api_routes(app: Any, cfg: ServeConfig) -> None:
    json_limit = cfg.max_upload_bytes * 4 // 3 + 256 * 1024  # a base64 image plus the messages

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        _guard(request)
        return openai_api.models(cfg.model_name, request.app.state.started)

    @app.get("/v1/models/{model_id}")
    async def get_model(model_id: str, request: Request) -> dict[str, Any]:
        _guard(request)
        if model_id != cfg.model_name:
            raise ApiError(404, f"model {model_id!r} does not exist", code="model_not_found")
        return openai_api.models(cfg.model_name, request.app.state.started)["data"][0]

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        service = _guard(request)
        require_content_type(request.headers.get("content-type"), "application/json")
        release = service.slots.acquire()  # count before reading or decoding anything
        try:
            body = await read_limited(request, json_limit)
            req = openai_api.parse_chat(body, model_name=cfg.model_name,
                                        max_question_chars=cfg.max_question_chars)
            image = await service.image_from_ref(req.image) if req.image else None
        except BaseException:
            release()
            raise
        live = service.start(req.question, image, release)
        _watched(request, live)
        if not req.stream:
            traj = await service.finish(live)
            return SafeJSONResponse(openai_api.completion(  # no jsonable_encoder
                traj, req.model, present=service.present_trajectory))
        writer = openai_api.ChunkWriter(live.episode_id, req.model,
                                        present=service.present_trajectory)

        async def lines():
            try:
                async for line in openai_api.stream_sse(service.events(live), writer,
                                                        req.include_usage):
                    yield line
            finally:
                live.cancel()

        return StreamingResponse(lines(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})



def _retrieve_route(app: Any, cfg: ServeConfig) -> None:
    @app.post("/retrieve")
    async def retrieve(request: Request) -> Any:
        service = _guard(request)
        require_content_type(request.headers.get("content-type"), "application/json")
        retriever = request.app.state.retriever
        if retriever is None:
            raise ApiError(404, "no text backend is configured for /retrieve", code="not_found")
        release = service.slots.acquire()
        try:
            body = await read_limited(request, 1024 * 1024)
            queries, topk, scores = parse_request(
                body, default_topk=cfg.retrieve_topk, max_queries=cfg.retrieve_max_queries,
                max_topk=cfg.retrieve_max_topk, max_query_chars=cfg.max_question_chars)
            return SafeJSONResponse({"result": await retriever.retrieve(queries, topk, scores)})
        finally:
            release()
