"""The one conversation of an episode and the one ``<information>`` text of a tool call.

Both the live :class:`~deepmmsearch.agent.state.Episode` (the prompt a policy sees) and the
finished :class:`~deepmmsearch.types.Trajectory` (what SFT trains on) build their messages with
:func:`conversation` (defined with the records in :mod:`deepmmsearch.types`, which holds no
other conversation logic), and the agent and the eval workflows render a tool call through
:func:`information_text`.
"""

from __future__ import annotations

from deepmmsearch.types import ToolCall, conversation

__all__ = ["conversation", "information_text"]


def information_text(call: ToolCall) -> str:
    """What a tool call contributes to an ``<information>`` block (unescaped).

    A note (e.g. why a crop was skipped) comes first in parentheses; then the failure, the empty
    result, or the summary — the hits' titles and snippets when there is no summary.
    """
    what = "image search" if call.kind == "image_search" else "text search"
    parts = [f"({call.note})"] if call.note else []
    if call.error:
        parts.append(f"The {what} failed: {call.error}. No results.")
    elif not call.hits and not call.summary:
        parts.append(f"The {what} found no results.")
    else:
        parts.append(call.summary or "\n".join(f"{h.title}: {h.snippet}" for h in call.hits))
    return " ".join(parts)
