"""How a job ended: one vocabulary for the loop that settles it, the worker record that counts it, and the summaries."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How a job ended, as the loop acts on it."""

    TRANSCRIBED = "transcribed"
    RENDERED = "re-rendered"  # only the layout, the formats or the speakers changed: rewritten from the JSON on disk
    ALREADY_DONE = "already done"
    SUBTITLED = "subtitled"  # the video has a subtitle in its language already (the media layout): not transcribed
    SOURCE_GONE = "source gone"
    SUPERSEDED = "superseded"  # queued with settings the director no longer plans for the file: not run
    LEASE_LOST = "lease lost"
    FAILED = "failed"
    RETRY = "retry"
    CRASHED = "crashed"  # an unexpected exception: a bug, likely to repeat
