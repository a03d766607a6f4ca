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

The file handling is :class:`deepmmsearch.appendlog.AppendLog` (shared with eval results).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepmmsearch.appendlog import AppendLog


class Journal:
    def __init__(self, path: str | Path, key: str = "id", fsync_interval_s: float = 0.0) -> None:
        """``fsync_interval_s``: 0 fsyncs every line (a power cut loses nothing); above 0, every
        line is still flushed to the OS at once (a killed process loses nothing) but fsync'd at
        most that often — fsync costs milliseconds per call on many disks."""
        self.path = Path(path)
        self.key = key
        self.fsync_interval_s = fsync_interval_s
        self._log: AppendLog[dict[str, Any]] = AppendLog(self.path, key=lambda row: row[key])
        self.records = self._log.rows
        self.repaired = self._log.repaired

    def __contains__(self, rid: object) -> bool:
        return rid in self._log

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
        self._log.add(rid, row, row)
        self._log.sync(self.fsync_interval_s)
        return True

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> Journal:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
