"""One append-only, fsync'd JSONL store — eval results and the distillation journal both use it.

Each row is one line, written whole; :meth:`AppendLog.sync` makes every row written so far
survive a kill or a power cut. Opening a file reads what is there: a torn last line (the process
died mid-write) is cut off, a complete last row without its newline gets one, so the next append
starts on a clean line; rows whose key was already seen are ignored (the first wins). An
unreadable line *before* the end is an error with ``strict`` (a hand-edited results file) and is
skipped with a warning otherwise. Every row goes through :func:`encode_row`, the one encoder.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
>>> with AppendLog(p, key=lambda row: row["id"]) as log:
...     row = {"id": "a", "v": 1}
...     log.add("a", row, row)
...     log.sync()
>>> _ = open(p, "a").write('{"id": "b", "v')   # killed mid-write
>>> with AppendLog(p, key=lambda row: row["id"]) as log:
...     sorted(log.rows), log.repaired
(['a'], 1)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from deepmmsearch import jsontext

log = logging.getLogger(__name__)

T = TypeVar("T")


def encode_row(row: dict[str, Any]) -> str:
    """The one line of a row (no newline): JSON, non-ASCII kept as is, lone surrogates escaped
    (:func:`deepmmsearch.jsontext.dumps`), so every row is valid UTF-8."""
    return jsontext.dumps(row)


def _identity(row: dict[str, Any]) -> Any:
    return row


def scan(path: Path, *, key: Callable[[Any], str], decode: Callable[[dict[str, Any]], T] = _identity,
         strict: bool = False, what: str = "row") -> tuple[dict[str, T], int, int]:
    """``(rows by key, bytes of the good prefix, lines dropped)`` of a JSONL file."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    rows: dict[str, T] = {}
    offset = good_end = dropped = 0
    for i, line in enumerate(lines):
        end = offset + len(line) + (1 if i < len(lines) - 1 else 0)
        if line.strip():
            try:
                value = decode(json.loads(line.decode("utf-8")))
                k = str(key(value))
            except (ValueError, KeyError, TypeError) as exc:
                dropped += 1
                if not any(rest.strip() for rest in lines[i + 1:]):
                    log.warning("%s: dropping a torn last line (%d bytes)", path.name, len(line))
                    break
                if strict:
                    raise ValueError(f"{path}:{i + 1}: not a {what} ({exc})") from None
                log.warning("%s:%d: dropping an unreadable line", path, i + 1)
                offset = end
                continue
            rows.setdefault(k, value)
        good_end = offset = end
    return rows, good_end, dropped


def repair(path: Path, good_end: int) -> None:
    """Cut the file after its good prefix, or end a complete last row with its newline."""
    size = path.stat().st_size
    if good_end < size:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
        log.info("%s: cut a torn last line (%d bytes)", path, size - good_end)
    elif size:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            ended = fh.read(1) == b"\n"
        if not ended:
            with open(path, "ab") as fh:
                fh.write(b"\n")


class AppendLog(Generic[T]):
    """An open append-only JSONL file: ``rows`` (key → decoded row) and buffered appends."""

    def __init__(self, path: str | Path, *, key: Callable[[Any], str],
                 decode: Callable[[dict[str, Any]], T] = _identity, strict: bool = False,
                 what: str = "row") -> None:
        self.path = Path(path)
        self.rows: dict[str, T] = {}
        self.repaired = 0  # torn or unreadable lines dropped when opening
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.rows, good_end, self.repaired = scan(self.path, key=key, decode=decode,
                                                      strict=strict, what=what)
            repair(self.path, good_end)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._last_sync = 0.0

    def __contains__(self, key: object) -> bool:
        return str(key) in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, key: str, value: T, row: dict[str, Any]) -> None:
        """Write one row (buffered: durable after :meth:`sync`); ``value`` is what ``rows`` keeps."""
        self._fh.write(encode_row(row) + "\n")
        self.rows[str(key)] = value

    def sync(self, at_most_every_s: float = 0.0) -> None:
        """Flush to the OS (a killed process loses nothing) and fsync (a power cut loses nothing)
        — the fsync at most every ``at_most_every_s`` seconds (it costs milliseconds)."""
        self._fh.flush()
        now = time.monotonic()
        if now - self._last_sync >= at_most_every_s:
            os.fsync(self._fh.fileno())
            self._last_sync = now

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> AppendLog[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
