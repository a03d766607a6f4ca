"""The Policy role's records (its protocol is :class:`deepmmsearch.roles.Policy`).

Backends: ``hf`` (transformers, Qwen2.5-VL / Qwen3-VL / Qwen3.5), ``openai`` (any OpenAI-compatible server),
``scripted`` (replays turns from a file; tests and demos) and ``simweb-expert`` (SimWeb's
privileged teacher). A policy gets the neutral message list (see :class:`~deepmmsearch.types.Message`)
and must stop after the closing tag of an action, so the tool runs before it goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deepmmsearch.protocol import STOP_STRINGS
from deepmmsearch.roles import Policy
from deepmmsearch.types import Message

__all__ = ["Generation", "GenerationRequest", "Policy", "truncate_at_stop"]


@dataclass
class GenerationRequest:
    messages: list[Message]
    max_new_tokens: int = 1024
    stop: tuple[str, ...] = STOP_STRINGS
    episode_id: str = ""
    turn_index: int = 0
    question: str = ""
    image: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # the sample's metadata (ids, world refs)


@dataclass
class Generation:
    text: str
    n_tokens: int | None = None
    token_ids: list[int] | None = None  # sampled ids (hf policy; used by RL rollouts)
    logprobs: list[float] | None = None
    finish_reason: str | None = None  # "stop" (action tag), "length", "eos"


def truncate_at_stop(text: str, stops: tuple[str, ...] = STOP_STRINGS) -> tuple[str, bool]:
    """Cut ``text`` right after the first stop string; returns (text, stopped)."""
    best = None
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best is None or i + len(s) < best):
            best = i + len(s)
    return (text[:best], True) if best is not None else (text, False)
