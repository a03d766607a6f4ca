"""The one error a benchmark load raises, and the two file checks that raise it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """A benchmark's main file is missing or unreadable as a whole."""


def require_file(path: str | Path, what: str, hint: str = "") -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"{what} not found: {p}" + (f" ({hint})" if hint else ""))
    return p


def read_json(path: str | Path, what: str) -> Any:
    p = require_file(path, what)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{what} {p} is not valid JSON: {exc}") from None
