"""How a job ended: the outcome the loop settles on, and what the logs, the failure record and the ack need."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleet.job.messages import SourceFingerprint


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


@dataclass
class JobResult:
    """The outcome plus what the logs, the failure record and the ack need."""

    outcome: Outcome
    reason: str = ""
    detail: str = ""
    audio_s: float = 0.0
    fingerprint: SourceFingerprint | None = None
    language: str = ""  # what was transcribed, for the finished-file notification
    outputs: tuple[str, ...] = ()  # the files written, relative to the destination
