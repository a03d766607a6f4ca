"""Every pluggable role's interface, in one place.

Each role is a small protocol; its backends are listed by name in :mod:`deepmmsearch.registry`
(``"module:factory"`` strings, one fake per table) and built from a config mapping
``{name: NAME, **factory kwargs}``. Backends import the protocol from here; records that cross
the boundary (:class:`~deepmmsearch.types.SearchHit`, :class:`~deepmmsearch.types.Box`,
:class:`~deepmmsearch.types.Verdict`, the policy's request / generation) live in
:mod:`deepmmsearch.types` and :mod:`deepmmsearch.policies.base`. Contract tests:
``tests/runtime/test_rt_roles.py`` (every offline registry name of every role).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from deepmmsearch.data.benchmarks.base import BenchmarkData
    from deepmmsearch.policies.base import Generation, GenerationRequest
    from deepmmsearch.types import Box, SearchHit, Verdict


@runtime_checkable
class TextSearch(Protocol):
    """Web (or local) text search: a query in, up to ``k`` hits (title, url, snippet) out.

    Failures raise (``tools.base.ToolError`` for expected ones); the toolbox turns every
    exception into the episode's observation.
    """

    name: str

    async def search(self, query: str, k: int = 5) -> list[SearchHit]: ...


@runtime_checkable
class ImageSearch(Protocol):
    """Reverse image search: an image (whole or a crop) in, up to ``k`` page hits out."""

    name: str

    async def search(self, image: Image.Image, k: int = 5) -> list[SearchHit]: ...


@runtime_checkable
class Grounder(Protocol):
    """Find the box of a referring expression, in pixels of the original image; None if absent."""

    name: str

    async def ground(self, image: Image.Image, expression: str) -> Box | None: ...


@runtime_checkable
class Summarizer(Protocol):
    """Turn search hits into the text of one ``<information>`` block, for this question."""

    name: str

    async def summarize(
        self, kind: Literal["text", "image"], question: str, query: str, hits: list[SearchHit]
    ) -> str: ...


@runtime_checkable
class Judge(Protocol):
    """Decide whether a predicted answer matches any gold answer.

    ``Verdict.correct`` is True / False, or None when a model judge's reply could not be parsed;
    give-up and empty answers are incorrect without asking a model.
    """

    name: str

    async def judge(self, question: str, prediction: str | None,
                    answers: Sequence[str]) -> Verdict: ...


@runtime_checkable
class Policy(Protocol):
    """Write the model's next turn from the neutral message list.

    It must stop right after the closing tag of an action (``protocol.STOP_STRINGS``) so the tool
    runs before the model goes on; ``Generation.token_ids`` / ``logprobs`` when it knows them.
    """

    name: str

    async def generate(self, request: GenerationRequest) -> Generation: ...


@runtime_checkable
class ImageHost(Protocol):
    """Publish image bytes (a crop) and return a URL a web image search can fetch."""

    name: str

    def put(self, data: bytes, suffix: str = ".png") -> str: ...


class DatasetLoader(Protocol):
    """Load a benchmark's questions from local files: ``loader(path, **options)``.

    Options are keyword-only and validated against the loader's signature by the registry, so a
    misspelt option is a config error; every loader takes ``limit``, ``seed`` and ``ids``. The
    result carries the samples and a report of what was dropped and why.
    """

    def __call__(self, path: str, **options: Any) -> BenchmarkData: ...
