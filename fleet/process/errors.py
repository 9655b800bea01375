"""Errors as one line: what a log line, a status record or a failure record says of an exception."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The exception's first non-blank line, cut to `limit` characters; its type's name when it says nothing."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__
