"""User-facing errors: each one becomes a single stderr line and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EntrycheckError(Exception):
    """A problem with the user's input (image, entry, function, rule file)."""


class NotReached(EntrycheckError):
    """A function that exists but that the entry does not reach (an answer to `why`,
    an error where a reached function is needed)."""

    def __init__(self, entry: str, name: str, addresses: list[int]):
        super().__init__(f"entry {entry} does not reach {name}")
        self.addresses = addresses


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """` (did you mean a, b or c?)` for the three closest candidates (difflib) other than
    `name` itself, or ``."""
    close = difflib.get_close_matches(name[:200], sorted(set(candidates) - {name}), n=3)
    if not close:
        return ""
    listed = ", ".join(close[:-1]) + (" or " if len(close) > 1 else "") + close[-1]
    return f" (did you mean {listed}?)"
