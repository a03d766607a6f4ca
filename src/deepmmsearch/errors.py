"""Errors that mean "what you gave a command cannot be used" (as opposed to a bug).

The CLI prints them as one line on stderr and exits with status 2, never with a traceback.
"""

from __future__ import annotations


class UsageError(Exception):
    """A command was given something it cannot use: an empty question, an unreadable image,
    a negative count."""
