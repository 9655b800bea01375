"""How a job ended: the outcome the loop settles on, and what the logs, the failure record and the ack need."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.job.messages import SourceFingerprint
from fleet.job.outcome import Outcome

__all__ = ["JobResult", "Outcome"]


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
