"""The tools an episode can call, glued together: search backends, grounder, crop, summariser,
cache. :meth:`Toolbox.run` turns a :class:`~deepmmsearch.agent.state.ToolRequest` into a
:class:`~deepmmsearch.types.ToolCall` record and never raises for a tool failure — the failure is
recorded and becomes the observation. (A replay-cache miss does raise: replay must be exact.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from deepmmsearch.agent.state import ToolRequest
from deepmmsearch.roles import Grounder, ImageSearch, Summarizer, TextSearch
from deepmmsearch.tools.cache import ReplayMiss, ToolCache, image_digest, make_key, normalise_query
from deepmmsearch.tools.crop import ImageLoadError, crop_box, draw_box, load_image, to_rgb
from deepmmsearch.types import Box, SearchHit, ToolCall

log = logging.getLogger(__name__)


def _hits_to_json(hits: list[SearchHit]) -> list[dict]:
    return [h.to_dict() for h in hits]


def _hits_from_json(rows: list[dict]) -> list[SearchHit]:
    return [SearchHit.from_dict(r) for r in rows]


def _describe(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    return msg if len(msg) < 300 else msg[:297] + "..."


class Toolbox:
    def __init__(
        self,
        *,
        text_search: TextSearch | None = None,
        image_search: ImageSearch | None = None,
        grounder: Grounder | None = None,
        summarizer: Summarizer | None = None,
        cache: ToolCache | None = None,
        prompt_version: str = "",
        top_k: int = 5,
        crop_margin: float = 0.1,
        crop_min_size: int = 32,
        ground_fallback_whole: bool = True,
        artifacts_dir: str | Path | None = None,
    ) -> None:
        self.text_search = text_search
        self.image_search = image_search
        self.grounder = grounder
        self.summarizer = summarizer
        self.cache = cache
        self.prompt_version = prompt_version
        self.top_k = top_k
        self.crop_margin = crop_margin
        self.crop_min_size = crop_min_size
        self.ground_fallback_whole = ground_fallback_whole
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None

    @classmethod
    def from_config(cls, agent: Any, **context: Any) -> Toolbox:
        """Build every backend of an :class:`~deepmmsearch.config.AgentConfig`.

        ``context`` (e.g. ``policy=`` for the LLM summariser, ``world=`` for SimWeb backends) is
        passed to the factories that accept it.
        """
        from deepmmsearch import registry
        from deepmmsearch.prompts import get_prompts

        prompts = get_prompts(agent.prompts)
        ctx = {"prompts": prompts, **context}
        cache = ToolCache(agent.cache.path, agent.cache.mode) if agent.cache.mode != "off" else None
        return cls(
            text_search=registry.TEXT_SEARCH.build(agent.text_search, **ctx),
            image_search=registry.IMAGE_SEARCH.build(agent.image_search, **ctx),
            grounder=registry.GROUNDER.build(agent.grounder, **ctx),
            summarizer=registry.SUMMARIZER.build(agent.summarizer, **ctx),
            cache=cache,
            prompt_version=prompts.version,
            top_k=agent.top_k,
            crop_margin=agent.crop_margin,
            crop_min_size=agent.crop_min_size,
            ground_fallback_whole=agent.ground_fallback_whole,
            artifacts_dir=agent.artifacts_dir,
        )

    # -- cached primitives -------------------------------------------------------------------

    async def _cached(self, role: str, backend: str, key_parts: tuple, call, input: str = ""):
        if self.cache is None:
            return await call(), False
        key = make_key(role, backend, *key_parts)
        return await self.cache.get_or_call(key, call, role=role, backend=backend, input=input)

    async def _text_hits(self, query: str) -> tuple[list[SearchHit], bool]:
        backend = self.text_search
        assert backend is not None
        if self.cache is None:  # no JSON round trip
            return list(await backend.search(query, self.top_k)), False

        async def call():
            return _hits_to_json(await backend.search(query, self.top_k))

        rows, hit = await self._cached(
            "text_search", backend.name, (normalise_query(query), self.top_k), call, query
        )
        return _hits_from_json(rows), hit

    async def _image_hits(self, image, tag: str) -> tuple[list[SearchHit], bool]:
        backend = self.image_search
        assert backend is not None
        if self.cache is None:
            return list(await backend.search(image, self.top_k)), False

        async def call():
            return _hits_to_json(await backend.search(image, self.top_k))

        digest = await asyncio.to_thread(image_digest, image)
        rows, hit = await self._cached("image_search", backend.name, (digest, self.top_k), call, tag)
        return _hits_from_json(rows), hit

    async def _summary(self, kind: str, question: str, query: str, hits: list[SearchHit]) -> tuple[str, bool]:
        summ = self.summarizer
        if summ is None:
            return "\n".join(f"{h.title}: {h.snippet}" for h in hits), False

        async def call():
            return await summ.summarize(kind, question, query, hits)

        if self.cache is None:
            return await call(), False
        parts = (kind, normalise_query(question), normalise_query(query),
                 [h.url for h in hits], self.prompt_version)
        return await self._cached("summary", summ.name, parts, call, query)

    # -- the tools ---------------------------------------------------------------------------

    async def run(self, req: ToolRequest, *, question: str, image: str | Any | None,
                  episode_id: str = "ep") -> ToolCall:
        """Run one tool request. ``image``: a path, or an already decoded PIL image (veRL)."""
        t0 = time.perf_counter()
        if req.kind == "text_search":
            call = ToolCall("text_search", getattr(self.text_search, "name", "none"), query=req.query)
            runner = self._run_text(call, req, question)
        else:
            call = ToolCall("image_search", getattr(self.image_search, "name", "none"),
                            query=None if req.whole_image else req.query, whole_image=req.whole_image,
                            box=req.box, note=req.note)
            runner = self._run_image(call, req, question, image, episode_id)
        try:
            await runner
        except ReplayMiss:
            raise
        except Exception as exc:  # noqa: BLE001 - every tool failure becomes an observation
            log.info("tool %s failed: %s", call.kind, exc)
            call.error = _describe(exc)
        call.latency_s = time.perf_counter() - t0
        return call

    async def _run_text(self, call: ToolCall, req: ToolRequest, question: str) -> None:
        if self.text_search is None:
            raise RuntimeError("no text search backend is configured")
        call.hits, call.cache_hit = await self._text_hits(req.query)
        if call.hits:
            call.summarizer = getattr(self.summarizer, "name", None)
            call.summary, _ = await self._summary("text", question, req.query, call.hits)

    async def _run_image(self, call: ToolCall, req: ToolRequest, question: str,
                         image_path: str | Any | None, episode_id: str) -> None:
        if self.image_search is None:
            raise RuntimeError("no image search backend is configured")
        if image_path is None:
            raise RuntimeError("this question has no image to search with")
        try:
            # decoding (and hashing, saving) runs in a thread: a 12-megapixel JPEG takes tens of
            # milliseconds, which would stall every other episode on the event loop
            if isinstance(image_path, (str, Path)):
                image = await asyncio.to_thread(load_image, image_path)
            else:  # an already decoded PIL image (the veRL agent loop passes the dataset's)
                image = to_rgb(image_path)
        except ImageLoadError as exc:
            raise RuntimeError(str(exc)) from None
        target = image
        if not req.whole_image:
            box = req.box
            if box is None:
                box, call.grounder = await self._ground(image, req.query)
            else:
                call.grounder = "self"
                if getattr(self.grounder, "name", None) == "self":
                    # the configured self-grounder maps the model's input size to the image's
                    box = await self.grounder.ground(image, req.query) or box
            if box is None:
                if not self.ground_fallback_whole:
                    raise RuntimeError(f"nothing matching {req.query!r} was found in the image")
                call.note = f"nothing matching {req.query!r} was found; the whole image was searched"
                call.whole_image = True
            else:
                target, call.box = crop_box(image, box, margin=self.crop_margin,
                                            min_size=self.crop_min_size)
                if self.artifacts_dir is not None:
                    await asyncio.to_thread(self._save_artifacts, call, image, target, episode_id,
                                            req.turn_index)
        call.hits, call.cache_hit = await self._image_hits(target, req.query)
        if call.hits:
            call.summarizer = getattr(self.summarizer, "name", None)
            call.summary, _ = await self._summary("image", question, req.query, call.hits)

    async def _ground(self, image, expression: str) -> tuple[Box | None, str | None]:
        if self.grounder is None:
            raise RuntimeError("no grounder is configured for cropped image search")
        g = self.grounder
        if self.cache is None:  # no image hash to compute
            box = await g.ground(image, expression)
            return box, g.name

        async def call():
            box = await g.ground(image, expression)
            return None if box is None else box.as_list()

        digest = await asyncio.to_thread(image_digest, image)
        coords, _ = await self._cached(
            "grounding", g.name, (digest, normalise_query(expression)), call, expression
        )
        return (Box(*coords) if coords else None), g.name

    def _save_artifacts(self, call: ToolCall, image, crop, episode_id: str, turn: int) -> None:
        if self.artifacts_dir is None or call.box is None:
            return
        d = self.artifacts_dir / episode_id
        d.mkdir(parents=True, exist_ok=True)
        crop_path, boxed_path = d / f"turn{turn}_crop.png", d / f"turn{turn}_boxed.png"
        crop.save(crop_path)
        draw_box(image, call.box, label=call.query).save(boxed_path)
        call.crop_path, call.boxed_path = str(crop_path), str(boxed_path)
