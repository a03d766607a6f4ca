"""What the veRL adapters share — no veRL import here, so it is testable anywhere.

- :class:`AgentRuntime`: an :class:`~deepmmsearch.config.AgentConfig` (tools, budgets, prompts)
  loaded from a YAML file, and its :class:`~deepmmsearch.agent.toolbox.Toolbox`, built on first
  use and shared by every trajectory of a Ray worker (:func:`load_runtime` caches one per file).
- :func:`tool_action`: the tag parser's rule (what ``deepmmsearch_tags`` turns into a call).
- :func:`run_tool_turn`: one tool turn of the stock ``tool_agent`` loop, through the episode
  state machine (budgets, image-once, the rendered ``<information>`` observation).
- :func:`action_cut`: where a generated turn must end (right after the first action's closing
  tag), at the token level, for the ``deepmmsearch_agent`` loop.

The agent config is an ``agent``-stage YAML (``configs/verl/agent_fixture.yaml``); its ``policy``
is ignored (the model being trained is the policy). A relative path is looked up in the working
directory, then in the project root (an editable install on every node finds
``configs/verl/...`` wherever Ray started the worker).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deepmmsearch.agent.state import Corrective, Episode, Finished, ToolRequest
from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.config import AgentConfig, load_config
from deepmmsearch.prompts import PromptSet, get_prompts
from deepmmsearch.protocol import (
    REASON,
    STOP_STRINGS,
    close_tag,
    parse_action,
    render_information,
    wrap,
)
from deepmmsearch.registry import ConfigError
from deepmmsearch.types import Action, Message

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[4]
# the tool names the parser emits and the tool YAML declares (the tags' own names)
TEXT_TOOL = "text_search"
IMAGE_TOOL = "img_search"


def resolve_path(path: str | Path, what: str = "file") -> Path:
    """An existing path: as given, else relative to the working directory or the project root."""
    p = Path(path).expanduser()
    tried = [p] if p.is_absolute() else [Path.cwd() / p, PROJECT_ROOT / p]
    for cand in tried:
        if cand.exists():
            return cand.resolve()
    raise ConfigError(f"{what} not found: {path} (looked in {', '.join(str(t) for t in tried)})")


class AgentRuntime:
    """An agent config and its toolbox (built lazily: constructors stay cheap and offline)."""

    def __init__(self, agent: AgentConfig, source: str = "<memory>",
                 toolbox: Toolbox | None = None) -> None:
        self.agent = agent
        self.source = source
        self.prompts: PromptSet = get_prompts(agent.prompts)
        self._toolbox = toolbox
        self._lock = threading.Lock()

    @property
    def toolbox(self) -> Toolbox:
        with self._lock:
            if self._toolbox is None:
                log.info("building the tools of %s", self.source)
                self._toolbox = Toolbox.from_config(self.agent)
            return self._toolbox

    def episode(self, question: str, *, episode_id: str | None = None, gold: Sequence[str] = (),
                prompt: list[Message] | None = None, image: str | None = None,
                require_reason: bool = True, metadata: dict | None = None) -> Episode:
        return Episode(question, image, limits=self.agent.limits, prompts=self.prompts,
                       episode_id=episode_id, gold=list(gold), prompt=prompt,
                       require_reason=require_reason, metadata=metadata)


_RUNTIMES: dict[tuple[str, tuple[str, ...]], AgentRuntime] = {}
_RUNTIMES_LOCK = threading.Lock()


def load_runtime(path: str | Path, overrides: Sequence[str] = ()) -> AgentRuntime:
    """The runtime of an ``agent``-stage YAML, one per (file, overrides) in this process."""
    resolved = resolve_path(path, "agent config")
    key = (str(resolved), tuple(overrides))
    with _RUNTIMES_LOCK:
        rt = _RUNTIMES.get(key)
        if rt is None:
            cfg = load_config(resolved, list(overrides), expect="agent")
            rt = _RUNTIMES[key] = AgentRuntime(cfg.agent, str(resolved))
        return rt


# ---------------------------------------------------------------------------------------------
# the tag parser's rule


def _first_action_end(text: str, start: int) -> int | None:
    """End of the first action closing tag at or after ``start``; None if there is none."""
    ends = [i + len(s) for s in STOP_STRINGS if (i := text.find(s, start)) >= 0]
    return min(ends) if ends else None


def action_tail(text: str) -> str | None:
    """The action part of a turn: after the last ``</reason>`` before the first action.

    Tag-like text inside the reasoning is skipped (closing tags are looked for only after the
    first ``</reason>``); a generation that ran on past its action is cut after the first one.
    None when the turn has no ``</reason>`` or no complete action after it.
    """
    end_reason = close_tag(REASON)
    first = text.find(end_reason)
    if first < 0:
        return None
    end = _first_action_end(text, first + len(end_reason))
    if end is None:
        return None
    head = text[:end]
    return head[head.rfind(end_reason) + len(end_reason):]


def tool_action(text: str) -> Action | None:
    """The search a turn asks for, or None (an answer, or a malformed turn: the episode ends)."""
    tail = action_tail(text)
    if tail is None:
        return None
    action = parse_action(tail, require_reason=False)
    return action if action.kind in ("text_search", "image_search") else None


# ---------------------------------------------------------------------------------------------
# one tool turn of the stock loop


async def run_tool_turn(runtime: AgentRuntime, episode: Episode, action_text: str,
                        image: Any) -> str:
    """Feed ``action_text`` (an action tag) to the episode; run the tool it asks for.

    Returns the text injected back: the ``<information>`` observation the episode renders, a
    corrective observation (image search twice, spent budget, malformed call), or a budget note
    when the episode is already over. Tool failures become observations (the toolbox's rule).
    """
    if episode.done:
        what = f"the episode is over ({episode.stop_reason})"
        return render_information(runtime.prompts.budget_spent.format(what=what))
    step = episode.step(action_text)
    if isinstance(step, ToolRequest):
        call = await runtime.toolbox.run(step, question=episode.question, image=image,
                                         episode_id=episode.id)
        return episode.observe(call)
    if isinstance(step, Corrective):
        return step.observation
    assert isinstance(step, Finished)
    what = f"turns (the episode stopped: {step.stop_reason})"
    return render_information(runtime.prompts.budget_spent.format(what=what))


def counters(episode: Episode) -> dict[str, int]:
    """The episode's tool counters, as plain ints (for veRL's ``extra_fields``)."""
    c = episode.counters
    return {"dmm_tool_calls": c.tool_calls, "dmm_image_searches": c.image_searches,
            "dmm_text_searches": c.text_searches, "dmm_invalid_turns": c.invalid_total}


# ---------------------------------------------------------------------------------------------
# token-level cut for the custom loop


def action_cut(decode: Callable[[list[int]], str], ids: list[int],
               stops: Sequence[str] = STOP_STRINGS) -> int:
    """The shortest prefix of ``ids`` whose text contains a stop string; ``len(ids)`` if none.

    The same rule as the ``hf`` policy's stopping criterion (stop at the first action closing
    tag, wherever it is), found with O(log n) decodes. ``decode`` must keep special tokens.
    """
    if not ids or not any(s in decode(ids) for s in stops):
        return len(ids)
    lo, hi = 1, len(ids)  # invariant: the prefix of length hi contains a stop string
    while lo < hi:
        mid = (lo + hi) // 2
        if any(s in decode(ids[:mid]) for s in stops):
            hi = mid
        else:
            lo = mid + 1
    return hi


def action_tag(tool: str, argument: str) -> str:
    """The action tag of a tool call (``text_search`` / ``img_search``; ``<img>``: whole image)."""
    if tool not in (TEXT_TOOL, IMAGE_TOOL):
        raise ValueError(f"unknown tool {tool!r}")
    return wrap(tool, argument)
