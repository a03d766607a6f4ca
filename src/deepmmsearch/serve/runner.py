"""Runs the search agent for the server: one episode per request, its events on a queue.

:class:`AgentService` owns the agent (built once from the config), the image store, the file
roots, the concurrency slots and the remote-image fetcher. :meth:`AgentService.start` launches
an episode as a task that holds one slot until it ends (the release is a done-callback, so a
cancelled or failed run frees its slot too) and feeds :class:`~deepmmsearch.agent.loop.Event`
records to a queue that the web page's SSE stream and the OpenAI stream read.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deepmmsearch import jsontext
from deepmmsearch.agent.loop import Event, run_episode
from deepmmsearch.agent.runtime import Agent, build_agent
from deepmmsearch.agent.state import is_source_url
from deepmmsearch.serve.media import FileRoots, ImageStore, decode_data_url
from deepmmsearch.serve.security import ApiError, RemoteImageFetcher, Slots
from deepmmsearch.serve.settings import ServeConfig
from deepmmsearch.types import Trajectory

log = logging.getLogger(__name__)
_END = object()


def _path_prefixes(roots: dict[str, Any]) -> list[tuple[str, str]]:
    """(absolute folder + "/", what a client sees instead: "<root name>/"), longest first."""
    out = {}
    for name, root in roots.items():
        for form in {str(Path(root).absolute()), str(Path(root).resolve())}:
            out[form.rstrip(os.sep) + os.sep] = f"{name}/" if name else ""
    return sorted(out.items(), key=lambda kv: -len(kv[0]))


def _hide_paths(data: Any, prefixes: list[tuple[str, str]]) -> Any:
    """``data`` with every server folder in every string replaced by its root's name."""
    if isinstance(data, str):
        for prefix, name in prefixes:
            if prefix in data:
                data = data.replace(prefix, name)
        return data
    if isinstance(data, dict):
        return {k: _hide_paths(v, prefixes) for k, v in data.items()}
    if isinstance(data, list):
        return [_hide_paths(v, prefixes) for v in data]
    return data


def _file_name(path: Any) -> str | None:
    """The last part of a server path (clients never see where the server keeps its files)."""
    return Path(path).name or None if isinstance(path, str) and path else None


@dataclass
class LiveRun:
    episode_id: str
    image: Path | None
    queue: asyncio.Queue
    task: asyncio.Task

    def cancel(self) -> None:
        if not self.task.done():
            self.task.cancel()


class AgentService:
    def __init__(self, cfg: ServeConfig, *, agent: Agent | None = None,
                 fetcher: RemoteImageFetcher | None = None) -> None:
        self.cfg = cfg
        work = Path(cfg.work_dir)
        artifacts = Path(cfg.agent.artifacts_dir or work / "artifacts")
        artifacts.mkdir(parents=True, exist_ok=True)
        if agent is None:
            agent = build_agent(replace(cfg.agent, artifacts_dir=str(artifacts)))
        elif agent.toolbox.artifacts_dir is None:
            agent.toolbox.artifacts_dir = artifacts
        self.agent = agent
        self.images = ImageStore(work / "uploads", max_pixels=cfg.max_image_pixels)
        roots: dict[str, Any] = {"uploads": work / "uploads", "artifacts": artifacts}
        if cfg.trajectories_dir:
            roots["runs"] = cfg.trajectories_dir
        roots.update({f"images{i}": r for i, r in enumerate(cfg.image_roots)})
        self.roots = FileRoots(roots)
        self._hidden = _path_prefixes({**self.roots.roots, "": work})
        self.slots = Slots(cfg.max_concurrent)
        self.fetcher = fetcher or RemoteImageFetcher(
            max_bytes=cfg.max_upload_bytes, timeout_s=cfg.remote_timeout_s,
            max_redirects=cfg.max_redirects)
        self.log_path = work / "served.jsonl" if cfg.save_trajectories else None

    # -- images ------------------------------------------------------------------------------

    async def image_from_ref(self, ref: str) -> Path:
        """A chat image (data URL, or http(s) URL where allowed) → a saved PNG path."""
        ref = ref.strip()
        if ref.lower().startswith("data:"):
            data = decode_data_url(ref, max_bytes=self.cfg.max_upload_bytes)
        elif ref.lower().startswith(("http://", "https://")):
            if not self.cfg.allow_remote_images:
                raise ApiError(400, "remote image URLs are disabled on this server: send the "
                               "image as a data URL (data:image/png;base64,...) or set "
                               "allow_remote_images: true", code="remote_images_disabled")
            data = await self.fetcher.fetch(ref)
        else:
            raise ApiError(400, "an image must be a data: URL or an http(s) URL",
                           code="bad_image_url")
        return await asyncio.to_thread(self.images.save, data)

    async def image_from_bytes(self, data: bytes) -> Path:
        if len(data) > self.cfg.max_upload_bytes:
            raise ApiError(413, f"the image is larger than the server's limit of "
                           f"{self.cfg.max_upload_bytes:,} bytes", code="payload_too_large")
        return await asyncio.to_thread(self.images.save, data)

    # -- episodes ----------------------------------------------------------------------------

    def start(self, question: str, image: Path | None, release: Callable[[], None]) -> LiveRun:
        """Start one episode; ``release`` (the slot) is called however the run ends."""
        episode = self.agent.episode(question, str(image) if image else None)
        queue: asyncio.Queue = asyncio.Queue()

        async def main() -> Trajectory:
            traj = await asyncio.wait_for(
                run_episode(episode, self.agent.policy, self.agent.toolbox, on_event=queue.put),
                timeout=self.cfg.request_timeout_s)
            self._save(traj)
            return traj

        task = asyncio.create_task(main(), name=f"episode-{episode.id}")

        def finished(_: asyncio.Task) -> None:
            release()
            queue.put_nowait(_END)

        task.add_done_callback(finished)
        return LiveRun(episode.id, image, queue, task)

    async def events(self, run: LiveRun) -> AsyncIterator[Event]:
        """The run's events, then its result; raises ApiError when the run failed."""
        while True:
            item = await run.queue.get()
            if item is _END:
                break
            yield item
        if run.task.cancelled():
            raise ApiError(503, "the agent run was cancelled", "server_error", "cancelled")
        exc = run.task.exception()
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            raise ApiError(504, f"the agent did not finish within {self.cfg.request_timeout_s} s",
                           "server_error", "timeout")
        if exc is not None:
            log.error("episode %s failed: %s", run.episode_id, exc, exc_info=exc)
            raise ApiError(500, f"the agent failed: {type(exc).__name__}: {exc}", "server_error",
                           "agent_failed")

    async def run(self, question: str, image: Path | None) -> Trajectory:
        """Run one episode to the end under a slot (429 when none is free)."""
        return await self.finish(self.start(question, image, self.slots.acquire()))

    async def finish(self, live: LiveRun) -> Trajectory:
        """Wait for a started episode's result (cancelled if the caller is cancelled)."""
        try:
            async for _ in self.events(live):
                pass
        finally:
            live.cancel()
        return live.task.result()

    def _save(self, traj: Trajectory) -> None:
        if self.log_path is None:
            return
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(traj.to_json() + "\n")
        except OSError as exc:
            log.warning("could not save trajectory %s: %s", traj.id, exc)

    # -- presentation (URLs instead of server paths, for the page) ---------------------------

    def present_turn(self, turn: dict[str, Any]) -> dict[str, Any]:
        """A turn for a client: file URLs added, the server's own paths cut to file names."""
        out = dict(turn)
        call = out.get("tool_call")
        if call:
            out["tool_call"] = {**call, "crop_url": self.roots.url_for(call.get("crop_path")),
                                "boxed_url": self.roots.url_for(call.get("boxed_path")),
                                "crop_path": _file_name(call.get("crop_path")),
                                "boxed_path": _file_name(call.get("boxed_path"))}
        return _hide_paths(out, self._hidden)

    def present_trajectory(self, traj: dict[str, Any]) -> dict[str, Any]:
        """A trajectory for a client: no absolute server path, only http(s)/doc: sources."""
        out = dict(traj)
        out["image_url"] = self.roots.url_for(traj.get("image"))
        out["image"] = _file_name(traj.get("image"))
        out["sources"] = [u for u in traj.get("sources") or []
                          if isinstance(u, str) and is_source_url(u)]
        out["turns"] = [self.present_turn(t) for t in traj.get("turns") or []]
        return _hide_paths(out, self._hidden)

    def present_event(self, event: Event) -> str:
        """One SSE message (``event: KIND`` + JSON data) for the web page."""
        if event.kind == "done":
            data = self.present_trajectory(event.data)
        elif event.kind in ("turn", "observation"):
            data = self.present_turn(event.data)
        else:
            data = dict(event.data)
        payload = jsontext.dumps({"episode_id": event.episode_id, **data})
        return f"event: {event.kind}\ndata: {payload}\n\n"
