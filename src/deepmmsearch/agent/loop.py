"""The async driver: runs episodes with a policy and a toolbox, many at once.

:func:`run_episode` is the loop every consumer shares (CLI, server, eval, distillation); the RL
rollouts use the same :class:`~deepmmsearch.agent.state.Episode` with token-level generation.
``on_event`` receives :class:`Event` records as the episode unfolds (the web UI streams them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from deepmmsearch.agent.state import Corrective, Episode, Finished, ToolRequest
from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.policies.base import GenerationRequest
from deepmmsearch.roles import Policy
from deepmmsearch.tools.cache import ReplayMiss
from deepmmsearch.types import Trajectory

log = logging.getLogger(__name__)


@dataclass
class Event:
    kind: str  # "turn" | "tool_start" | "observation" | "done"
    episode_id: str
    data: dict[str, Any]


EventHook = Callable[[Event], Awaitable[None] | None]


async def _emit(hook: EventHook | None, kind: str, episode_id: str,
                data: Callable[[], dict[str, Any]]) -> None:
    """Call the hook; the event's data is only built when there is a hook (it costs)."""
    if hook is None:
        return
    res = hook(Event(kind, episode_id, data()))
    if asyncio.iscoroutine(res):
        await res


async def run_episode(
    episode: Episode, policy: Policy, toolbox: Toolbox, *, on_event: EventHook | None = None
) -> Trajectory:
    t0 = time.perf_counter()
    while not episode.done:
        request = GenerationRequest(
            messages=episode.messages(),
            max_new_tokens=episode.max_new_tokens(),
            episode_id=episode.id,
            turn_index=len(episode.turns),
            question=episode.question,
            image=episode.image,
            metadata=episode.metadata,
        )
        t1 = time.perf_counter()
        try:
            gen = await policy.generate(request)
        except ReplayMiss:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing policy ends the episode, not the batch
            log.warning("policy %s failed on %s: %s", getattr(policy, "name", "?"), episode.id, exc)
            episode.fail(f"{type(exc).__name__}: {exc}")
            break
        step = episode.step(gen.text, n_tokens=gen.n_tokens, latency_s=time.perf_counter() - t1)
        turn = episode.turns[-1]
        await _emit(on_event, "turn", episode.id, turn.to_dict)
        if isinstance(step, ToolRequest):
            await _emit(on_event, "tool_start", episode.id,
                        lambda req=step: {"kind": req.kind, "query": req.query})
            call = await toolbox.run(step, question=episode.question, image=episode.image,
                                     episode_id=episode.id)
            episode.observe(call)
            await _emit(on_event, "observation", episode.id, turn.to_dict)
        elif isinstance(step, Corrective):
            await _emit(on_event, "observation", episode.id, turn.to_dict)
        elif isinstance(step, Finished):
            break
    traj = episode.trajectory()
    traj.wall_s = time.perf_counter() - t0
    await _emit(on_event, "done", episode.id, traj.to_dict)
    return traj


async def run_episodes(
    episodes: Iterable[Episode],
    policy: Policy,
    toolbox: Toolbox,
    *,
    concurrency: int = 8,
    on_done: Callable[[Trajectory], Awaitable[None] | None] | None = None,
) -> list[Trajectory]:
    """Run episodes concurrently (at most ``concurrency`` at a time), in input order."""
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(ep: Episode) -> Trajectory:
        async with sem:
            traj = await run_episode(ep, policy, toolbox)
        if on_done is not None:
            res = on_done(traj)
            if asyncio.iscoroutine(res):
                await res
        return traj

    return list(await asyncio.gather(*(one(ep) for ep in episodes)))
