"""JSON text that can always be written as UTF-8, whatever strings JSON itself can carry.

A JSON document may hold a lone UTF-16 surrogate (``"\\ud800"``); ``json.loads`` turns it into a
Python ``str`` that cannot be encoded as UTF-8, so ``json.dumps(..., ensure_ascii=False)``
followed by a UTF-8 write raises ``UnicodeEncodeError``. :func:`dumps` writes such characters as
``\\uXXXX`` escapes instead (every other character stays readable), so the text reads back
exactly as ``json.dumps``'s all-ASCII form would, and every file, socket or terminal accepts it. Every writer of
JSON lines, caches and server responses goes through :func:`dumps`; :func:`scrub` replaces lone
surrogates with U+FFFD for text that goes to a tokenizer or a web page.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps(obj, ensure_ascii=False, **kwargs)`` whose result is always valid UTF-8 text.

    Outside strings JSON has only ASCII, so a surrogate in the output is inside a string, where
    ``\\uXXXX`` is its exact JSON escape.
    """
    kwargs.setdefault("ensure_ascii", False)
    text = json.dumps(obj, **kwargs)
    return _SURROGATE.sub(_escape, text) if not kwargs["ensure_ascii"] else text


def scrub(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (the replacement character)."""
    return _SURROGATE.sub("\ufffd", text)
