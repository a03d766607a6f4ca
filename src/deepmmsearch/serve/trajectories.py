"""Browse past trajectories: the JSONL files under configured folders, one Trajectory per line.

A file is named by ``<folder>/<path relative to it>`` and is served only when that exact name is
in the current listing (built by walking the folders), so no request can name any other path.
Rows may carry extra keys (an evaluation's verdicts, scores...): they are kept in ``extra``.
A line that is not JSON or not a trajectory is shown as an error row, never a crash.
"""

from __future__ import annotations

import dataclasses
import json
from itertools import islice
from pathlib import Path
from typing import Any

from deepmmsearch.serve.security import ApiError
from deepmmsearch.types import Trajectory

_FIELDS = {f.name for f in dataclasses.fields(Trajectory)}
MAX_LINE = 100_000_000  # far more rows than any trajectory file holds; bigger numbers are 400


class TrajectoryBrowser:
    def __init__(self, folders: dict[str, str | Path | None], *, max_files: int = 2000,
                 only: dict[str, str] | None = None) -> None:
        """``folders``: name → folder to walk; ``only``: name → the single file name to list."""
        self.folders = {k: Path(v) for k, v in folders.items() if v}
        self.only = dict(only or {})
        self.max_files = max_files

    def files(self) -> list[dict[str, Any]]:
        out = []
        for name, folder in self.folders.items():
            if not folder.is_dir():
                continue
            pattern = self.only.get(name, "*.jsonl")
            found = folder.glob(pattern) if name in self.only else folder.rglob(pattern)
            for path in sorted(islice(found, self.max_files)):
                if path.is_file() and not path.is_symlink():
                    stat = path.stat()
                    out.append({"id": f"{name}/{path.relative_to(folder).as_posix()}",
                                "size": stat.st_size, "mtime": stat.st_mtime})
        return out[: self.max_files]

    def path(self, file_id: str) -> Path:
        if file_id not in {f["id"] for f in self.files()}:
            raise ApiError(404, f"no trajectory file {file_id!r}; GET /api/trajectories lists "
                           "them", code="not_found")
        name, _, rel = file_id.partition("/")
        return self.folders[name] / rel

    def rows(self, file_id: str, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """One page of a file's rows as short summaries."""
        if not 0 <= offset <= MAX_LINE or not 1 <= limit <= 1000:
            raise ApiError(400, f"offset must be in 0..{MAX_LINE:,} and limit in 1..1000")
        rows, total = [], 0
        with self.path(file_id).open(encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                total += 1
                if offset < total <= offset + limit:
                    rows.append(_summary(number, line))
        return {"file": file_id, "total": total, "offset": offset, "rows": rows}

    def get(self, file_id: str, line: int) -> dict[str, Any]:
        """The trajectory on line ``line`` (1-based, as in ``rows``), with its extra keys."""
        if not 1 <= line <= MAX_LINE:
            raise ApiError(400, f"line must be in 1..{MAX_LINE:,}, got {line}")
        with self.path(file_id).open(encoding="utf-8", errors="replace") as fh:
            text = next(islice(fh, line - 1, None), None) if line >= 1 else None
        if text is None or not text.strip():
            raise ApiError(404, f"{file_id} has no trajectory on line {line}", code="not_found")
        data, error = _parse(text)
        if error:
            raise ApiError(422, f"{file_id}:{line}: {error}", code="bad_trajectory")
        traj = Trajectory.from_dict(data).to_dict()
        traj["extra"] = {k: v for k, v in data.items() if k not in _FIELDS}
        traj["line"] = line
        return traj


def _parse(line: str) -> tuple[dict[str, Any], str | None]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return {}, f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(data, dict) or "id" not in data or "question" not in data:
        return {}, "not a trajectory (a trajectory has at least 'id' and 'question')"
    try:
        Trajectory.from_dict(data)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return {}, f"not a trajectory: {exc}"
    return data, None


def _summary(number: int, line: str) -> dict[str, Any]:
    data, error = _parse(line)
    if error:
        return {"line": number, "error": error}
    verdict = data.get("verdict") or {}
    return {
        "line": number,
        "id": str(data.get("id")),
        "question": str(data.get("question"))[:300],
        "answer": data.get("answer"),
        "stop_reason": data.get("stop_reason"),
        "correct": verdict.get("correct") if isinstance(verdict, dict) else None,
        "turns": len(data.get("turns") or []),
    }
