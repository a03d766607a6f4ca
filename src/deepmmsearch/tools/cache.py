"""SQLite record/replay cache for tool calls.

Keys hash the role, the backend name, the normalised input (query text, or image hash plus box)
and the prompt version. Values are JSON. Modes:

- ``off``: no cache;
- ``live``: read-through — hits are served, misses call the backend and are stored;
- ``record``: always call the backend and store (overwrites);
- ``replay``: serve from the cache only; a miss raises :class:`ReplayMiss`.

Safe under many concurrent episodes: one connection per thread in WAL mode, and concurrent
misses on the same key are coalesced into one backend call. API keys never enter a key or a value
(backends are identified by their registry name only).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from deepmmsearch import jsontext


class ReplayMiss(LookupError):
    """Replay mode asked for something that was never recorded."""


def normalise_query(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def make_key(*parts: Any) -> str:
    blob = jsontext.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def image_digest(image: Any) -> str:
    """A content hash of a PIL image (mode, size and pixels)."""
    h = hashlib.sha256()
    h.update(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()[:32]


class ToolCache:
    def __init__(self, path: str | Path, mode: str = "live") -> None:
        if mode not in ("live", "record", "replay"):
            raise ValueError(f"cache mode must be live, record or replay, got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._inflight: dict[str, asyncio.Future] = {}
        self.hits = 0
        self.misses = 0
        with self._conn() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, role TEXT, backend TEXT,"
                " input TEXT, value TEXT, created REAL)"
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, key: str) -> Any | None:
        found, value = self.lookup(key)
        return value if found else None

    def lookup(self, key: str) -> tuple[bool, Any]:
        """``(found, value)``: tells a stored ``None`` (e.g. "grounding found nothing") from a miss."""
        row = self._conn().execute("SELECT value FROM cache WHERE key=?", (key,)).fetchone()
        return (False, None) if row is None else (True, json.loads(row[0]))

    def put(self, key: str, value: Any, *, role: str = "", backend: str = "", input: str = "") -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?, ?)",
            (key, role, backend, jsontext.scrub(input[:500]), jsontext.dumps(value), time.time()),
        )

    def __len__(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM cache").fetchone()[0]

    async def get_or_call(
        self,
        key: str,
        call: Callable[[], Awaitable[Any]],
        *,
        role: str,
        backend: str,
        input: str = "",
    ) -> tuple[Any, bool]:
        """Return ``(value, cache_hit)``. Exceptions from ``call`` are not cached."""
        if self.mode != "record":
            found, value = self.lookup(key)
            if found:
                self.hits += 1
                return value, True
            if self.mode == "replay":
                raise ReplayMiss(f"replay cache miss: {role} {backend!r} {input[:120]!r}")
        if key in self._inflight:  # another episode is fetching the same thing right now
            value = await asyncio.shield(self._inflight[key])
            self.hits += 1
            return value, True
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            value = await call()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved
            raise
        finally:
            self._inflight.pop(key, None)
        fut.set_result(value)
        self.misses += 1
        self.put(key, value, role=role, backend=backend, input=input)
        return value, False
