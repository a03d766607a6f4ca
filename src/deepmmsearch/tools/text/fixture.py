"""``fixture`` text search: a first-class fake.

Answers from a JSON/YAML/JSONL file mapping queries to hits (``{query: [{title, url, snippet}]}``),
or from inline ``responses``. Matching is on the normalised query; ``"*"`` is a fallback. It can
inject faults for robustness tests: ``fail_on`` maps a query to an error message raised as a
:class:`~deepmmsearch.tools.base.ToolError`, and ``latency_s`` adds a delay to every call.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml

from deepmmsearch.registry import ConfigError
from deepmmsearch.tools.base import ToolError
from deepmmsearch.tools.cache import normalise_query
from deepmmsearch.types import SearchHit


def load_responses(path: str | None, responses: dict[str, Any] | None) -> dict[str, list[SearchHit]]:
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"fixture file {p}: cannot read it "
                              f"({getattr(exc, 'strerror', None) or exc})") from None
        if p.suffix == ".jsonl":
            for lineno, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                        data[row["query"]] = row["hits"]
                    except (ValueError, KeyError, TypeError) as exc:
                        raise ConfigError(f"{p}:{lineno}: not a fixture row "
                                          f'{{"query": ..., "hits": [...]}} ({exc})') from None
        else:
            try:
                loaded = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"fixture file {p}: not valid YAML: {exc}") from None
            if not isinstance(loaded, dict):
                raise ConfigError(f"fixture file {p}: expected a mapping of query to hits")
            data.update(loaded)
    data.update(responses or {})
    try:
        return {
            (k if k == "*" else normalise_query(str(k))): [SearchHit.from_dict(h) for h in v]
            for k, v in data.items()
        }
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"fixture {path or 'responses'}: each query needs a list of hits "
                          f"{{title, url, snippet}} ({exc})") from None


class FixtureTextSearch:
    name = "fixture"

    def __init__(self, path: str | None = None, responses: dict[str, Any] | None = None,
                 fail_on: dict[str, str] | None = None, latency_s: float = 0.0) -> None:
        self.table = load_responses(path, responses)
        self.fail_on = {normalise_query(k): v for k, v in (fail_on or {}).items()}
        self.latency_s = latency_s
        self.calls: list[str] = []

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        self.calls.append(query)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        q = normalise_query(query)
        if q in self.fail_on:
            raise ToolError(self.fail_on[q])
        return list(self.table.get(q, self.table.get("*", [])))[:k]
