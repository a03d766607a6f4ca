"""An append-only, fsync'd JSONL journal of finished work, keyed by id — what makes a long run
resumable after any interruption (Ctrl-C, OOM, ``kill -9``, power loss).

Each finished item is one line, written whole and fsync'd before the run moves on. On opening,
a torn last line (the process died mid-write) is cut off, so the next append starts on a clean
line; lines whose id was already seen are ignored (the first wins). So a resumed run redoes only
what has no complete line, and duplicates nothing::

    journal = Journal(out / "episodes.jsonl")
    todo = [s for s in samples if s.id not in journal]
    ...
    journal.append(sample.id, {"trajectory": ..., "verdict": ...})
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepmmsearch import jsontext

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, path: str | Path, key: str = "id", fsync_interval_s: float = 0.0) -> None:
        """``fsync_interval_s``: 0 fsyncs every line (a power cut loses nothing); above 0, every
        line is still flushed to the OS at once (a killed process loses nothing) but fsync'd at
        most that often — fsync costs milliseconds per call on many disks."""
        self.path = Path(path)
        self.key = key
        self.fsync_interval_s = fsync_interval_s
        self._last_sync = 0.0
        self.records: dict[str, dict[str, Any]] = {}
        self.repaired = 0  # torn or unreadable lines dropped when opening
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._load()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good_end = 0
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:  # no newline: the last write was torn
                self.repaired += 1
                break
            line = data[pos:nl]
            pos = nl + 1
            if not line.strip():
                good_end = pos
                continue
            try:
                row = json.loads(line)
                rid = str(row[self.key])
            except (ValueError, KeyError, TypeError):
                self.repaired += 1
                log.warning("%s: dropping an unreadable line", self.path)
                continue
            self.records.setdefault(rid, row)
            good_end = pos
        if good_end < len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())
            log.info("%s: cut a torn last line (%d bytes)", self.path, len(data) - good_end)

    def __contains__(self, rid: object) -> bool:
        return str(rid) in self.records

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records.values())

    def append(self, rid: str, record: dict[str, Any]) -> bool:
        """Write one finished item durably; False (and nothing written) if ``rid`` is done."""
        rid = str(rid)
        if rid in self.records:
            return False
        row = {self.key: rid, **{k: v for k, v in record.items() if k != self.key}}
        self._fh.write(jsontext.dumps(row) + "\n")
        self._fh.flush()
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval_s:
            os.fsync(self._fh.fileno())
            self._last_sync = now
        self.records[rid] = row
        return True

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> Journal:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
