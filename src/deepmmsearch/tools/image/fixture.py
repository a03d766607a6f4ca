"""``fixture`` image search: a first-class fake.

Returns canned hits keyed by the searched image's size (``"WxH"``, so a crop and the whole image
get different answers) or ``"*"``; records every searched image size in ``calls``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.text.fixture import load_responses
from deepmmsearch.types import SearchHit


class FixtureImageSearch:
    name = "fixture"

    def __init__(self, path: str | None = None, responses: dict[str, Any] | None = None,
                 fail: str | None = None, latency_s: float = 0.0) -> None:
        self.table = load_responses(path, responses)
        self.fail = fail
        self.latency_s = latency_s
        self.calls: list[tuple[int, int]] = []

    async def search(self, image: Any, k: int = 5) -> list[SearchHit]:
        self.calls.append(tuple(image.size))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.fail:
            raise ToolError(self.fail)
        key = f"{image.size[0]}x{image.size[1]}"
        return list(self.table.get(key, self.table.get("*", [])))[:k]
