"""The tool roles: one small async protocol each. Backends live in sub-packages and are built by
name from :mod:`deepmmsearch.registry`. Backends raise :class:`ToolError` (or any exception) on
failure; the toolbox turns every failure into an observation, never a crashed batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from deepmmsearch.types import Box, SearchHit

if TYPE_CHECKING:
    from PIL import Image


class ToolError(RuntimeError):
    """A tool failed in a way the episode should see (HTTP error, rate limit, bad response)."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@runtime_checkable
class TextSearch(Protocol):
    name: str

    async def search(self, query: str, k: int = 5) -> list[SearchHit]: ...


@runtime_checkable
class ImageSearch(Protocol):
    name: str

    async def search(self, image: Image.Image, k: int = 5) -> list[SearchHit]: ...


@runtime_checkable
class Grounder(Protocol):
    """Find the box of a referring expression, in pixels of the original image; None if absent."""

    name: str

    async def ground(self, image: Image.Image, expression: str) -> Box | None: ...


@runtime_checkable
class Summarizer(Protocol):
    name: str

    async def summarize(
        self, kind: Literal["text", "image"], question: str, query: str, hits: list[SearchHit]
    ) -> str: ...
