"""The tools' error. The tool roles' protocols are in :mod:`deepmmsearch.roles` (re-exported
here); backends live in sub-packages and are built by name from :mod:`deepmmsearch.registry`.
Backends raise :class:`ToolError` (or any exception) on failure; the toolbox turns every failure
into an observation, never a crashed batch."""

from __future__ import annotations

from deepmmsearch.roles import Grounder, ImageSearch, Summarizer, TextSearch

__all__ = ["Grounder", "ImageSearch", "Summarizer", "TextSearch", "ToolError"]


class ToolError(RuntimeError):
    """A tool failed in a way the episode should see (HTTP error, rate limit, bad response)."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
